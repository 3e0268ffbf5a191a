'use strict';
// CLIENT_AUTH=jwt from the outside: the real activenow binary, tokens signed by the npm
// `jsonwebtoken` package, and the real `ws`, `fetch` and `socket.io-client` clients. Every
// wait is for an event or a close, with a timeout; nothing sleeps.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const WebSocket = require('ws');
const { io } = require('socket.io-client');

const BIN = process.env.ACTIVENOW_BIN || path.resolve(__dirname, '../../target/debug/activenow');
const SECRET = 'js-tests-auth-secret-0123456789abcdef';
const API_KEY = 'js-tests-api-key';
const WAIT_MS = 10_000;

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

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

async function startServer(env) {
  const port = await freePort();
  const child = spawn(BIN, ['serve'], {
    env: { ...process.env, PORT: String(port), BIND: '127.0.0.1', RUST_LOG: 'warn,activenow=info', ...env },
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
  return {
    http: (p) => `http://127.0.0.1:${port}${p}`,
    ws: (p) => `ws://127.0.0.1:${port}${p}`,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await withTimeout(exited, 'the server to exit');
    },
  };
}

const sign = (sub, seconds = 3600, extra = {}) =>
  jwt.sign({ sub, ...extra }, SECRET, { algorithm: 'HS256', expiresIn: seconds });

/** A WebSocket that queues its messages; `refusal` is the HTTP status of a refused upgrade. */
function open(url, options = {}) {
  const ws = new WebSocket(url, options.protocols, { headers: options.headers });
  const queue = [];
  const waiters = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  const opened = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_, res) => reject(Object.assign(new Error('refused'), { status: res.statusCode })));
    ws.once('error', reject);
  });
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
  return {
    opened: withTimeout(opened, `open ${url}`),
    closed: () => withTimeout(closed, `close of ${url}`),
    send: (v) => ws.send(JSON.stringify(v)),
    async until(type) {
      for (;;) {
        const m = await withTimeout(next(), `a ${type} message`);
        if (m.type === type) return m;
      }
    },
    close: () => ws.close(),
  };
}

async function refusedStatus(url, options) {
  const c = open(url, options);
  const err = await c.opened.then(() => null, (e) => e);
  assert.ok(err, `${url} was accepted`);
  return err.status;
}

function sio(server, auth) {
  return io(server.http(''), { auth, transports: ['websocket'], reconnection: false, forceNew: true });
}

const connected = (s) =>
  withTimeout(
    new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('connect_error', reject);
    }),
    'socket.io connect',
  );

const ask = (s, event, data) => withTimeout(s.emitWithAck(event, data), `ack of ${event}`);

let server;
test.before(async () => {
  server = await startServer({ CLIENT_AUTH: 'jwt', JWT_SECRET: SECRET, API_KEY, JWT_LEEWAY: '0' });
});
test.after(async () => {
  await server.stop();
});

test('room and visitor sockets: 401 without a token, 403 for another identity', async () => {
  const t = sign('alice');
  for (const p of ['/v1/ws?room=r', '/v1/ws/web', '/web']) {
    const sep = p.includes('?') ? '&' : '?';
    assert.equal(await refusedStatus(server.ws(p)), 401, p);
    const body = await (await fetch(server.http(p))).json();
    assert.equal(body.error, 'token_missing');
    assert.equal(await refusedStatus(server.ws(`${p}${sep}token=${t}&socket_session_id=bob`)), 403, p);
  }
  const a = open(server.ws(`/v1/ws?room=js-r&token=${t}`));
  await a.opened;
  assert.equal((await a.until('hello')).sid, 'alice');
  // Sec-WebSocket-Protocol carries the token too (browsers cannot set headers).
  const b = open(server.ws('/v1/ws?room=js-r'), { protocols: ['jwt', sign('bob')] });
  await b.opened;
  assert.equal((await b.until('hello')).sid, 'bob');
  a.close();
  b.close();
});

