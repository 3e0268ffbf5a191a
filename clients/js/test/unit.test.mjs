// Unit tests of the SDK's rules, with a scripted WebSocket and fetch (no server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ActiveNow, MemoryStorage, backoffDelay, heartbeatPeriodMs, ValueStream } from '../dist/esm/index.js';

test('heartbeat period is max(5, floor(ttl/2)) seconds', () => {
  assert.equal(heartbeatPeriodMs(30), 15000);
  assert.equal(heartbeatPeriodMs(11), 5000);
  assert.equal(heartbeatPeriodMs(2), 5000);
  assert.equal(heartbeatPeriodMs(61), 30000);
});

test('back-off doubles up to the cap, jittered within [d/2, d]', () => {
  const lo = { minMs: 100, maxMs: 1000, random: () => 0 };
  const hi = { minMs: 100, maxMs: 1000, random: () => 0.999999 };
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, lo)), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, hi)), [100, 200, 400, 800, 1000, 1000]);
});

test('one session id per storage, kept across clients', () => {
  const storage = new MemoryStorage();
  const opts = { url: 'http://x', WebSocket: FakeSocket, fetch: fakeFetch(), storage, document: null };
  const a = new ActiveNow(opts);
  const b = new ActiveNow(opts);
  assert.equal(a.sessionId, b.sessionId);
  assert.match(a.sessionId, /^[0-9a-f-]{36}$/);
  assert.equal(storage.getItem('activenow.sid'), a.sessionId);
  assert.notEqual(new ActiveNow({ ...opts, storage: new MemoryStorage() }).sessionId, a.sessionId);
});

test('ValueStream: subscribe sees the current value, then changes; when() resolves', async () => {
  const s = new ValueStream('a');
  const seen = [];
  s.subscribe((v) => seen.push(v));
  s.set('b');
  s.set('b');
  const c = s.when((v) => v === 'c');
  s.set('c');
  assert.equal(await c, 'c');
  assert.deepEqual(seen, ['a', 'b', 'c']);
});

