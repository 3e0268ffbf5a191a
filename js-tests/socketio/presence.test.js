'use strict';
// presence:join / heartbeat / leave with the real socket.io-client, over WebSocket and
// long-polling.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, connect, ask, next, pending, close, unique } = require('./helpers');

let server;
test.before(async () => {
  server = await startServer();
});
test.after(async () => {
  await server.stop();
});

for (const transport of ['websocket', 'polling']) {
  test(`join acks a snapshot and self, and every member sees joins and leaves (${transport})`, async () => {
    const room = unique('join');
    const a = await connect(server, { transports: [transport] });
    const b = await connect(server, { transports: [transport] });
    try {
      const ackA = await ask(a, 'presence:join', { roomId: room, userId: 'alice', state: { color: 'red' } });
      assert.equal(ackA.ok, true);
      assert.equal(ackA.self.connId, a.id, 'connId is the Socket.IO socket id');
      assert.ok(Number.isInteger(ackA.self.epoch) && ackA.self.epoch > 1_600_000_000_000, 'epoch is ms-based');
      assert.equal(ackA.snapshot.length, 1);
      assert.deepEqual(ackA.snapshot[0].state, { color: 'red' });
      assert.equal(ackA.snapshot[0].userId, 'alice');
      assert.equal(ackA.snapshot[0].connId, a.id);
      assert.equal(ackA.snapshot[0].epoch, ackA.self.epoch);
      assert.ok(ackA.snapshot[0].lastSeenMs > 0);
      const own = await next(a, 'presence:event', (e) => e.type === 'join' && e.connId === a.id);
      assert.equal(own.roomId, room);

      const ackB = await ask(b, 'presence:join', { roomId: room, userId: 'bob' });
      assert.equal(ackB.ok, true);
      assert.deepEqual(ackB.snapshot.map((m) => m.userId).sort(), ['alice', 'bob']);
      const joined = await next(a, 'presence:event', (e) => e.type === 'join' && e.connId === b.id);
      assert.deepEqual(
        { type: joined.type, roomId: joined.roomId, userId: joined.userId, state: joined.state, epoch: joined.epoch },
        { type: 'join', roomId: room, userId: 'bob', state: {}, epoch: ackB.self.epoch },
      );
      assert.ok(joined.ts > 0);

      assert.deepEqual(await ask(b, 'presence:leave'), { ok: true });
      const left = await next(a, 'presence:event', (e) => e.type === 'leave' && e.connId === b.id);
      assert.equal(left.userId, 'bob');
      assert.equal(left.state, null);
      // Leaving twice is fine.
      assert.deepEqual(await ask(b, 'presence:leave'), { ok: true });

      // A second connection of the same user is its own member (per connId).
      await ask(b, 'presence:join', { roomId: room, userId: 'alice' });
      const tab = await next(a, 'presence:event', (e) => e.type === 'join' && e.connId === b.id);
      assert.equal(tab.userId, 'alice');
      // Disconnecting cleans up like a leave.
      const bId = b.id; // socket.io-client clears the id on disconnect
      await close(b);
      const gone = await next(a, 'presence:event', (e) => e.type === 'leave' && e.connId === bId);
      assert.equal(gone.userId, 'alice');
    } finally {
      await close(a, b);
    }
  });
}

test('heartbeat: changed only on a real patch, merged state broadcast as update', async () => {
  const room = unique('hb');
  const a = await connect(server);
  const w = await connect(server);
  try {
    const { self } = await ask(a, 'presence:join', { roomId: room, userId: 'alice', state: { a: 1, b: 1 } });
    await ask(w, 'presence:join', { roomId: room, userId: 'watcher' });

    assert.deepEqual(await ask(a, 'presence:heartbeat', {}), { ok: true, changed: false, epoch: self.epoch });
    assert.deepEqual(await ask(a, 'presence:heartbeat'), { ok: true, changed: false, epoch: self.epoch });

    const r = await ask(a, 'presence:heartbeat', { patchState: { b: 2, c: 3 }, epoch: self.epoch });
    assert.deepEqual(r, { ok: true, changed: true, epoch: self.epoch });
    const upd = await next(w, 'presence:event', (e) => e.type === 'update' && e.connId === a.id);
    assert.deepEqual(upd.state, { a: 1, b: 2, c: 3 });
    assert.equal(upd.userId, 'alice');
    assert.equal(upd.roomId, room);

    // The same patch again changes nothing.
    assert.equal((await ask(a, 'presence:heartbeat', { patchState: { b: 2 } })).changed, false);

    // A stale epoch changes nothing and broadcasts nothing.
    const stale = await ask(a, 'presence:heartbeat', { patchState: { b: 99 }, epoch: self.epoch - 1 });
    assert.deepEqual(stale, { ok: true, changed: false, epoch: self.epoch });
    // A higher epoch is adopted (numeric strings are coerced, as the reference does).
    const higher = await ask(a, 'presence:heartbeat', { patchState: { b: 4 }, epoch: String(self.epoch + 5) });
    assert.deepEqual(higher, { ok: true, changed: true, epoch: self.epoch + 5 });
    const after = await next(w, 'presence:event', (e) => e.type === 'update' && e.connId === a.id);
    assert.equal(after.state.b, 4, 'the stale patch (b: 99) was never broadcast');
    assert.deepEqual(pending(w, 'presence:event').filter((e) => e.type === 'update'), []);
    // The old epoch is stale now.
    assert.equal((await ask(a, 'presence:heartbeat', { patchState: { z: 1 }, epoch: self.epoch })).changed, false);

    // The snapshot shows the merged state.
    const w2 = await connect(server);
    const snap = await ask(w2, 'presence:join', { roomId: room, userId: 'w2' });
    assert.deepEqual(snap.snapshot.find((m) => m.connId === a.id).state, { a: 1, b: 4, c: 3 });
    await close(w2);
  } finally {
    await close(a, w);
  }
});

