// Channels, online status (socket and HTTP fallback) and session push through the SDK,
// against the real binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ActiveNow, MemoryStorage } from '../dist/esm/index.js';
import { eventually, mintToken, startServer, within } from './server.mjs';

const fast = { minMs: 50, maxMs: 400 };
const client = (url, extra = {}) =>
  new ActiveNow({ url, WebSocket, storage: new MemoryStorage(), backoff: fast, document: null, ...extra });

test('channels: subscribe and publish between two users; getToken is asked on every connect', async () => {
  const secret = 'sdk-test-secret';
  const server = await startServer({ JWT_SECRET: secret });
  const a = client(server.url);
  const b = client(server.url);
  try {
    let asked = 0;
    const ca = a.channels({ getToken: () => (asked++, mintToken(secret, 'alice')) });
    const cb = b.channels({ token: mintToken(secret, 'bob') });
    await within(ca.subscribe('lobby'));
    await within(cb.subscribe('lobby'));
    const got = within(cb.next('message'));
    assert.equal(ca.publish('lobby', 'signal:all', { hi: 1 }), true);
    const m = await got;
    assert.equal(m.channel, 'lobby');
    assert.equal(m.data.hi, 1);
    assert.equal(m.data.from, 'alice', 'the server sets from');
    assert.equal(asked, 1);
    const err = within(cb.next('error'));
    cb.subscribe('x'); // one character: not a channel name
    assert.equal((await err).code, 'INVALID_CHANNEL');
  } finally {
    a.close();
    b.close();
    await server.stop();
  }
});

test('channels: a refused token makes the client ask getToken again and then connect', async () => {
  const secret = 'sdk-test-secret';
  const server = await startServer({ JWT_SECRET: secret });
  const c = client(server.url);
  try {
    const tokens = ['not-a-jwt', mintToken(secret, 'carol')];
    const ch = c.channels({ getToken: () => tokens.shift() ?? mintToken(secret, 'carol') });
    await within(ch.subscribe('room1'), 10000, 'subscribed after the token refresh');
    assert.equal(tokens.length, 0);
  } finally {
    c.close();
    await server.stop();
  }
});

const player = async (url, id) => (await fetch(`${url}/api/online/player/${id}`)).json();

test('online: the ping socket keeps the player online; stop() logs out', async () => {
  const server = await startServer();
  const c = client(server.url);
  try {
    const p = c.online('p1');
    await within(p.mode.when((m) => m === 'socket'));
    await eventually(async () => (await player(server.url, 'p1')).status === 'online', 'p1 online');
    await p.stop();
    assert.equal((await player(server.url, 'p1')).status, 'offline');
  } finally {
    c.close();
    await server.stop();
  }
});

test('online: when the socket cannot connect, HTTP heartbeats keep the player online', async () => {
  // Node's ws sends no Origin, and with an allowlist a socket without one is refused (403):
  // the ping socket cannot connect, while the HTTP API still answers.
  const server = await startServer({ ALLOWED_ORIGINS: 'https://app.example', ONLINE_TTL: '2' });
  const c = client(server.url);
  try {
    const p = c.online('p2', { heartbeatMs: 300 });
    await within(p.mode.when((m) => m === 'http'));
    const first = await eventually(async () => {
      const r = await player(server.url, 'p2');
      return r.status === 'online' && r;
    }, 'p2 online over HTTP');
    // Still online after more than ONLINE_TTL: the heartbeats refresh it.
    await eventually(async () => {
      const r = await player(server.url, 'p2');
      return r.status === 'online' && r.lastHeartbeat > first.loginTime + 2000 && r;
    }, 'p2 kept online past ONLINE_TTL', 200);
    await p.stop();
    assert.equal((await player(server.url, 'p2')).status, 'offline');
  } finally {
    c.close();
    await server.stop();
  }
});

test('waitForSession resolves with the confirmation; scanned arrives first', async () => {
  const key = 'sdk-api-key';
  const server = await startServer({ API_KEY: key });
  const page = client(server.url);
  const backend = client(server.url, { token: key }); // the app back end, with API_KEY
  try {
    const { session_id } = await page.createSession({ kind: 'login' });
    let scanned;
    const sawScan = new Promise((resolve) => (scanned = resolve));
    const outcome = page.waitForSession(session_id, { onUpdate: scanned, timeoutMs: 20000 });
    // Pushed before the socket may be up: the server keeps it for the socket that comes.
    await backend.request('POST', '/v1/qr-login/scan', { session_id });
    assert.equal((await within(sawScan, 10000, 'scanned')).status, 'scanned');
    await backend.request('POST', '/v1/qr-login/confirm', { session_id, web_token: 'wt-1' });
    const done = await within(outcome, 10000, 'confirmation');
    assert.equal(done.status, 'confirmed');
    assert.equal(done.web_token, 'wt-1');
    assert.equal((await page.waitForSession('no-such-session', { timeoutMs: 10000 })).status, 'not_found');
  } finally {
    page.close();
    backend.close();
    await server.stop();
  }
});

test('CLIENT_AUTH=jwt: rooms and visitors take the identity from the token; updates as oneself', async () => {
  const secret = 'sdk-jwt-mode-secret';
  const server = await startServer({ JWT_SECRET: secret, CLIENT_AUTH: 'jwt' });
  const alice = client(server.url, { token: mintToken(secret, 'alice') });
  const bob = client(server.url, { token: mintToken(secret, 'bob') });
  try {
    // The persisted random session id is not claimed: the server says hello as the subject.
    const a = alice.room('lobby');
    assert.equal((await within(a.ready(), 10000, 'alice hello')).sid, 'alice');
    const b = bob.room('lobby');
    const joined = within(a.next('join', (m) => m.identity === 'bob'), 10000, 'bob join');
    assert.equal((await within(b.ready(), 10000, 'bob hello')).sid, 'bob');
    await joined;
    const updated = within(a.next('update', (m) => m.identity === 'bob'), 10000, 'bob update');
    await b.update({ displayName: 'Bob' });
    assert.equal((await updated).displayName, 'Bob');
    const visitors = alice.visitors();
    await within(visitors.next('count', (n) => n >= 1), 10000, 'visitors count');
    // Without a token the same server refuses the room socket before the upgrade.
    const res = await fetch(`${server.url}/v1/activity/presence/update`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-socket-session-id': 'bob' },
      body: JSON.stringify({ room_name: 'lobby', display_name: 'Mallory' }),
    });
    assert.equal(res.status, 401);
  } finally {
    alice.close();
    bob.close();
    await server.stop();
  }
});
