// Starts the real activenow binary (ACTIVENOW_BIN) on a loopback port for the integration
// tests, and small helpers to await things without sleeping.
import { spawn, execFileSync } from 'node:child_process';
import net from 'node:net';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function binary() {
  const bin = process.env.ACTIVENOW_BIN;
  if (!bin) throw new Error('ACTIVENOW_BIN is not set: run through ./scripts/test');
  return bin;
}

export async function startServer(env = {}, port) {
  port ??= await freePort();
  const child = spawn(binary(), ['serve'], {
    env: { ...process.env, PORT: String(port), BIND: '127.0.0.1', RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (i === 400) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url,
    port,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill('SIGTERM');
    }),
  };
}

/** A channels JWT minted by the binary's own `token` subcommand. */
export function mintToken(secret, user, room = 'r1') {
  return execFileSync(binary(), ['token', '--user', user, '--type', 'desktop', '--room', room], {
    env: { ...process.env, JWT_SECRET: secret },
  }).toString().trim();
}

/** Rejects when `promise` has not settled within `ms` (so a broken test fails, not hangs). */
export function within(promise, ms = 10000, what = 'event') {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(t));
}

/** Polls `check` (an HTTP read) until it returns a truthy value; bounded attempts. */
export async function eventually(check, what = 'condition', attempts = 200) {
  for (let i = 0; i < attempts; i++) {
    const v = await check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} never held`);
}