test('HTTP: presence update and online logout of another identity are refused', async () => {
  const victim = open(server.ws(`/v1/ws?room=js-u&token=${sign('victim')}`));
  await victim.opened;
  await victim.until('hello');
  const post = (p, auth, body, headers = {}) =>
    fetch(server.http(p), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...headers },
      body: JSON.stringify(body),
    });
  const fake = { room_name: 'js-u', display_name: 'fake' };
  assert.equal((await post('/v1/activity/presence/update', null, fake, { 'x-socket-session-id': 'victim' })).status, 401);
  assert.equal(
    (await post('/v1/activity/presence/update', sign('mallory'), fake, { 'x-socket-session-id': 'victim' })).status,
    403,
  );
  assert.equal((await post('/v1/activity/presence/update', sign('victim'), { room_name: 'js-u', display_name: 'me' })).status, 200);
  assert.equal((await victim.until('ACTIVITY_UPDATE_PRESENCE')).data.displayName, 'me');
  victim.close();

  assert.equal((await post('/api/online/login', API_KEY, { playerId: 'p2', ip: '192.0.2.7' })).status, 200);
  assert.equal((await post('/api/online/logout', sign('p1'), { playerId: 'p2' })).status, 403);
  assert.equal((await post('/api/online/logout', null, { playerId: 'p2' })).status, 401);
  const rec = await (await fetch(server.http('/api/online/player/p2'), { headers: { authorization: `Bearer ${sign('p1')}` } })).json();
  assert.equal(rec.status, 'online');
  assert.equal(rec.ip, undefined, 'u1 reads no ip of u2');
  const own = await (await fetch(server.http('/api/online/player/p2'), { headers: { authorization: `Bearer ${sign('p2')}` } })).json();
  assert.equal(own.ip, '192.0.2.7');
  assert.equal((await post('/api/online/logout', sign('p2'), { playerId: 'p2' })).status, 200);
});

test('Socket.IO: handshake token, userId must be the subject, metadata and lock rules', async () => {
  const none = sio(server, {});
  const err = await connected(none).then(() => null, (e) => e);
  assert.equal(err && err.message, 'token_missing');
  none.close();
  const expired = sio(server, { token: jwt.sign({ sub: 'x', exp: Math.floor(Date.now() / 1000) - 60 }, SECRET) });
  assert.equal((await connected(expired).then(() => null, (e) => e)).message, 'token_expired');
  expired.close();

  const alice = sio(server, { token: sign('alice') });
  const bob = sio(server, { token: sign('bob') });
  const lurker = sio(server, { token: sign('lurker') });
  await Promise.all([connected(alice), connected(bob), connected(lurker)]);
  try {
    const room = `js-meta-${process.pid}`;
    const asBob = await ask(alice, 'presence:join', { roomId: room, userId: 'bob' });
    assert.deepEqual([asBob.ok, asBob.code], [false, 'IDENTITY_MISMATCH']);
    assert.equal((await ask(alice, 'presence:join', { roomId: room, userId: 'alice' })).ok, true);
    assert.equal((await ask(bob, 'presence:join', { roomId: room, userId: 'bob' })).ok, true);
    const ch = { channelName: room, channelType: 'room' };
    // A socket that never joined, or joined another room, cannot write.
    const unjoined = await ask(lurker, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'v' }] });
    assert.deepEqual([unjoined.ok, unjoined.code], [false, 'METADATA_FORBIDDEN']);
    assert.equal((await ask(lurker, 'presence:join', { roomId: `${room}-other`, userId: 'lurker' })).ok, true);
    const other = await ask(lurker, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'v' }] });
    assert.equal(other.code, 'METADATA_FORBIDDEN');
    // Lock takeover: bob holds the lock; alice can neither write under it nor release it.
    assert.equal((await ask(alice, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'v' }] })).ok, true);
    const lock = `lock-${process.pid}`;
    assert.equal((await ask(bob, 'lock:acquire', { name: lock, ttlMs: 10_000 })).owner, 'bob');
    const guarded = { ...ch, data: [{ key: 'k', value: 'mine' }], options: { lockName: lock } };
    assert.equal((await ask(alice, 'metadata:updateChannel', guarded)).code, 'METADATA_LOCK');
    assert.equal((await ask(alice, 'lock:release', { name: lock })).code, 'LOCK_NOT_OWNER');
    assert.equal((await ask(bob, 'metadata:updateChannel', guarded)).ok, true);
  } finally {
    alice.close();
    bob.close();
    lurker.close();
  }
});

