// Test helpers: start the real activenow binary on a free port and talk to it with the real
// `ws` client. Every wait is for an event, with a timeout; nothing sleeps.
'use strict';

const { spawn, execFile } = require('node:child_process');
const path = require('node:path');
const WebSocket = require('ws');

const BIN = process.env.ACTIVENOW_BIN;
const WAIT_MS = 10_000;
const FIXTURES = path.join(__dirname, '..', '..', 'crates', 'server', 'tests', 'fixtures');

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts `activenow` with PORT=0 and resolves once it logs the address it listens on. */
async function startServer(env = {}) {
  if (!BIN) throw new Error('set ACTIVENOW_BIN to the activenow binary (./scripts/test does)');
  const child = spawn(BIN, [], {
    env: {
      PATH: process.env.PATH,
      BIND: '127.0.0.1',
      PORT: '0',
      RUST_LOG: 'info',
      LOG_FORMAT: 'text',
      NO_COLOR: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const addr = await withTimeout(
    new Promise((resolve, reject) => {
      const onData = (chunk) => {
        log += chunk.toString();
        // eslint-disable-next-line no-control-regex
        const m = log.replace(/\x1b\[[0-9;]*m/g, '').match(/addr=(127\.0\.0\.1:\d+)/);
        if (m) resolve(m[1]);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      exited.then(({ code }) => reject(new Error(`activenow exited (${code}) before listening:\n${log}`)));
    }),
    'the server to listen',
  );
  return {
    addr,
    pid: child.pid,
    url: (p) => `ws://${addr}${p}`,
    http: (p) => `http://${addr}${p}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await withTimeout(exited, 'the server to exit');
    },
  };
}

/** A connected socket with a queue of parsed messages. */
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('message', (data, isBinary) => {
      const msg = isBinary ? { binary: data } : JSON.parse(data.toString());
      const waiter = this.waiters.shift();
      if (waiter) waiter(msg);
      else this.queue.push(msg);
    });
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** The next message, within the wait. */
  next(what = 'a message') {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return withTimeout(new Promise((resolve) => this.waiters.push(resolve)), what);
  }

  async expectType(type) {
    const msg = await this.next(`a ${type} message`);
    if (msg.type !== type) throw new Error(`expected ${type}, got ${JSON.stringify(msg)}`);
    return msg;
  }

  /** Skips messages until one of `type`. */
  async until(type) {
    for (;;) {
      const msg = await this.next(`a ${type} message`);
      if (msg.type === type) return msg;
    }
  }

  async subscribe(channel, event = 'signal:all') {
    this.send({ type: 'subscribe', channel, event });
    return this.next(`the reply to subscribe ${channel}`);
  }

  async errorCode() {
    const msg = await this.expectType('error');
    return msg.error.code;
  }

  async close() {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await withTimeout(this.closed, 'the close');
  }
}

/**
 * Opens a socket. Resolves to a Conn, or rejects with `{status, body}` when the server
 * refuses the upgrade.
 */
function connect(url, protocols, options) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      const conn = new Conn(ws);
      ws.once('open', () => resolve(conn));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          let parsed = null;
          try {
            parsed = JSON.parse(body);
          } catch {
            parsed = body;
          }
          reject({ status: res.statusCode, body: parsed, headers: res.headers });
        });
      });
      ws.once('error', (e) => reject(e));
    }),
    `a connection to ${url}`,
  );
}

/** Runs `activenow ...args` and resolves to {code, stdout, stderr}. */
function runBin(args, env) {
  return withTimeout(
    new Promise((resolve) => {
      execFile(BIN, args, { env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? err.code : 0, stdout, stderr });
      });
    }),
    `activenow ${args.join(' ')}`,
  );
}

module.exports = { startServer, connect, runBin, withTimeout, FIXTURES, WAIT_MS };
