'use strict';
// The server API (docs/server-api.md) seen by the real socket.io-client: a publish reaches a
// Socket.IO member as the event itself with `data` as its one argument, beside an ActiveNow
// WebSocket member of the same room; `DELETE /v1/users/{identity}` tells a Socket.IO socket
// `activenow:kicked` and then disconnects it (`io server disconnect`), with `?rooms=` sparing
// its sockets elsewhere; "where is user X" lists its Socket.IO memberships. Then the same
// across two nodes on a real redis-server (skipped loudly without one, failing under CI=true).
const test = require('node:test');
const assert = require('node:assert/strict');
const {
  startServer, startRedis, onPath, connect, ask, next, pending, close, unique, wsConnect, wsNext, http,
} = require('./helpers');

let server;
test.before(async () => {
  server = await startServer();
});
test.after(async () => {
  await server.stop();
});

/** Resolves with the reason of the socket's next disconnect. */
function disconnected(socket) {
  return new Promise((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
}

for (const transport of ['websocket', 'polling']) {
  test(`a publish reaches Socket.IO members in their shape, and no one else (${transport})`, async () => {
    const room = unique('pub');
    const other = unique('pub-other');
    const a = await connect(server, { transports: [transport] });
    const b = await connect(server, { transports: [transport] });
    const outsider = await connect(server, { transports: [transport] });
    const ws = await wsConnect(server, room, 'ws-reader');
    try {
      for (const [s, user] of [[a, 'ann'], [b, 'ben']]) {
        assert.equal((await ask(s, 'presence:join', { roomId: room, userId: user })).ok, true);
      }
      assert.equal((await ask(outsider, 'presence:join', { roomId: other, userId: 'otto' })).ok, true);

      // Without the key: refused, nothing delivered.
      const refused = await http(server, 'POST', `/v1/rooms/${encodeURIComponent(room)}/publish`, { event: 'x' }, { key: null });
      assert.equal(refused.status, 401);

      const data = { headline: 'hi', n: 3, tags: ['a', 'b'] };
      const res = await http(server, 'POST', `/v1/rooms/${encodeURIComponent(room)}/publish`, { event: 'breaking', data });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { ok: true, room, event: 'breaking' });
      for (const s of [a, b]) {
        assert.deepEqual(await next(s, 'breaking'), data);
      }
      const frame = await wsNext(ws, (m) => m.type === 'SERVER_EVENT');
      assert.equal(frame.data.roomName, room);
      assert.equal(frame.data.event, 'breaking');
      assert.deepEqual(frame.data.data, data);
      assert.ok(frame.data.ts > 0);

      // An array is one argument, not spread over several; no `data` is null.
      await http(server, 'POST', `/v1/rooms/${encodeURIComponent(room)}/publish`, { event: 'list', data: [1, 2] });
      // Every argument of the event, from socket.io-client itself (onAny keeps the first).
      const argsA = new Promise((resolve) => a.once('bare', (...args) => resolve(args)));
      await http(server, 'POST', `/v1/rooms/${encodeURIComponent(room)}/publish`, { event: 'bare' });
      assert.deepEqual(await argsA, [null]);
      assert.deepEqual(await next(a, 'list'), [1, 2]);
      assert.deepEqual(await next(b, 'bare'), null);

      // The outsider's room gets a publish of its own; it is the only one the outsider saw.
      await http(server, 'POST', `/v1/rooms/${encodeURIComponent(other)}/publish`, { event: 'mine', data: 1 });
      assert.equal(await next(outsider, 'mine'), 1);
      assert.deepEqual(pending(outsider, 'breaking'), []);
      assert.equal(outsider.log.filter((e) => ['breaking', 'list', 'bare'].includes(e.event)).length, 0);

      // A bad event name is refused.
      const bad = await http(server, 'POST', `/v1/rooms/${encodeURIComponent(room)}/publish`, { event: '' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, 'bad_event');
    } finally {
      ws.close();
      await close(a, b, outsider);
    }
  });

  test(`DELETE /v1/users kicks a Socket.IO socket: activenow:kicked, then io server disconnect (${transport})`, async () => {
    const room = unique('kick');
    const spared = unique('kick-spared');
    const user = unique('kate');
    const target = await connect(server, { transports: [transport] });
    const elsewhere = await connect(server, { transports: [transport] });
    const watcher = await connect(server, { transports: [transport] });
    try {
      assert.equal((await ask(target, 'presence:join', { roomId: room, userId: user, state: { mood: 'ok' } })).ok, true);
      assert.equal((await ask(elsewhere, 'presence:join', { roomId: spared, userId: user })).ok, true);
      assert.equal((await ask(watcher, 'presence:join', { roomId: room, userId: 'walt' })).ok, true);
      const targetId = target.id;

      // Where is user X: both Socket.IO memberships, with the state.
      const where = await http(server, 'GET', `/v1/users/${encodeURIComponent(user)}`);
      assert.equal(where.status, 200);
      assert.equal(where.body.online, true);
      assert.equal(where.body.connections, 2);
      const rooms = Object.fromEntries(where.body.rooms.map((r) => [r.room, r]));
      assert.deepEqual(Object.keys(rooms).sort(), [room, spared].sort());
      assert.deepEqual(rooms[room].state, { mood: 'ok' });
      assert.equal(rooms[room].connections, 1);

      // Only `room`: the socket in `spared` stays.
      const gone = disconnected(target);
      const res = await http(server, 'DELETE', `/v1/users/${encodeURIComponent(user)}?rooms=${encodeURIComponent(room)}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { identity: user, rooms: [room], connections: 1 });
      assert.deepEqual(await next(target, 'activenow:kicked'), { reason: 'kicked' });
      assert.equal(await gone, 'io server disconnect');
      // A server disconnect is final: socket.io-client does not reconnect after it.
      assert.equal(target.active, false);
      const left = await next(watcher, 'presence:event', (e) => e.type === 'leave' && e.connId === targetId);
      assert.equal(left.userId, user);
      assert.equal(elsewhere.connected, true);

      // Everywhere: the last socket goes too, and the user is offline.
      const goneToo = disconnected(elsewhere);
      const all = await http(server, 'DELETE', `/v1/users/${encodeURIComponent(user)}`);
      assert.equal(all.status, 200);
      assert.deepEqual(all.body.rooms, [spared]);
      assert.deepEqual(await next(elsewhere, 'activenow:kicked'), { reason: 'kicked' });
      assert.equal(await goneToo, 'io server disconnect');
      const after = await http(server, 'GET', `/v1/users/${encodeURIComponent(user)}`);
      assert.deepEqual({ online: after.body.online, rooms: after.body.rooms }, { online: false, rooms: [] });
      assert.equal(watcher.connected, true);
      // Kicking nobody is not an error: nothing was named.
      const none = await http(server, 'DELETE', `/v1/users/${encodeURIComponent(user)}`);
      assert.deepEqual({ status: none.status, connections: none.body.connections }, { status: 200, connections: 0 });
    } finally {
      await close(target, elsewhere, watcher);
    }
  });
}

const REDIS_SERVER = onPath('redis-server');
if (!REDIS_SERVER && process.env.CI !== 'true') {
  const why = 'redis-server is not on PATH: the two-node server API Socket.IO test cannot run';
  console.error(`\n!!! SKIPPED: ${why} !!!\n`);
}

test('two nodes on Redis: a publish on one node reaches Socket.IO members on both, a kick on the other closes them', {
  skip: !REDIS_SERVER && process.env.CI !== 'true' ? 'no redis-server' : false,
}, async () => {
  const redis = await startRedis(REDIS_SERVER);
  const nodes = [];
  const sockets = [];
  try {
    for (const name of ['a', 'b']) nodes.push(await startServer({ REDIS_URL: redis.url, NODE_ID: `api-${name}` }));
    const [a, b] = nodes;
    const room = unique('cluster-api');
    const user = unique('kim');
    const onA = await connect(a);
    const onB = await connect(b, { transports: ['polling'] });
    const watcher = await connect(b);
    sockets.push(onA, onB, watcher);
    assert.equal((await ask(onA, 'presence:join', { roomId: room, userId: user })).ok, true);
    assert.equal((await ask(onB, 'presence:join', { roomId: room, userId: user })).ok, true);
    assert.equal((await ask(watcher, 'presence:join', { roomId: room, userId: 'wes' })).ok, true);

    // Where is user X, asked of either node: one room, two connections (one per node).
    for (const node of nodes) {
      const where = await http(node, 'GET', `/v1/users/${encodeURIComponent(user)}`);
      assert.equal(where.status, 200);
      assert.deepEqual(
        { online: where.body.online, connections: where.body.connections, rooms: where.body.rooms.map((r) => [r.room, r.connections]) },
        { online: true, connections: 2, rooms: [[room, 2]] },
      );
    }

    const res = await http(a, 'POST', `/v1/rooms/${encodeURIComponent(room)}/publish`, { event: 'news', data: { n: 1 } });
    assert.equal(res.status, 200);
    for (const s of [onA, onB, watcher]) assert.deepEqual(await next(s, 'news'), { n: 1 });

    const idA = onA.id;
    const idB = onB.id;
    const goneA = new Promise((resolve) => onA.once('disconnect', resolve));
    const goneB = new Promise((resolve) => onB.once('disconnect', resolve));
    const kick = await http(b, 'DELETE', `/v1/users/${encodeURIComponent(user)}`);
    assert.deepEqual(kick.body, { identity: user, rooms: [room], connections: 2 });
    for (const s of [onA, onB]) assert.deepEqual(await next(s, 'activenow:kicked'), { reason: 'kicked' });
    assert.deepEqual([await goneA, await goneB], ['io server disconnect', 'io server disconnect']);
    // The watcher sees both connections leave (per connection, as Socket.IO tracks them).
    for (const connId of [idA, idB]) {
      await next(watcher, 'presence:event', (e) => e.type === 'leave' && e.connId === connId);
    }
    const after = await http(a, 'GET', `/v1/users/${encodeURIComponent(user)}`);
    assert.equal(after.body.online, false);
  } finally {
    await close(...sockets);
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
  }
});