test('Socket.IO: expiry disconnects unless auth:refresh arrived', async () => {
  const short = () => sign('carol', 3);
  const stays = sio(server, { token: short() });
  const goes = sio(server, { token: sign('dave', 4) });
  await Promise.all([connected(stays), connected(goes)]);
  const wrong = await ask(stays, 'auth:refresh', { token: sign('mallory') });
  assert.equal(wrong.code, 'IDENTITY_MISMATCH');
  const ok = await ask(stays, 'auth:refresh', { token: sign('carol') });
  assert.equal(ok.ok, true);
  const expiredEvent = withTimeout(new Promise((r) => goes.once('auth:expired', r)), 'auth:expired');
  const gone = withTimeout(new Promise((r) => goes.once('disconnect', r)), 'disconnect');
  assert.equal((await expiredEvent).code, 'token_expired');
  assert.equal(await gone, 'io server disconnect');
  // The refreshed socket outlived its first token (which ran out a second earlier).
  assert.equal((await ask(stays, 'presence:join', { roomId: 'js-exp', userId: 'carol' })).ok, true);
  stays.close();
});

test('WebSocket expiry: close 4001 token_expired, refresh keeps it open', async () => {
  const a = open(server.ws(`/v1/ws?room=js-e&token=${sign('erin', 3)}`));
  const b = open(server.ws(`/v1/ws?room=js-e&token=${sign('frank', 4)}`));
  await Promise.all([a.opened, b.opened]);
  a.send({ type: 'refresh', token: sign('erin') });
  assert.equal(typeof (await a.until('refreshed')).expiresAt, 'number');
  assert.equal(await b.closed(), 4001);
  a.send({ type: 'nope' });
  assert.equal((await a.until('error')).code, 'unknown_type');
  a.close();
});

test('crit headers and %FF ids are refused', async () => {
  const crit = jwt.sign({ sub: 'x' }, SECRET, { algorithm: 'HS256', expiresIn: 60, header: { crit: ['x-ext'], 'x-ext': 1 } });
  const res = await fetch(server.http(`/v1/ws?room=r&token=${crit}`));
  assert.deepEqual([res.status, (await res.json()).error], [401, 'token_invalid']);
  const bad = await fetch(server.http('/v1/ws?room=r&socket_session_id=%FF'));
  assert.deepEqual([bad.status, (await bad.json()).error], [400, 'bad_encoding']);
});

test('channel places cannot be taken from /v1/ws', async () => {
  const s = await startServer({ JWT_SECRET: SECRET, CHANNEL_MAX_USERS: '1' });
  try {
    const squatters = ['s1', 's2'].map((id) => open(s.ws(`/v1/ws?room=ab&socket_session_id=${id}`)));
    await Promise.all(squatters.map((q) => q.opened));
    const holder = open(s.ws(`/ws?token=${sign('holder')}`));
    await holder.opened;
    holder.send({ type: 'subscribe', channel: 'ab', event: 'e' });
    assert.equal((await holder.until('subscribed')).channel, 'ab');
    squatters.forEach((q) => q.close());
    holder.close();
  } finally {
    await s.stop();
  }
});

test('METADATA_WRITE=server: Socket.IO writes refused, the API key writes over HTTP', async () => {
  const s = await startServer({ METADATA_WRITE: 'server', API_KEY });
  const c = sio(s, {});
  try {
    await connected(c);
    assert.equal((await ask(c, 'presence:join', { roomId: 'srv', userId: 'u' })).ok, true);
    const ch = { channelName: 'srv', channelType: 'room' };
    const r = await ask(c, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'v' }] });
    assert.deepEqual([r.ok, r.code], [false, 'METADATA_FORBIDDEN']);
    const res = await fetch(s.http('/v1/channels/room/srv/metadata'), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ data: [{ key: 'k', value: 'v' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal((await ask(c, 'metadata:getChannel', ch)).metadata.k.value, 'v');
  } finally {
    c.close();
    await s.stop();
  }
});

test('CLIENT_AUTH=off on a non-loopback address warns once at start', async () => {
  const s = await startServer({ BIND: '0.0.0.0' });
  try {
    assert.match(s.output(), /CLIENT_AUTH=off on a non-loopback address/);
  } finally {
    await s.stop();
  }
});
