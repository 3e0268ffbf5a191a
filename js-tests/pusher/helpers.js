// Test harness of the Pusher suite: starts the real activenow binary on a free port with a
// Pusher app, serves the channel authorization endpoint an app back end would (signed by the
// official `pusher` server SDK), and gives real pusher-js clients (the Node build, unmodified:
// only wsHost/wsPort point at ActiveNow). Nothing sleeps to wait for an event: every wait is
// for a message, with a timeout.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const Pusher = require('pusher-js');
const PusherServer = require('pusher');

const BIN = process.env.ACTIVENOW_BIN || path.resolve(__dirname, '../../target/debug/activenow');
const WAIT_MS = 10_000;
const APP = { appId: 'test-app', key: 'test-key', secret: 'test-secret-0123456789abcdef' };

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

/**
 * Starts the server with the test Pusher app (and `args`, e.g. `--config FILE`); resolves
 * once it logs that it listens.
 */
async function startServer(env = {}, args = []) {
  const port = await freePort();
  const child = spawn(BIN, [...args, 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      BIND: '127.0.0.1',
      PUSHER_APP_ID: APP.appId,
      PUSHER_APP_KEY: APP.key,
      PUSHER_APP_SECRET: APP.secret,
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
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    /** The official server SDK, pointed at this node. */
    api: new PusherServer({ ...APP, host: '127.0.0.1', port: String(port), useTLS: false }),
    async stop() {
      if (gone()) return;
      child.kill('SIGTERM');
      await withTimeout(exited, 'the server to exit');
    },
    /** SIGKILL: the node dies without any cleanup. */
    async kill() {
      if (gone()) return;
      child.kill('SIGKILL');
      await withTimeout(exited, 'the killed server to exit');
    },
  };
}

/**
 * The app back end's authorization endpoint (pusher-js POSTs `socket_id`, `channel_name`
 * and our `user_id`/`name` params as a form). Signs with the official SDK; `deny` users get 403,
 * `forge` users get a signature made with the wrong secret.
 */
async function startAuthServer() {
  const signer = new PusherServer({ ...APP, host: '127.0.0.1' });
  const forger = new PusherServer({ ...APP, secret: 'not-the-secret', host: '127.0.0.1' });
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const socketId = form.get('socket_id');
      if (req.url.endsWith('/user-auth')) {
        const id = form.get('user_id') || 'anonymous';
        const sdk = id.startsWith('forge') ? forger : signer;
        const signed = sdk.authenticateUser(socketId, { id, user_info: { name: form.get('name') || id } });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(signed));
        return;
      }
      const channel = form.get('channel_name');
      const userId = form.get('user_id') || 'anonymous';
      if (userId === 'deny') {
        res.writeHead(403).end('forbidden');
        return;
      }
      const sdk = userId.startsWith('forge') ? forger : signer;
      const presence = channel.startsWith('presence-')
        ? { user_id: userId, user_info: { name: form.get('name') || userId } }
        : undefined;
      const auth = sdk.authorizeChannel(socketId, channel, presence);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(auth));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/pusher/auth`,
    userUrl: `http://127.0.0.1:${server.address().port}/pusher/user-auth`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** pusher-js options for ActiveNow: only wsHost/wsPort differ from a Pusher app's. */
function clientOptions(server, auth, user, extra = {}) {
  return {
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    channelAuthorization: {
      endpoint: auth ? auth.url : 'http://127.0.0.1:1/none',
      transport: 'ajax',
      params: user ? { user_id: user.id, name: user.name || user.id } : {},
    },
    userAuthentication: {
      endpoint: auth ? auth.userUrl : 'http://127.0.0.1:1/none',
      transport: 'ajax',
      params: user ? { user_id: user.id, name: user.name || user.id } : {},
    },
    ...extra,
  };
}

/** A connected pusher-js client. */
async function connect(server, auth, user, extra = {}) {
  const client = new Pusher(APP.key, clientOptions(server, auth, user, extra));
  await withTimeout(
    new Promise((resolve, reject) => {
      client.connection.bind('connected', resolve);
      client.connection.bind('failed', () => reject(new Error('connection failed')));
    }),
    'pusher-js to connect',
  );
  return client;
}

/**
 * Records every event of `channel` (bind_global), so a test can await one that may already
 * have arrived.
 */
function record(channel) {
  channel.log = [];
  channel.waiters = [];
  channel.bind_global((event, data, meta) => {
    const entry = { event, data, meta, taken: false };
    channel.log.push(entry);
    for (const w of [...channel.waiters]) {
      if (!entry.taken && w.event === event && w.match(data)) {
        entry.taken = true;
        channel.waiters.splice(channel.waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    }
  });
  return channel;
}

/** The next not-yet-taken `event` on a recorded channel matching `match`, past or future. */
function next(channel, event, match = () => true, ms = WAIT_MS) {
  const found = channel.log.find((e) => !e.taken && e.event === event && match(e.data));
  if (found) {
    found.taken = true;
    return Promise.resolve(found);
  }
  const p = new Promise((resolve) => channel.waiters.push({ event, match, resolve }));
  return withTimeout(p, `${event} on ${channel.name} (log: ${JSON.stringify(channel.log.map((e) => [e.event, e.data]))})`, ms);
}

/** Events of `event` not yet taken (for "nothing else arrived" checks after a barrier). */
function pending(channel, event) {
  return channel.log.filter((e) => !e.taken && e.event === event);
}

/** Subscribes and waits for pusher:subscription_succeeded; returns the recorded channel. */
async function subscribed(client, name) {
  const channel = record(client.subscribe(name));
  await next(channel, 'pusher:subscription_succeeded');
  return channel;
}

/** Disconnects and waits until the socket is closed. */
async function disconnect(client) {
  if (client.connection.state === 'disconnected') return;
  const done = new Promise((resolve) => client.connection.bind('disconnected', resolve));
  client.disconnect();
  await withTimeout(done, 'pusher-js to disconnect');
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

/** A throwaway `redis-server` on a free port: no persistence, loopback only. */
async function startRedis(bin = onPath('redis-server')) {
  if (!bin) throw new Error('redis-server is not on PATH');
  let lastError;
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

let counter = 0;
/** A name no other test uses. */
function unique(prefix) {
  counter += 1;
  return `${prefix}${process.pid}-${counter}`;
}

/** Signs a pusher-js client in and waits for its #server-to-user subscription. */
async function signedIn(client) {
  client.signin();
  await withTimeout(client.user.signinDonePromise, 'signin');
  await withTimeout(new Promise((resolve) => {
    if (client.user.serverToUserChannel.subscribed) resolve();
    client.user.serverToUserChannel.bind('pusher:subscription_succeeded', resolve);
  }), 'server-to-user subscription');
  return client;
}

/** Resolves with the pusher:error code once the client is disconnected by the server. */
function terminated(client) {
  const error = new Promise((resolve) => client.connection.bind('error', (e) => {
    if (e && e.data && e.data.code) resolve(e.data.code);
  }));
  const down = new Promise((resolve) => client.connection.bind('state_change', (s) => {
    if (s.current === 'disconnected' || s.current === 'failed') resolve(s.current);
  }));
  return withTimeout(Promise.all([error, down]), 'the terminated client to disconnect');
}

module.exports = {
  APP,
  Pusher,
  PusherServer,
  WAIT_MS,
  clientOptions,
  connect,
  disconnect,
  next,
  onPath,
  pending,
  record,
  signedIn,
  startAuthServer,
  startRedis,
  startServer,
  subscribed,
  terminated,
  unique,
  withTimeout,
};
