'use strict';
// One room, two protocols: a Socket.IO member and an ActiveNow WebSocket (/v1/ws) member
// share the engine's room, its count, and each other's joins and leaves.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, connect, ask, next, close, unique, wsConnect, wsNext, http } = require('./helpers');

let server;
test.before(async () => {
  server = await startServer();
});
test.after(async () => {
  await server.stop();
});

test('a Socket.IO member and an ActiveNow WebSocket member see one room', async () => {
  const room = unique('mixed');
  const ws = await wsConnect(server, room, 'ws-user');
  const hello = await wsNext(ws, (m) => m.type === 'hello');
  assert.equal(hello.count, 1);

  const sio = await connect(server);
  try {
    const ack = await ask(sio, 'presence:join', { roomId: room, userId: 'sio-user', state: { name: 'S' } });
    assert.equal(ack.ok, true);
    // The snapshot holds the WebSocket member too.
    const wsMember = ack.snapshot.find((m) => m.userId === 'ws-user');
    assert.ok(wsMember, JSON.stringify(ack.snapshot));
    assert.equal(ack.snapshot.length, 2);

    // The WebSocket member sees the Socket.IO member arrive, and the count of 2.
    const joinMsg = await wsNext(ws, (m) => m.type === 'ACTIVITY_JOIN_PRESENCE' && m.data.identity === 'sio-user');
    assert.equal(joinMsg.data.identity, 'sio-user');
    await wsNext(ws, (m) => m.type === 'sync' && m.count === 2);
    const counts = await http(server, 'GET', '/v1/activity/rooms', undefined, { key: null });
    assert.equal(counts.body.room_count[room], 2);

    // A second WebSocket of another identity joins: Socket.IO sees it, per connection.
    const ws2 = await wsConnect(server, room, 'ws-two');
    const j = await next(sio, 'presence:event', (e) => e.type === 'join' && e.userId === 'ws-two');
    assert.equal(j.roomId, room);
    assert.ok(j.connId);
    await wsNext(ws, (m) => m.type === 'sync' && m.count === 3);

    // It leaves: Socket.IO sees the leave with the same connId.
    ws2.close();
    const l = await next(sio, 'presence:event', (e) => e.type === 'leave' && e.userId === 'ws-two');
    assert.equal(l.connId, j.connId);
    await wsNext(ws, (m) => m.type === 'sync' && m.count === 2);

    // The Socket.IO member's patch reaches the WebSocket member as an update.
    await ask(sio, 'presence:heartbeat', { patchState: { displayName: 'Sio' } });
    const upd = await wsNext(ws, (m) => m.type === 'ACTIVITY_UPDATE_PRESENCE' && m.data.identity === 'sio-user');
    assert.equal(upd.data.identity, 'sio-user');
    assert.equal(upd.data.displayName, 'Sio');

    // The Socket.IO member leaves: the WebSocket member sees it and the count drops.
    await ask(sio, 'presence:leave');
    const leave = await wsNext(ws, (m) => m.type === 'ACTIVITY_LEAVE_PRESENCE' && m.data.identity === 'sio-user');
    assert.equal(leave.data.identity, 'sio-user');
    await wsNext(ws, (m) => m.type === 'sync' && m.count === 1);
  } finally {
    ws.close();
    await close(sio);
  }
});

test('the same identity over both protocols counts once', async () => {
  const room = unique('same');
  const ws = await wsConnect(server, room, 'alice');
  await wsNext(ws, (m) => m.type === 'hello' && m.count === 1);
  const sio = await connect(server);
  try {
    await ask(sio, 'presence:join', { roomId: room, userId: 'alice' });
    // Socket.IO reports the connection's join; the WebSocket sees no new identity.
    await next(sio, 'presence:event', (e) => e.type === 'join' && e.connId === sio.id);
    const counts = await http(server, 'GET', '/v1/activity/rooms', undefined, { key: null });
    assert.equal(counts.body.room_count[room], 1);
  } finally {
    ws.close();
    await close(sio);
  }
});
