// Starts the real activenow binary (ACTIVENOW_BIN) on a free loopback port.
import { spawn } from 'node:child_process';
import net from 'node:net';

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function startServer(env = {}) {
  const bin = process.env.ACTIVENOW_BIN;
  if (!bin) throw new Error('ACTIVENOW_BIN is not set: run through ./scripts/test');
  const port = await freePort();
  const child = spawn(bin, ['serve'], {
    env: { ...process.env, PORT: String(port), BIND: '127.0.0.1', RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `127.0.0.1:${port}`;
  // Ready when /healthz answers (polled with a bounded number of attempts).
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://${base}/healthz`);
      if (r.ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 25));
    if (i === 199) throw new Error('server did not start');
  }
  return {
    host: base,
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}

/** A queue of parsed messages from a socket, awaited one at a time with a timeout. */
export function inbox(ws) {
  const queue = [];
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(msg); else queue.push(msg);
  });
  return {
    next(timeoutMs = 10000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no message within timeout')), timeoutMs);
        waiters.push((m) => { clearTimeout(t); resolve(m); });
      });
    },
    async until(type) {
      for (;;) { const m = await this.next(); if (m.type === type) return m; }
    },
  };
}
