'use strict';
// What seed 1's users (realtime-mesage and its SDK) do in normal use, with the real
// socket.io-client: 64 KiB states and metadata values, 1,000 metadata items, ~1 MB Engine.IO
// messages, lastSeenMs that follows heartbeats, the SDK's presenceEvent echoes, and custom
// events relayed by SOCKETIO_RELAY_EVENTS. Nothing sleeps to wait for an event.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, connect, ask, next, pending, close, unique, withTimeout } = require('./helpers');

let server;
test.before(async () => {
  // The default limits (the helper raises MAX_MESSAGES_PER_SECOND; put the default back).
  server = await startServer({ MAX_MESSAGES_PER_SECOND: '20', SOCKETIO_RELAY_EVENTS: 'chat:*,cursor' });
});
test.after(async () => {
  await server.stop();
});

const KIB = 1024;

test('64 KiB presence state and metadata values, 1,000 items: accepted by default', async () => {
  const room = unique('big');
  const a = await connect(server);
  const b = await connect(server);
  try {
    // A state whose JSON is exactly 64 KiB.
    const filler = 'x'.repeat(64 * KIB - '{"blob":""}'.length);
    const join = await ask(a, 'presence:join', { roomId: room, userId: 'alice', state: { blob: filler } });
    assert.equal(join.ok, true, JSON.stringify(join).slice(0, 200));
    const seen = await ask(b, 'presence:join', { roomId: room, userId: 'bob' });
    assert.equal(seen.snapshot.find((m) => m.userId === 'alice').state.blob.length, filler.length);
    const over = await ask(a, 'presence:heartbeat', { patchState: { more: 'y' } });
    assert.equal(over.ok, false, 'one byte more than PRESENCE_MAX_STATE_BYTES');
    assert.match(over.error, /PRESENCE_MAX_STATE_BYTES/);

    const channel = { channelName: room, channelType: 'room' };
    const value = 'v'.repeat(64 * KIB);
    const set = await ask(a, 'metadata:setChannel', { ...channel, data: [{ key: 'doc', value }] });
    assert.equal(set.ok, true, JSON.stringify(set).slice(0, 200));
    assert.equal(set.metadata.doc.value.length, value.length);
    const tooLong = await ask(a, 'metadata:setChannel', { ...channel, data: [{ key: 'doc', value: `${value}v` }] });
    assert.equal(tooLong.code, 'METADATA_INVALID');

    // Keys of a few hundred bytes (seed 1 has no limit): up to METADATA_MAX_KEY_BYTES, 1024.
    const longKey = await ask(a, 'metadata:setChannel', { ...channel, data: [{ key: 'k'.repeat(1024), value: 'x' }] });
    assert.equal(longKey.ok, true, JSON.stringify(longKey).slice(0, 200));
    const tooLongKey = await ask(a, 'metadata:setChannel', { ...channel, data: [{ key: 'k'.repeat(1025), value: 'x' }] });
    assert.equal(tooLongKey.code, 'METADATA_INVALID');
    const items = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: String(i) }));
    const many = await ask(a, 'metadata:setChannel', { ...channel, data: items });
    assert.equal(many.ok, true, JSON.stringify(many).slice(0, 200));
    assert.equal(many.totalCount, 1000);
    const tooMany = await ask(a, 'metadata:setChannel', { ...channel, data: [...items, { key: 'k1000', value: 'x' }] });
    assert.equal(tooMany.code, 'METADATA_INVALID');
  } finally {
    await close(a, b);
  }
});

test('a ~1 MB Engine.IO message is served; one over SOCKETIO_MAX_PAYLOAD_BYTES closes the session', async () => {
  const room = unique('mb');
  const a = await connect(server);
  try {
    await ask(a, 'presence:join', { roomId: room, userId: 'alice' });
    // 15 items of 64 KiB: a 983 KB message.
    const value = 'm'.repeat(64 * KIB);
    const data = Array.from({ length: 15 }, (_, i) => ({ key: `part${i}`, value }));
    const big = await ask(a, 'metadata:setChannel', { channelName: room, channelType: 'room', data });
    assert.equal(big.ok, true, JSON.stringify(big).slice(0, 200));
    assert.equal(big.totalCount, 15);

    const gone = new Promise((resolve) => a.once('disconnect', resolve));
    a.emit('metadata:setChannel', { channelName: room, channelType: 'room', data: [...data, { key: 'x', value }] });
    const reason = await withTimeout(gone, 'the oversized message to close the session');
    assert.ok(['transport close', 'transport error', 'io server disconnect'].includes(reason), reason);
  } finally {
    await close(a);
  }
});

