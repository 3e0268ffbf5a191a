// The SDK's rooms and visitors against the real binary: dedup of one session across
// clients, join/update/leave, the member list reconciled over HTTP, reconnection after a
// server restart, clean leave on close().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ActiveNow, MemoryStorage } from '../dist/esm/index.js';
import { startServer, within } from './server.mjs';

const fast = { minMs: 50, maxMs: 400 };
const client = (url, storage = new MemoryStorage()) => new ActiveNow({ url, WebSocket, storage, backoff: fast, document: null });

test('two clients of one browser count once; another session joins, updates and leaves', async () => {
  const server = await startServer();
  const storage = new MemoryStorage(); // shared, as two tabs share localStorage
  const tab1 = client(server.url, storage);
  const tab2 = client(server.url, storage);
  const other = client(server.url);
  try {
    assert.equal(tab1.sessionId, tab2.sessionId);
    assert.notEqual(tab1.sessionId, other.sessionId);
    const a = tab1.room('lobby');
    const hello = await within(a.ready(), 10000, 'hello');
    assert.equal(hello.sid, tab1.sessionId);
    assert.equal(hello.count, 1);
    assert.equal(hello.ttl, 30);
    await within(a.next('members', (l) => l.length === 1), 10000, 'first member list');

    const b = tab2.room('lobby');
    assert.equal((await within(b.ready())).count, 1, 'a second tab does not raise the count');
    const bMembers = await within(b.next('members'));
    assert.deepEqual(bMembers.map((m) => m.identity), [tab1.sessionId]);

    const joined = within(a.next('join', (m) => m.identity === other.sessionId));
    const two = within(a.next('count', (n) => n === 2));
    const c = other.room('lobby');
    await Promise.all([joined, two, c.ready()]);
    // The newcomer learns who was there before it from GET /v1/activity/presence.
    const cMembers = await within(c.next('members', (l) => l.length === 2));
    assert.deepEqual(cMembers.map((m) => m.identity).sort(), [tab1.sessionId, other.sessionId].sort());

    const updated = within(a.next('update', (m) => m.identity === other.sessionId));
    await c.update({ displayName: 'Ann', position: 3 });
    const u = await updated;
    assert.equal(u.displayName, 'Ann');
    assert.equal(u.position, 3);
    assert.equal(a.members.get(other.sessionId).displayName, 'Ann');

    const left = within(a.next('leave', (l) => l.identity === other.sessionId));
    const one = within(a.next('count', (n) => n === 1));
    other.close();
    await Promise.all([left, one]);
    assert.equal(a.members.has(other.sessionId), false);

    // Closing one of two tabs changes nothing for the others: the session is still there.
    const otherWatcher = client(server.url).room('lobby');
    await within(otherWatcher.next('members', (l) => l.length === 2));
    tab2.close();
    const gone = within(otherWatcher.next('leave'));
    tab1.close();
    assert.equal((await gone).identity, tab1.sessionId);
    otherWatcher.leave();
  } finally {
    tab1.close();
    tab2.close();
    other.close();
    await server.stop();
  }
});

test('a presence update for a room the session is not in is refused with the server code', async () => {
  const server = await startServer();
  const c = client(server.url);
  try {
    const room = c.room('here');
    await within(room.ready());
    const elsewhere = c.room('elsewhere');
    elsewhere.leave();
    await assert.rejects(elsewhere.update({ position: 1 }), (e) => e.status === 404 && e.code === 'not_present');
  } finally {
    c.close();
    await server.stop();
  }
});

test('visitors: one count per session, updated live', async () => {
  const server = await startServer();
  const storage = new MemoryStorage();
  const a = client(server.url, storage);
  const a2 = client(server.url, storage);
  const b = client(server.url);
  try {
    const va = a.visitors();
    await within(va.next('count', (n) => n === 1));
    a2.visitors();
    const vb = b.visitors();
    await within(vb.next('count', (n) => n === 2), 10000, 'two visitors');
    const offline = within(va.next('offline'));
    b.close();
    const o = await offline;
    assert.equal(o.sessionId, b.sessionId);
    assert.equal(o.online, 1);
  } finally {
    a.close();
    a2.close();
    b.close();
    await server.stop();
  }
});

test('after a server restart the client reconnects, says hello again and reconciles', async () => {
  let server = await startServer();
  const c = client(server.url);
  try {
    const room = c.room('restart');
    await within(room.ready());
    await within(c.connectionState.when((s) => s === 'open'));
    const states = [];
    c.connectionState.subscribe((s) => states.push(s));
    const reconnecting = within(c.connectionState.when((s) => s === 'reconnecting'), 10000, 'reconnecting');
    await server.stop(); // SIGTERM: sockets closed with 1012
    await reconnecting;
    const helloAgain = within(room.next('hello'), 15000, 'hello after restart');
    server = await startServer({}, server.port);
    assert.equal((await helloAgain).count, 1);
    await within(room.next('members', (l) => l.length === 1));
    await within(c.connectionState.when((s) => s === 'open'));
    assert.deepEqual([states[0], states.includes('reconnecting'), states.at(-1)], ['open', true, 'open']);
  } finally {
    c.close();
    await server.stop();
  }
});

test('heartbeats keep a session alive past its TTL', async () => {
  // TTL 2 s: heartbeats every max(5, 1) = 5 s would let it expire, so the test sets the
  // period; the rule itself is unit-tested. A reaper pass every 100 ms.
  const server = await startServer({ PRESENCE_TTL: '2', PRESENCE_REAPER_INTERVAL_MS: '100' });
  const keeper = client(server.url);
  const silent = client(server.url);
  try {
    const kept = keeper.room('ttl', { heartbeatMs: 500 });
    await within(kept.ready());
    const s = silent.room('ttl', { heartbeatMs: 60000 });
    await within(s.ready());
    // The silent one expires (TTL 2 s without a heartbeat): the keeper sees it leave...
    const leave = await within(kept.next('leave'), 10000, 'expiry of the silent session');
    assert.equal(leave.identity, silent.sessionId);
    // ...and the keeper itself is still there.
    const list = await (await fetch(`${server.url}/v1/activity/presence?room_name=ttl`)).json();
    assert.deepEqual(list.map((m) => m.identity), [keeper.sessionId]);
  } finally {
    keeper.close();
    silent.close();
    await server.stop();
  }
});
