// Test harness: starts the real activenow binary on a free port and gives real
// socket.io-client / ws clients. Nothing sleeps to wait for an event: every wait is for a
// message, with a timeout.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const BIN = process.env.ACTIVENOW_BIN || path.resolve(__dirname, '../../target/debug/activenow');
const WAIT_MS = 10_000;
const API_KEY = 'test-key';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts the server; resolves once it logs that it listens. */
async function startServer(env = {}) {
  const port = await freePort();
  const child = spawn(BIN, ['serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      BIND: '127.0.0.1',
      API_KEY,
      MAX_MESSAGES_PER_SECOND: '10000',
      RUST_LOG: 'warn,activenow=info',
      LOG_FORMAT: 'text',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk.toString();
      if (output.includes('activenow listening')) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  await withTimeout(ready, 'the server to listen');
  const base = `http://127.0.0.1:${port}`;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    port,
    pid: child.pid,
    base,
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      await withTimeout(exited, 'the server to exit');
    },
    /** SIGKILL: the node dies without any cleanup (no leaves, no Redis writes). */
    async kill() {
      if (gone()) return;
      child.kill('SIGKILL');
      await withTimeout(exited, 'the killed server to exit');
    },
  };
}

/** The absolute path of `name` on PATH, or null. */
function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Starts a throwaway `redis-server` on a free port (never the machine's 6379): no
 * persistence, loopback only. Resolves once it accepts connections.
 */
async function startRedis(bin = onPath('redis-server')) {
  if (!bin) throw new Error('redis-server is not on PATH');
  let lastError;
  // freePort can race with another process taking the port: try a few.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const ready = new Promise((resolve, reject) => {
      const onData = (chunk) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
      child.once('error', reject);
    });
    try {
      await withTimeout(ready, 'redis-server to accept connections');
    } catch (e) {
      lastError = e;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      continue;
    }
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        await withTimeout(exited, 'redis-server to exit');
      },
    };
  }
  throw lastError;
}

/**
 * A connected socket.io-client socket whose presence/metadata events are recorded, so a
 * test can await one that may already have arrived.
 */
async function connect(server, opts = {}) {
  const socket = io(server.base, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    ...opts,
  });
  socket.log = [];
  socket.waiters = [];
  socket.onAny((event, payload) => {
    const entry = { event, payload, taken: false };
    socket.log.push(entry);
    for (const w of [...socket.waiters]) {
      if (!entry.taken && w.event === event && w.match(payload)) {
        entry.taken = true;
        socket.waiters.splice(socket.waiters.indexOf(w), 1);
        w.resolve(payload);
      }
    }
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    }),
    'connect',
  );
  return socket;
}

/** The next not-yet-taken `event` matching `match`, past or future. */
function next(socket, event, match = () => true, ms = WAIT_MS) {
  const found = socket.log.find((e) => !e.taken && e.event === event && match(e.payload));
  if (found) {
    found.taken = true;
    return Promise.resolve(found.payload);
  }
  const p = new Promise((resolve) => socket.waiters.push({ event, match, resolve }));
  return withTimeout(p, `${event} matching ${match.toString()} (log: ${JSON.stringify(socket.log.map((e) => e.payload))})`, ms);
}

/** Emits and awaits the ack. */
function ask(socket, event, payload) {
  const args = payload === undefined ? [] : [payload];
  return withTimeout(
    socket.timeout(WAIT_MS + 1000).emitWithAck(event, ...args),
    `ack of ${event} ${JSON.stringify(payload)} on ${socket.id}`,
  );
}

/** Events of `event` not yet taken (for "nothing else arrived" checks after a barrier). */
function pending(socket, event) {
  return socket.log.filter((e) => !e.taken && e.event === event).map((e) => e.payload);
}

async function close(...sockets) {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise((resolve) => {
          if (!s.connected) return resolve();
          s.once('disconnect', () => resolve());
          s.disconnect();
        }),
    ),
  );
}

/** An ActiveNow room WebSocket (/v1/ws) with a message log like `connect`'s. */
async function wsConnect(server, room, sid) {
  const url = `ws://127.0.0.1:${server.port}/v1/ws?room=${encodeURIComponent(room)}&socket_session_id=${encodeURIComponent(sid)}`;
  const ws = new WebSocket(url);
  ws.log = [];
  ws.waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const entry = { msg, taken: false };
    ws.log.push(entry);
    for (const w of [...ws.waiters]) {
      if (!entry.taken && w.match(msg)) {
        entry.taken = true;
        ws.waiters.splice(ws.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  });
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), 'ws open');
  return ws;
}

function wsNext(ws, match, ms = WAIT_MS) {
  const found = ws.log.find((e) => !e.taken && match(e.msg));
  if (found) {
    found.taken = true;
    return Promise.resolve(found.msg);
  }
  return withTimeout(new Promise((resolve) => ws.waiters.push({ match, resolve })), 'ws message', ms);
}

async function http(server, method, path, body, { key = API_KEY } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await withTimeout(
    fetch(`${server.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
    `${method} ${path}`,
  );
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/**
 * Every client increments metadata item `n` of channel `ch` once, re-reading and retrying
 * on METADATA_CONFLICT. Returns `winners` (revision -> client index; a revision won twice
 * fails) and how many conflicts the retries met.
 */
async function incrementConcurrently(clients, ch) {
  const winners = new Map();
  let conflicts = 0;
  await Promise.all(
    clients.map(async (c, i) => {
      for (;;) {
        const cur = await ask(c, 'metadata:getChannel', ch);
        const { value, revision } = cur.metadata.n;
        const r = await ask(c, 'metadata:updateChannel', {
          ...ch,
          data: [{ key: 'n', value: String(Number(value) + 1), revision }],
        });
        if (r.ok) {
          const won = r.metadata.n.revision;
          if (winners.has(won)) throw new Error(`revision ${won} won twice`);
          winners.set(won, i);
          return;
        }
        if (r.code !== 'METADATA_CONFLICT') throw new Error(`expected METADATA_CONFLICT: ${JSON.stringify(r)}`);
        conflicts += 1;
      }
    }),
  );
  return { winners, conflicts };
}

let counter = 0;
function unique(tag) {
  counter += 1;
  return `${tag}-${process.pid}-${counter}`;
}

module.exports = {
  API_KEY,
  WAIT_MS,
  ask,
  close,
  connect,
  http,
  incrementConcurrently,
  next,
  onPath,
  pending,
  startRedis,
  startServer,
  unique,
  withTimeout,
  wsConnect,
  wsNext,
};