// --- a scripted WebSocket -------------------------------------------------------------
const sockets = [];
const socketWaiters = [];
/** Resolves once the client has opened its n-th socket (no sleeping for the back-off). */
async function socketCount(n) {
  while (sockets.length < n) await new Promise((r) => socketWaiters.push(r));
}
class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    sockets.push(this);
    for (const w of socketWaiters.splice(0)) w();
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  send(d) {
    this.sent.push(JSON.parse(d));
  }
  close(code = 1005) {
    this.closedWith = code;
    this.readyState = 3;
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

function fakeFetch(routes = {}) {
  const calls = [];
  const fn = async (url, init = {}) => {
    calls.push({ url, ...init });
    const path = new URL(url).pathname;
    const body = routes[path] ? routes[path]() : {};
    return { status: 200, ok: true, text: async () => JSON.stringify(body), json: async () => body };
  };
  fn.calls = calls;
  return fn;
}

const tick = () => new Promise((r) => setImmediate(r));

function fakeDocument() {
  const fns = new Set();
  return {
    visibilityState: 'visible',
    addEventListener: (_, f) => fns.add(f),
    removeEventListener: (_, f) => fns.delete(f),
    set(state) {
      this.visibilityState = state;
      for (const f of fns) f();
    },
  };
}

test('the token goes as ?token= on sockets and Authorization: Bearer on HTTP', async () => {
  sockets.length = 0;
  const fetch = fakeFetch({ '/v1/activity/presence': () => [] });
  const c = new ActiveNow({ url: 'http://h:1', token: 'T0K', sessionId: 's 1', WebSocket: FakeSocket, fetch, document: null });
  const room = c.room('a/b');
  await tick();
  const u = new URL(sockets[0].url);
  assert.equal(u.protocol, 'ws:');
  assert.equal(u.pathname, '/v1/ws');
  assert.equal(u.searchParams.get('room'), 'a/b');
  // With a token the server takes the identity from it: no session id is claimed.
  assert.equal(u.searchParams.get('socket_session_id'), null);
  assert.equal(u.searchParams.get('token'), 'T0K');
  await room.update({ position: 2 });
  const call = fetch.calls.at(-1);
  assert.equal(call.headers.authorization, 'Bearer T0K');
  assert.equal(call.headers['x-socket-session-id'], undefined);
  assert.deepEqual(JSON.parse(call.body), { room_name: 'a/b', position: 2 });
  c.close();
  assert.equal(sockets[0].closedWith, 1000);
});

test('members: the HTTP list wins on reconnect, events that raced it are replayed on top', async () => {
  sockets.length = 0;
  let list = [{ identity: 'x', joined_at: 1, updated_at: 1 }];
  let release;
  const gate = new Promise((r) => (release = r));
  const fetch = async (url) => {
    await gate;
    const body = list;
    return { status: 200, ok: true, text: async () => JSON.stringify(body), json: async () => body };
  };
  const c = new ActiveNow({ url: 'http://h', sessionId: 'me', WebSocket: FakeSocket, fetch, document: null, backoff: { minMs: 1, maxMs: 2 } });
  const room = c.room('r');
  await tick();
  sockets[0].open();
  sockets[0].receive({ type: 'hello', sid: 'me', ttl: 30, count: 2 });
  // Arrives while the list is loading: must survive the list replacing the map.
  sockets[0].receive({ type: 'ACTIVITY_JOIN_PRESENCE', data: { identity: 'y', roomName: 'r', joinedAt: 5 } });
  const members = room.next('members');
  release();
  assert.deepEqual((await members).map((m) => m.identity).sort(), ['x', 'y']);
  // Dropped; the server's list no longer has x: after reconnect the map follows the server.
  list = [{ identity: 'y', joined_at: 5, updated_at: 6, display_name: 'Yo' }];
  const states = [];
  room.state.subscribe((s) => states.push(s));
  sockets[0].drop();
  await socketCount(2);
  sockets[1].open();
  sockets[1].receive({ type: 'hello', sid: 'me', ttl: 30, count: 1 });
  const after = await room.next('members');
  assert.deepEqual(after, [{ identity: 'y', joinedAt: 5, updatedAt: 6, displayName: 'Yo' }]);
  assert.deepEqual(states, ['open', 'reconnecting', 'open']);
  c.close();
});

test('heartbeats pause while the tab is hidden and resume with one at once when shown', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  sockets.length = 0;
  const doc = fakeDocument();
  const c = new ActiveNow({ url: 'http://h', sessionId: 'me', WebSocket: FakeSocket, fetch: fakeFetch({ '/v1/activity/presence': () => [] }), document: doc });
  c.room('r');
  await tick();
  const ws = sockets[0];
  ws.open();
  ws.receive({ type: 'hello', sid: 'me', ttl: 30, count: 1 });
  const hbs = () => ws.sent.filter((m) => m.type === 'hb').length;
  t.mock.timers.tick(15000);
  t.mock.timers.tick(15000);
  assert.equal(hbs(), 2, 'every 15 s with ttl 30');
  doc.set('hidden');
  t.mock.timers.tick(60000);
  assert.equal(hbs(), 2, 'none while hidden');
  doc.set('visible');
  assert.equal(hbs(), 3, 'one at once when shown');
  t.mock.timers.tick(15000);
  assert.equal(hbs(), 4);
  c.close();
});

test('whenHidden: keep heartbeats in a hidden tab', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  sockets.length = 0;
  const doc = fakeDocument();
  doc.visibilityState = 'hidden';
  const c = new ActiveNow({ url: 'http://h', sessionId: 'me', WebSocket: FakeSocket, fetch: fakeFetch({ '/v1/activity/presence': () => [] }), document: doc });
  c.room('r', { whenHidden: 'keep' });
  await tick();
  sockets[0].open();
  sockets[0].receive({ type: 'hello', sid: 'me', ttl: 10, count: 1 });
  t.mock.timers.tick(5000);
  assert.equal(sockets[0].sent.filter((m) => m.type === 'hb').length, 1);
  c.close();
});

test('the CommonJS build loads with require and has the same API', async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const cjs = require('../dist/cjs/index.cjs');
  assert.equal(typeof cjs.ActiveNow, 'function');
  assert.equal(cjs.default, cjs.ActiveNow);
  assert.equal(cjs.heartbeatPeriodMs(30), 15000);
});