test('bad payloads get {ok:false, error}; one room per socket; heartbeat before join', async () => {
  const a = await connect(server);
  try {
    assert.deepEqual(await ask(a, 'presence:heartbeat', {}), { ok: true, changed: false });
    for (const bad of [undefined, {}, { roomId: 'r' }, { roomId: '', userId: 'u' }, { roomId: 'r', userId: 5 }, { roomId: 'r', userId: 'u', state: 'x' }]) {
      const r = await ask(a, 'presence:join', bad);
      assert.equal(r.ok, false, JSON.stringify(bad));
      assert.equal(typeof r.error, 'string');
    }
    const big = await ask(a, 'presence:join', { roomId: 'r', userId: 'u', state: { s: 'x'.repeat(70_000) } });
    assert.equal(big.ok, false);
    assert.match(big.error, /PRESENCE_MAX_STATE_BYTES/);
    assert.equal((await ask(a, 'presence:heartbeat', { epoch: 'soon' })).ok, false);
    const room = unique('one');
    assert.equal((await ask(a, 'presence:join', { roomId: room, userId: 'u' })).ok, true);
    const other = await ask(a, 'presence:join', { roomId: unique('two'), userId: 'u' });
    assert.deepEqual(other, { ok: false, error: 'Socket already joined a different presence room' });
    // Rejoining the same room gets a new, higher epoch.
    const first = (await ask(a, 'presence:join', { roomId: room, userId: 'u' })).self.epoch;
    const again = (await ask(a, 'presence:join', { roomId: room, userId: 'u' })).self.epoch;
    assert.ok(again > first);
    const unknown = await ask(a, 'presence:dance', {});
    assert.equal(unknown.ok, false);
  } finally {
    await close(a);
  }
});

test('a silent socket is reaped after PRESENCE_TTL_MS and its leave is broadcast', async () => {
  const short = await startServer({ PRESENCE_TTL_MS: '600', PRESENCE_REAPER_INTERVAL_MS: '100' });
  const room = unique('reap');
  const silent = await connect(short);
  const watcher = await connect(short);
  // The watcher keeps itself alive; the silent socket never heartbeats.
  const keepAlive = setInterval(() => watcher.emit('presence:heartbeat', {}), 100);
  try {
    const { self } = await ask(silent, 'presence:join', { roomId: room, userId: 'silent' });
    await ask(watcher, 'presence:join', { roomId: room, userId: 'watcher' });
    const left = await next(watcher, 'presence:event', (e) => e.type === 'leave' && e.connId === silent.id);
    assert.equal(left.userId, 'silent');
    assert.ok(silent.connected, 'reaping removes presence, not the socket');
    // Its next heartbeat brings it back with a new epoch.
    const hb = await ask(silent, 'presence:heartbeat', {});
    assert.equal(hb.ok, true);
    assert.ok(hb.epoch > self.epoch);
    const back = await next(watcher, 'presence:event', (e) => e.type === 'join' && e.connId === silent.id);
    assert.equal(back.epoch, hb.epoch);
  } finally {
    clearInterval(keepAlive);
    await close(silent, watcher);
    await short.stop();
  }
});

test('shutdown disconnects Socket.IO clients and exits', async () => {
  const node = await startServer();
  const a = await connect(node);
  await ask(a, 'presence:join', { roomId: unique('bye'), userId: 'u' });
  const gone = new Promise((resolve) => a.once('disconnect', resolve));
  await node.stop();
  const reason = await gone;
  assert.ok(['io server disconnect', 'transport close'].includes(reason), reason);
});

test('a flood gets rate_limited acks, the socket stays', async () => {
  const node = await startServer({ MAX_MESSAGES_PER_SECOND: '1' });
  const a = await connect(node);
  try {
    const acks = await Promise.all(Array.from({ length: 10 }, () => ask(a, 'presence:heartbeat', {})));
    const limited = acks.filter((r) => r.ok === false && r.code === 'rate_limited');
    assert.ok(limited.length >= 1, JSON.stringify(acks));
    assert.ok(a.connected);
  } finally {
    await close(a);
    await node.stop();
  }
});
