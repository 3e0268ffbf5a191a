'use strict';
// The server API (docs/server-api.md) seen by the real socket.io-client: a publish reaches a
// Socket.IO member as the event itself with `data` as its one argument, beside an ActiveNow
// WebSocket member of the same room; `DELETE /v1/users/{identity}` tells a Socket.IO socket
// `activenow:kicked` and then disconnects it (`io server disconnect`), with `?rooms=` sparing
// its sockets elsewhere; "where is user X" lists its Socket.IO memberships.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, connect, ask, next, pending, close, unique, wsConnect, wsNext, http } = require('./helpers');

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