test("lastSeenMs in a later joiner's snapshot follows the member's heartbeats", async () => {
  const room = unique('seen');
  const a = await connect(server);
  const b = await connect(server);
  try {
    const joined = await ask(a, 'presence:join', { roomId: room, userId: 'alice' });
    const first = joined.snapshot[0].lastSeenMs;
    // One heartbeat sent once the wall clock has moved past the join. The timer waits for
    // the clock, not for an event; a loop of heartbeats instead ran into the message rate
    // limit on a fast machine (60 round trips in 20 ms against a burst of 40).
    await new Promise((resolve) => setTimeout(resolve, 25));
    const sentAt = Date.now();
    const beat = await ask(a, 'presence:heartbeat', {});
    assert.equal(beat.ok, true, JSON.stringify(beat));
    assert.ok(sentAt > first);
    const later = await ask(b, 'presence:join', { roomId: room, userId: 'bob' });
    const alice = later.snapshot.find((m) => m.userId === 'alice');
    assert.ok(alice.lastSeenMs > first, `lastSeenMs ${alice.lastSeenMs} moved past the join at ${first}`);
    assert.ok(alice.lastSeenMs <= Date.now() + 5);
  } finally {
    await close(a, b);
  }
});

test("the SDK's presenceEvent echoes cost nothing: every real update of 3 members at 10 Hz is accepted", async () => {
  const room = unique('echo');
  const members = await Promise.all([1, 2, 3].map(() => connect(server)));
  try {
    for (const [i, s] of members.entries()) {
      assert.equal((await ask(s, 'presence:join', { roomId: room, userId: `u${i}` })).ok, true);
      // What @realtime-message/sdk does: one presenceEvent back, no ack, per event received.
      s.on('presence:event', (e) => s.emit('presenceEvent', e));
    }
    // Plus a storm on top: 50 unknown events per socket at once.
    for (const s of members) for (let k = 0; k < 50; k += 1) s.emit('presenceEvent', { storm: k });
    const acks = [];
    for (let round = 0; round < 30; round += 1) {
      // 10 Hz pacing comes from awaiting each round's acks plus a timer tick that is not a
      // wait for an event; the assertion is only on the acks.
      const started = Date.now();
      acks.push(...(await Promise.all(members.map((s, i) => ask(s, 'presence:heartbeat', { patchState: { round, i } })))));
      const rest = 100 - (Date.now() - started);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
    const refused = acks.filter((a) => a.ok !== true);
    assert.deepEqual(refused, [], `${refused.length} of ${acks.length} updates refused`);
    assert.ok(acks.every((a) => a.changed === true));
    // An unknown event that asks for an ack still gets one.
    const unknown = await ask(members[0], 'presenceEvent', {});
    assert.equal(unknown.code, 'unknown_type');
  } finally {
    await close(...members);
  }
});

test('SOCKETIO_RELAY_EVENTS relays listed events to the room, with the sender set by the server', async () => {
  const room = unique('relay');
  const a = await connect(server);
  const b = await connect(server);
  const c = await connect(server);
  const outsider = await connect(server);
  try {
    await ask(a, 'presence:join', { roomId: room, userId: 'alice' });
    await ask(b, 'presence:join', { roomId: room, userId: 'bob' });
    await ask(outsider, 'presence:join', { roomId: unique('other'), userId: 'eve' });

    const ack = await ask(a, 'chat:message', { text: 'hi', userId: 'forged' });
    assert.deepEqual(ack, { ok: true });
    const got = await next(b, 'chat:message');
    assert.deepEqual(got, { text: 'hi', userId: 'alice', connId: a.id });
    a.emit('cursor', [1, 2]); // no ack asked: relayed all the same
    assert.deepEqual(await next(b, 'cursor'), { data: [1, 2], userId: 'alice', connId: a.id });

    // Not listed: not relayed (no ack asked: dropped; ack asked: unknown_type).
    a.emit('typing', { on: true });
    assert.equal((await ask(a, 'typing', {})).code, 'unknown_type');
    // Not joined: refused.
    const unjoined = await ask(c, 'chat:message', { text: 'x' });
    assert.equal(unjoined.code, 'not_joined');
    // Too large.
    const large = await ask(a, 'chat:message', { text: 'z'.repeat(10 * KIB) });
    assert.equal(large.code, 'too_large');
    // A barrier: a later relayed event arrives after anything sent before it.
    await ask(a, 'chat:message', { text: 'barrier' });
    assert.deepEqual(await next(b, 'chat:message'), { text: 'barrier', userId: 'alice', connId: a.id });
    assert.deepEqual(pending(b, 'typing'), []);
    assert.deepEqual(pending(b, 'chat:message'), [], 'the refused ones were not relayed');
    assert.deepEqual(pending(a, 'chat:message'), [], 'the sender does not get its own event');
    assert.deepEqual(pending(a, 'cursor'), []);
    assert.deepEqual(pending(outsider, 'chat:message'), [], 'another room hears nothing');
    assert.deepEqual(pending(c, 'chat:message'), []);
  } finally {
    await close(a, b, c, outsider);
  }
});

test('relayed events are rate limited per socket (SOCKETIO_RELAY_RATE)', async () => {
  const room = unique('relay-rate');
  const a = await connect(server);
  try {
    await ask(a, 'presence:join', { roomId: room, userId: 'alice' });
    const acks = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(a, 'chat:message', { i })));
    const limited = acks.filter((r) => r.code === 'rate_limited');
    assert.ok(limited.length >= 1 && limited.length <= 20, JSON.stringify(acks));
    assert.ok(acks.filter((r) => r.ok === true).length >= 20, 'the burst (2 x 10) went through');
    assert.ok(a.connected);
  } finally {
    await close(a);
  }
});
