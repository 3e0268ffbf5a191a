'use strict';
// The Socket.IO hub on the Redis backend across two nodes: two `activenow serve` processes
// share a throwaway `redis-server` started here, and real socket.io-client sockets on
// different nodes (WebSocket and long-polling) see one room: presence events and acks,
// epochs, TTL reaping, reaping of a killed (and restarted) node's members, channel metadata
// and locks (Socket.IO and HTTP), 20 concurrent writers split over both nodes, and a room
// mixing Socket.IO and ActiveNow WebSocket members.
//
// Needs `redis-server` on PATH. Without it the suite is skipped loudly, and fails under
// CI=true.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  ask,
  close,
  connect,
  http,
  incrementConcurrently,
  next,
  onPath,
  pending,
  startRedis,
  startServer,
  unique,
  wsConnect,
  wsNext,
} = require('./helpers');

const REDIS_SERVER = onPath('redis-server');
const CI = process.env.CI === 'true';
let skip = false;
if (!REDIS_SERVER) {
  const why = 'redis-server is not on PATH: the two-node Redis Socket.IO tests cannot run';
  if (CI) {
    console.error(`\n!!! ${why} (CI=true: failing) !!!\n`);
  } else {
    console.error(`\n!!! SKIPPED: ${why}; install Redis (e.g. apt-get install redis-server) !!!\n`);
    skip = why;
    // Shows up in the runner's skipped count, not only as skipped suites.
    test('two nodes on a real redis-server', { skip: why }, () => {});
  }
}

/** Two nodes of one cluster on `redisUrl`. */
async function twoNodes(redisUrl, tag, env = {}) {
  const nodes = [];
  try {
    for (const name of ['a', 'b']) {
      nodes.push(await startServer({ REDIS_URL: redisUrl, NODE_ID: `${tag}-${name}`, ...env }));
    }
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw e;
  }
  return nodes;
}

/**
 * Fails if `socket` received the same event twice (a cross-node event delivered both
 * locally and through Redis would arrive twice with identical content).
 */
function assertNoDuplicates(socket, event) {
  const seen = new Set();
  for (const { event: name, payload } of socket.log) {
    if (name !== event) continue;
    const key = JSON.stringify(payload);
    assert.ok(!seen.has(key), `${event} delivered twice to ${socket.id}: ${key}`);
    seen.add(key);
  }
}

/** A socket on `server` joined to `room` as `userId`; the ack is kept as `socket.joinAck`. */
async function joinedOn(server, room, userId, state, opts = {}) {
  const s = await connect(server, opts);
  const ack = await ask(s, 'presence:join', state === undefined ? { roomId: room, userId } : { roomId: room, userId, state });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  s.joinAck = ack;
  return s;
}

describe('Socket.IO on Redis, two nodes', { skip }, () => {
  let redis;
  let A;
  let B;

  before(async () => {
    if (!REDIS_SERVER) {
      throw new Error('redis-server is not on PATH and CI=true: install Redis so the two-node Redis tests run');
    }
    redis = await startRedis(REDIS_SERVER);
    [A, B] = await twoNodes(redis.url, 'sio', { METADATA_MAX_VALUE_BYTES: '1024', SOCKETIO_RELAY_EVENTS: 'chat:*' });
  });

  after(async () => {
    await Promise.all([A, B].filter(Boolean).map((n) => n.stop()));
    if (redis) await redis.stop();
  });

  test('presence across nodes: snapshot, join/update/leave events, heartbeat, epochs', async () => {
    const room = unique('x-presence');
    // bob on B, carol on A (over long-polling): each watches the other node.
    const bob = await joinedOn(B, room, 'bob', { side: 'B' });
    const carol = await joinedOn(A, room, 'carol', undefined, { transports: ['polling'] });
    const alice = await connect(A);
    let alice2;
    try {
      // alice joins on A: the snapshot holds bob (joined on B) with his state and epoch.
      const ack = await ask(alice, 'presence:join', { roomId: room, userId: 'alice', state: { a: 1, b: 1 } });
      assert.equal(ack.ok, true);
      assert.equal(ack.self.connId, alice.id);
      const epoch1 = ack.self.epoch;
      assert.ok(Number.isInteger(epoch1) && epoch1 > 1_600_000_000_000, 'epoch is ms-based');
      assert.deepEqual(ack.snapshot.map((m) => m.userId).sort(), ['alice', 'bob', 'carol']);
      const bobInSnap = ack.snapshot.find((m) => m.connId === bob.id);
      assert.ok(bobInSnap, JSON.stringify(ack.snapshot));
      assert.equal(bobInSnap.userId, 'bob');
      assert.deepEqual(bobInSnap.state, { side: 'B' });
      assert.equal(bobInSnap.epoch, bob.joinAck.self.epoch);
      assert.ok(bobInSnap.lastSeenMs > 0);

      // bob, on B, sees alice's join from A.
      const joined = await next(bob, 'presence:event', (e) => e.type === 'join' && e.connId === alice.id);
      assert.deepEqual(
        { type: joined.type, roomId: joined.roomId, userId: joined.userId, state: joined.state, epoch: joined.epoch },
        { type: 'join', roomId: room, userId: 'alice', state: { a: 1, b: 1 }, epoch: epoch1 },
      );
      assert.ok(joined.ts > 0);
      // carol's join on A reached bob on B, and her snapshot held bob.
      const carolJoin = await next(bob, 'presence:event', (e) => e.type === 'join' && e.connId === carol.id);
      assert.equal(carolJoin.userId, 'carol');
      assert.deepEqual(carol.joinAck.snapshot.map((m) => m.connId).sort(), [bob.id, carol.id].sort());

      // Heartbeat ack; a patch is merged and broadcast as update to the other node.
      assert.deepEqual(await ask(alice, 'presence:heartbeat', {}), { ok: true, changed: false, epoch: epoch1 });
      const hb = await ask(alice, 'presence:heartbeat', { patchState: { b: 2, c: 3 }, epoch: epoch1 });
      assert.deepEqual(hb, { ok: true, changed: true, epoch: epoch1 });
      const upd = await next(bob, 'presence:event', (e) => e.type === 'update' && e.connId === alice.id);
      assert.deepEqual(
        { roomId: upd.roomId, userId: upd.userId, state: upd.state },
        { roomId: room, userId: 'alice', state: { a: 1, b: 2, c: 3 } },
      );
      // And the other way: bob's patch on B reaches carol and alice on A.
      assert.equal((await ask(bob, 'presence:heartbeat', { patchState: { side: 'B2' } })).changed, true);
      const bobUpd = await next(carol, 'presence:event', (e) => e.type === 'update' && e.connId === bob.id);
      assert.deepEqual(bobUpd.state, { side: 'B2' });
      await next(alice, 'presence:event', (e) => e.type === 'update' && e.connId === bob.id);

      // alice drops and reconnects to the other node: her old connection leaves everywhere...
      const oldId = alice.id;
      await close(alice);
      const gone = await next(bob, 'presence:event', (e) => e.type === 'leave' && e.connId === oldId);
      assert.equal(gone.userId, 'alice');
      assert.equal(gone.state, null);
      await next(carol, 'presence:event', (e) => e.type === 'leave' && e.connId === oldId);

      // ...and her new one on B has a higher epoch; the old epoch is stale there.
      alice2 = await connect(B);
      const ack2 = await ask(alice2, 'presence:join', { roomId: room, userId: 'alice', state: { a: 1 } });
      const epoch2 = ack2.self.epoch;
      assert.ok(epoch2 > epoch1, `epoch after reconnect ${epoch2} > ${epoch1}`);
      assert.deepEqual(ack2.snapshot.map((m) => m.connId).sort(), [alice2.id, bob.id, carol.id].sort());
      assert.deepEqual(ack2.snapshot.find((m) => m.connId === bob.id).state, { side: 'B2' }, 'the snapshot has the merged state');
      await next(carol, 'presence:event', (e) => e.type === 'join' && e.connId === alice2.id && e.epoch === epoch2);
      const stale = await ask(alice2, 'presence:heartbeat', { patchState: { a: 99 }, epoch: epoch1 });
      assert.deepEqual(stale, { ok: true, changed: false, epoch: epoch2 });
      const fresh = await ask(alice2, 'presence:heartbeat', { patchState: { a: 2 }, epoch: epoch2 });
      assert.deepEqual(fresh, { ok: true, changed: true, epoch: epoch2 });
      const updated = await next(carol, 'presence:event', (e) => e.type === 'update' && e.connId === alice2.id);
      assert.deepEqual(updated.state, { a: 2 }, 'the stale patch (a: 99) was never applied');
      assert.equal(updated.epoch, epoch2);
      assert.deepEqual(
        pending(carol, 'presence:event').filter((e) => e.type === 'update' && e.connId === alice2.id),
        [],
        'the stale heartbeat broadcast nothing',
      );

      // A rejoin on the same socket gets a higher epoch still; the previous one is stale.
      const ack3 = await ask(alice2, 'presence:join', { roomId: room, userId: 'alice' });
      assert.ok(ack3.self.epoch > epoch2);
      assert.equal((await ask(alice2, 'presence:heartbeat', { patchState: { z: 1 }, epoch: epoch2 })).changed, false);

      // Counts agree on both nodes.
      for (const node of [A, B]) {
        const counts = await http(node, 'GET', '/v1/activity/rooms', undefined, { key: null });
        assert.equal(counts.body.room_count[room], 3, `count on ${node.base}`);
      }

      // presence:leave on B is seen on A; then the count drops on both nodes.
      assert.deepEqual(await ask(alice2, 'presence:leave'), { ok: true });
      const left = await next(carol, 'presence:event', (e) => e.type === 'leave' && e.connId === alice2.id);
      assert.equal(left.userId, 'alice');
      assert.equal(left.state, null);
      await next(bob, 'presence:event', (e) => e.type === 'leave' && e.connId === alice2.id);
      for (const node of [A, B]) {
        const counts = await http(node, 'GET', '/v1/activity/rooms', undefined, { key: null });
        assert.equal(counts.body.room_count[room], 2, `count on ${node.base}`);
      }
      // Every event reached each socket once, whichever node it came from.
      for (const s of [bob, carol]) assertNoDuplicates(s, 'presence:event');
    } finally {
      await close(...[alice, alice2, bob, carol].filter(Boolean));
    }
  });

  test('SOCKETIO_RELAY_EVENTS: relayed across nodes to the room, not when unlisted, not from an unjoined socket', async () => {
    const room = unique('x-relay');
    const bob = await joinedOn(B, room, 'bob');
    const alice = await joinedOn(A, room, 'alice');
    const carol = await joinedOn(A, room, 'carol');
    const outsider = await joinedOn(B, unique('x-other'), 'eve');
    const unjoined = await connect(B);
    try {
      // A -> B (and to carol, on the sender's node).
      assert.deepEqual(await ask(alice, 'chat:message', { text: 'hi', connId: 'forged' }), { ok: true });
      const fromAlice = { text: 'hi', userId: 'alice', connId: alice.id };
      assert.deepEqual(await next(bob, 'chat:message'), fromAlice);
      assert.deepEqual(await next(carol, 'chat:message'), fromAlice);
      // B -> A, no ack asked.
      bob.emit('chat:typing', true);
      const fromBob = { data: true, userId: 'bob', connId: bob.id };
      assert.deepEqual(await next(alice, 'chat:typing'), fromBob);
      assert.deepEqual(await next(carol, 'chat:typing'), fromBob);

      alice.emit('whisper', { secret: 1 }); // not listed
      assert.equal((await ask(unjoined, 'chat:message', { text: 'x' })).code, 'not_joined');
      // Barrier: alice's later relay reaches B after anything she sent before it.
      await ask(alice, 'chat:message', { text: 'barrier' });
      await next(bob, 'chat:message', (m) => m.text === 'barrier');
      await next(carol, 'chat:message', (m) => m.text === 'barrier');
      bob.emit('chat:message', { text: 'barrier-b' });
      await next(alice, 'chat:message', (m) => m.text === 'barrier-b');
      assert.deepEqual(pending(bob, 'whisper'), []);
      assert.deepEqual(pending(bob, 'chat:message'), []);
      assert.deepEqual(pending(alice, 'chat:message'), [], 'the sender does not get its own event');
      assert.deepEqual(pending(bob, 'chat:typing'), []);
      assert.deepEqual(pending(outsider, 'chat:message'), [], 'another room hears nothing');
      assert.deepEqual(pending(unjoined, 'chat:message'), []);
      assertNoDuplicates(bob, 'chat:message');
      assertNoDuplicates(carol, 'chat:message');
    } finally {
      await close(alice, bob, carol, outsider, unjoined);
    }
  });

  test("lastSeenMs of a member on another node follows its heartbeats", async () => {
    const room = unique('x-seen');
    const bob = await joinedOn(B, room, 'bob');
    const first = bob.joinAck.snapshot[0].lastSeenMs;
    const alice = await connect(A);
    try {
      // bob heartbeats on B once the wall clock has moved past his join; B's next reaper
      // tick (1 s) carries it to Redis, where A reads it. Awaited by re-reading the
      // snapshot (a rejoin of the same room), bounded by a deadline.
      let beat;
      do {
        beat = await ask(bob, 'presence:heartbeat', {});
        assert.equal(beat.ok, true);
      } while (Date.now() <= first + 20);
      const heardAt = Date.now();
      let seen;
      const deadline = Date.now() + 5000;
      do {
        const ack = await ask(alice, 'presence:join', { roomId: room, userId: 'alice' });
        seen = ack.snapshot.find((m) => m.userId === 'bob').lastSeenMs;
        if (seen > first) break;
        await next(alice, 'presence:event', (e) => e.type === 'join' && e.connId === alice.id);
      } while (Date.now() < deadline);
      assert.ok(seen > first, `bob's lastSeenMs ${seen} moved past his join at ${first}`);
      console.log(`# lastSeenMs on the other node caught up ${Date.now() - heardAt} ms after the heartbeat`);
    } finally {
      await close(alice, bob);
    }
  });

  test('metadata across nodes: events, conflicts, HTTP reads', async () => {
    const room = unique('x-meta');
    const ch = { channelName: room, channelType: 'room' };
    const path = `/v1/channels/room/${encodeURIComponent(room)}/metadata`;
    const alice = await joinedOn(A, room, 'alice');
    const bob = await joinedOn(B, room, 'bob');
    try {
      const set = await ask(alice, 'metadata:setChannel', {
        ...ch,
        data: [{ key: 'topic', value: 'Weekly' }, { key: 'mode', value: 'open' }],
        options: { addUserId: true },
      });
      assert.equal(set.ok, true, JSON.stringify(set));
      assert.equal(set.majorRevision, 1);
      // The change made on A reaches B.
      const ev = await next(bob, 'metadata:event', (e) => e.operation === 'set');
      assert.deepEqual(
        { ...ev, timestamp: 0 },
        {
          channelName: room,
          channelType: 'room',
          operation: 'set',
          items: [{ key: 'topic', value: 'Weekly', revision: 1 }, { key: 'mode', value: 'open', revision: 1 }],
          majorRevision: 1,
          timestamp: 0,
          authorUid: 'alice',
        },
      );

      // B reads A's write, over Socket.IO and over HTTP.
      const got = await ask(bob, 'metadata:getChannel', ch);
      assert.deepEqual(got.metadata, set.metadata);
      assert.equal(got.majorRevision, 1);
      const httpGet = await http(B, 'GET', path, undefined, { key: null });
      assert.equal(httpGet.status, 200);
      assert.equal(httpGet.body.totalCount, 2);
      assert.equal(httpGet.body.majorRevision, 1);
      assert.deepEqual(httpGet.body.metadata, set.metadata);

      // bob updates on B; alice on A sees it, and her write with the revision she had is stale.
      const upd = await ask(bob, 'metadata:updateChannel', { ...ch, data: [{ key: 'topic', value: 'Daily', revision: 1 }] });
      assert.equal(upd.ok, true, JSON.stringify(upd));
      assert.equal(upd.metadata.topic.revision, 2);
      const uev = await next(alice, 'metadata:event', (e) => e.operation === 'update');
      assert.deepEqual(uev.items, [{ key: 'topic', value: 'Daily', revision: 2 }]);
      assert.equal(uev.authorUid, 'bob');
      const stale = await ask(alice, 'metadata:updateChannel', { ...ch, data: [{ key: 'topic', value: 'Monthly', revision: 1 }] });
      assert.deepEqual(stale, { ok: false, error: 'Revision mismatch for key "topic"', code: 'METADATA_CONFLICT' });
      const staleMajor = await ask(alice, 'metadata:setChannel', { ...ch, data: [], options: { majorRevision: 1 } });
      assert.equal(staleMajor.code, 'METADATA_CONFLICT');
      assert.equal(staleMajor.error, 'Expected major revision 1, but got 2');
      // The same rule over HTTP on the other node.
      const conflict = await http(A, 'PATCH', path, { data: [{ key: 'topic', value: 'x', revision: 1 }] });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.error, 'METADATA_CONFLICT');
      // An HTTP write on A reaches the Socket.IO member on B.
      const put = await http(A, 'PATCH', path, { data: [{ key: 'mode', value: 'closed', revision: 1 }], actorUserId: 'svc' });
      assert.equal(put.status, 200);
      const hev = await next(bob, 'metadata:event', (e) => e.operation === 'update' && e.majorRevision === 3);
      assert.deepEqual(hev.items, [{ key: 'mode', value: 'closed', revision: 2 }]);

      // remove on B reaches A; A reads what B left.
      const rm = await ask(bob, 'metadata:removeChannel', { ...ch, data: [{ key: 'mode' }] });
      assert.equal(rm.ok, true);
      assert.equal(rm.majorRevision, 4);
      const rev = await next(alice, 'metadata:event', (e) => e.operation === 'remove');
      assert.deepEqual(rev.items, [{ key: 'mode', value: 'closed', revision: 2 }]);
      for (const s of [alice, bob]) assertNoDuplicates(s, 'metadata:event');
      const final = await http(A, 'GET', path, undefined, { key: null });
      assert.deepEqual(Object.keys(final.body.metadata), ['topic']);
      assert.equal(final.body.metadata.topic.value, 'Daily');
      assert.equal(final.body.majorRevision, 4);
    } finally {
      await close(alice, bob);
    }
  });

  test('locks across nodes: a lock held on A guards writes and acquires on B; HTTP on either node', async () => {
    const room = unique('x-lock');
    const ch = { channelName: room, channelType: 'room' };
    const lock = unique('lock');
    const lockPath = `/v1/locks/${encodeURIComponent(lock)}`;
    const alice = await joinedOn(A, room, 'alice');
    const bob = await joinedOn(B, room, 'bob');
    try {
      assert.equal((await ask(alice, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'v' }] })).ok, true);
      const guarded = (value) => ({ ...ch, data: [{ key: 'k', value }], options: { lockName: lock } });

      // alice takes the lock on A.
      assert.deepEqual(await ask(alice, 'lock:acquire', { name: lock, ttlMs: 30_000 }), {
        ok: true,
        name: lock,
        owner: 'alice',
        ttlMs: 30_000,
      });
      // On B: bob cannot take it, and his write naming it is refused.
      const held = await ask(bob, 'lock:acquire', { name: lock, ttlMs: 1000 });
      assert.equal(held.ok, false);
      assert.equal(held.code, 'LOCK_HELD');
      assert.equal(held.owner, 'alice');
      const refused = await ask(bob, 'metadata:updateChannel', guarded('by-bob'));
      assert.deepEqual(refused, { ok: false, error: `Lock "${lock}" is held by a different user`, code: 'METADATA_LOCK' });
      assert.equal((await ask(bob, 'lock:release', { name: lock })).code, 'LOCK_NOT_OWNER');
      // HTTP on B sees the holder and refuses another owner.
      const who = await http(B, 'GET', lockPath, undefined, { key: null });
      assert.equal(who.status, 200);
      assert.equal(who.body.owner, 'alice');
      const httpHeld = await http(B, 'POST', lockPath, { owner: 'svc', ttl_ms: 1000 });
      assert.equal(httpHeld.status, 409);
      assert.equal(httpHeld.body.error, 'LOCK_HELD');
      assert.equal(httpHeld.body.owner, 'alice');
      assert.equal((await http(B, 'DELETE', `${lockPath}?owner=svc`)).status, 409);
      // Nothing was written by the refused attempts.
      const before = await ask(bob, 'metadata:getChannel', ch);
      assert.equal(before.metadata.k.value, 'v');

      // The holder writes on A with the lock; B sees the change.
      const ok = await ask(alice, 'metadata:updateChannel', guarded('by-alice'));
      assert.equal(ok.ok, true, JSON.stringify(ok));
      await next(bob, 'metadata:event', (e) => e.operation === 'update' && e.items[0].value === 'by-alice');

      // alice releases on A; bob acquires on B and now writes under the lock; alice cannot.
      assert.deepEqual(await ask(alice, 'lock:release', { name: lock }), { ok: true, released: true });
      assert.equal((await ask(bob, 'lock:acquire', { name: lock, ttlMs: 30_000 })).owner, 'bob');
      assert.equal((await ask(bob, 'metadata:updateChannel', guarded('by-bob'))).ok, true);
      assert.equal((await ask(alice, 'metadata:updateChannel', guarded('again'))).code, 'METADATA_LOCK');
      assert.equal((await ask(alice, 'lock:acquire', { name: lock })).owner, 'bob');
      // HTTP on A sees bob as the holder; the owner releases over HTTP on A; B sees it free.
      assert.equal((await http(A, 'GET', lockPath, undefined, { key: null })).body.owner, 'bob');
      assert.equal((await http(A, 'DELETE', `${lockPath}?owner=bob`)).status, 200);
      assert.equal((await http(B, 'GET', lockPath, undefined, { key: null })).status, 404);
      assert.deepEqual(await ask(bob, 'lock:release', { name: lock }), { ok: true, released: false });

      // A lock taken over HTTP on B guards a Socket.IO write on A.
      assert.equal((await http(B, 'POST', lockPath, { owner: 'svc', ttl_ms: 30_000 })).status, 200);
      assert.equal((await ask(alice, 'metadata:updateChannel', guarded('x'))).code, 'METADATA_LOCK');
      assert.equal((await ask(alice, 'lock:acquire', { name: lock })).code, 'LOCK_HELD');
      const httpLocked = await http(A, 'PATCH', `/v1/channels/room/${encodeURIComponent(room)}/metadata`, {
        data: [{ key: 'k', value: 'svc' }],
        options: { lockName: lock },
        actorUserId: 'svc',
      });
      assert.equal(httpLocked.status, 200, JSON.stringify(httpLocked.body));
      assert.equal((await http(A, 'DELETE', `${lockPath}?owner=svc`)).status, 200);
    } finally {
      await close(alice, bob);
    }
  });

  test('20 concurrent writers split over both nodes: one winner per revision, no lost update', async () => {
    const room = unique('x-race');
    const ch = { channelName: room, channelType: 'room' };
    const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => joinedOn(i % 2 ? B : A, room, `w${i}`)));
    try {
      const set = await ask(clients[0], 'metadata:setChannel', { ...ch, data: [{ key: 'n', value: '0' }] });
      assert.equal(set.ok, true);
      // One round: all 20 write with the same expected revision at once; exactly one wins.
      const round = await Promise.all(
        clients.map((c, i) => ask(c, 'metadata:updateChannel', { ...ch, data: [{ key: 'n', value: `r${i}`, revision: 1 }] })),
      );
      assert.equal(round.filter((r) => r.ok).length, 1, JSON.stringify(round));
      assert.ok(round.filter((r) => !r.ok).every((r) => r.code === 'METADATA_CONFLICT'), JSON.stringify(round));

      // Increments: each writer reads, increments and writes with the revision it read; on
      // conflict it reads again (on its own node) and retries until its increment lands.
      const reset = await ask(clients[1], 'metadata:setChannel', { ...ch, data: [{ key: 'n', value: '0' }] });
      assert.equal(reset.ok, true);
      const { winners, conflicts } = await incrementConcurrently(clients, ch);
      assert.deepEqual([...winners.keys()].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 2));
      const last = await ask(clients[0], 'metadata:getChannel', ch);
      assert.equal(last.metadata.n.value, '20', 'no increment lost');
      assert.equal(last.metadata.n.revision, 21);
      assert.equal(last.majorRevision, reset.majorRevision + 20);
      // Every winning write reached a member on each node, once per revision.
      for (const watcher of [clients[0], clients[1]]) {
        for (let rev = 2; rev <= 21; rev += 1) {
          await next(
            watcher,
            'metadata:event',
            (e) => e.operation === 'update' && e.majorRevision > reset.majorRevision && e.items[0].revision === rev,
          );
        }
        const extra = pending(watcher, 'metadata:event').filter((e) => e.majorRevision > reset.majorRevision);
        assert.deepEqual(extra, [], 'one event per winning write');
      }

      // Appends: each writer adds its own entry to a JSON list; all 20 entries survive.
      const list = await ask(clients[2], 'metadata:setChannel', { ...ch, data: [{ key: 'list', value: '[]' }] });
      assert.equal(list.ok, true);
      let appendConflicts = 0;
      await Promise.all(
        clients.map(async (c, i) => {
          for (;;) {
            const cur = await ask(c, 'metadata:getChannel', ch);
            const { value, revision } = cur.metadata.list;
            const entries = [...JSON.parse(value), `w${i}`];
            const r = await ask(c, 'metadata:updateChannel', { ...ch, data: [{ key: 'list', value: JSON.stringify(entries), revision }] });
            if (r.ok) return;
            assert.equal(r.code, 'METADATA_CONFLICT', JSON.stringify(r));
            appendConflicts += 1;
          }
        }),
      );
      const appended = await http(B, 'GET', `/v1/channels/room/${encodeURIComponent(room)}/metadata`, undefined, { key: null });
      const entries = JSON.parse(appended.body.metadata.list.value);
      assert.equal(entries.length, 20, 'no append lost');
      assert.deepEqual([...entries].sort(), Array.from({ length: 20 }, (_, i) => `w${i}`).sort());
      assert.equal(appended.body.metadata.list.revision, 21);
      console.log(`# conflicts while retrying: increments ${conflicts}, appends ${appendConflicts}`);
    } finally {
      await close(...clients);
    }
  });

  test('a mixed room across nodes: a /v1/ws member on B and a Socket.IO member on A', async () => {
    const room = unique('x-mixed');
    const ws = await wsConnect(B, room, 'ws-user');
    const hello = await wsNext(ws, (m) => m.type === 'hello');
    assert.equal(hello.count, 1);
    const sio = await connect(A);
    let ws2;
    try {
      const ack = await ask(sio, 'presence:join', { roomId: room, userId: 'sio-user', state: { name: 'S' } });
      assert.equal(ack.ok, true);
      // The snapshot taken on A holds the WebSocket member connected to B.
      assert.ok(ack.snapshot.find((m) => m.userId === 'ws-user'), JSON.stringify(ack.snapshot));
      assert.equal(ack.snapshot.length, 2);

      // The WebSocket member on B sees the Socket.IO member arrive, and one count of 2.
      const joinMsg = await wsNext(ws, (m) => m.type === 'ACTIVITY_JOIN_PRESENCE' && m.data.identity === 'sio-user');
      assert.equal(joinMsg.data.identity, 'sio-user');
      await wsNext(ws, (m) => m.type === 'sync' && m.count === 2);
      for (const node of [A, B]) {
        const counts = await http(node, 'GET', '/v1/activity/rooms', undefined, { key: null });
        assert.equal(counts.body.room_count[room], 2, `count on ${node.base}`);
      }

      // A second WebSocket member on B: the Socket.IO member on A sees its join and leave.
      ws2 = await wsConnect(B, room, 'ws-two');
      const j = await next(sio, 'presence:event', (e) => e.type === 'join' && e.userId === 'ws-two');
      assert.equal(j.roomId, room);
      assert.ok(j.connId);
      await wsNext(ws, (m) => m.type === 'sync' && m.count === 3);
      ws2.close();
      const l = await next(sio, 'presence:event', (e) => e.type === 'leave' && e.userId === 'ws-two');
      assert.equal(l.connId, j.connId);
      await wsNext(ws, (m) => m.type === 'sync' && m.count === 2);

      // The Socket.IO member's patch on A reaches the WebSocket member on B as an update.
      assert.equal((await ask(sio, 'presence:heartbeat', { patchState: { displayName: 'Sio' } })).changed, true);
      const upd = await wsNext(ws, (m) => m.type === 'ACTIVITY_UPDATE_PRESENCE' && m.data.identity === 'sio-user');
      assert.equal(upd.data.displayName, 'Sio');

      // The Socket.IO member leaves on A: the WebSocket member on B sees it and the count drops.
      await ask(sio, 'presence:leave');
      await wsNext(ws, (m) => m.type === 'ACTIVITY_LEAVE_PRESENCE' && m.data.identity === 'sio-user');
      await wsNext(ws, (m) => m.type === 'sync' && m.count === 1);
      for (const node of [A, B]) {
        const counts = await http(node, 'GET', '/v1/activity/rooms', undefined, { key: null });
        assert.equal(counts.body.room_count[room], 1, `count on ${node.base}`);
      }
    } finally {
      ws.close();
      if (ws2) ws2.close();
      await close(sio);
    }
  });
});

describe('Socket.IO on Redis: a killed node', { skip }, () => {
  // Its own redis-server and nodes with short liveness settings, so the main pair above is
  // never swept by them: TTL 1.5 s, reaper every 100 ms, and the default lookback (= the
  // TTL): a node silent for 1.5 s is dead.
  const TTL_MS = 1500;
  const REAPER_MS = 100;
  const liveness = {
    PRESENCE_TTL_MS: String(TTL_MS),
    PRESENCE_REAPER_INTERVAL_MS: String(REAPER_MS),
  };
  let redis;
  let C;
  let D;

  before(async () => {
    if (!REDIS_SERVER) {
      throw new Error('redis-server is not on PATH and CI=true: install Redis so the two-node Redis tests run');
    }
    redis = await startRedis(REDIS_SERVER);
    [C, D] = await twoNodes(redis.url, 'reap', liveness);
  });

  after(async () => {
    await Promise.all([C, D].filter(Boolean).map((n) => n.stop()));
    if (redis) await redis.stop();
  });

  test('a silent socket on one node is reaped after the TTL; its next heartbeat rejoins it with a new epoch', async () => {
    const room = unique('x-ttl');
    const watcher = await joinedOn(D, room, 'watcher');
    const keepAlive = setInterval(() => watcher.connected && watcher.emit('presence:heartbeat', {}), REAPER_MS * 2);
    const silent = await connect(C);
    try {
      const { self } = await ask(silent, 'presence:join', { roomId: room, userId: 'silent', state: { s: 1 } });
      await next(watcher, 'presence:event', (e) => e.type === 'join' && e.connId === silent.id);
      // The silent socket never heartbeats: its own node reaps it, the other node hears it.
      const left = await next(watcher, 'presence:event', (e) => e.type === 'leave' && e.connId === silent.id);
      assert.equal(left.userId, 'silent');
      assert.ok(silent.connected, 'reaping removes presence, not the socket');
      const counts = await http(D, 'GET', '/v1/activity/rooms', undefined, { key: null });
      assert.equal(counts.body.room_count[room], 1);

      // Its next heartbeat joins it again with a new, higher epoch, which the ack names.
      const back = await ask(silent, 'presence:heartbeat', { epoch: self.epoch });
      assert.equal(back.ok, true);
      assert.ok(back.epoch > self.epoch, `epoch after the rejoin ${back.epoch} > ${self.epoch}`);
      const rejoined = await next(watcher, 'presence:event', (e) => e.type === 'join' && e.connId === silent.id);
      assert.equal(rejoined.epoch, back.epoch);
      assert.equal(rejoined.userId, 'silent');
      assert.deepEqual(rejoined.state, { s: 1 }, 'the rejoin keeps the state');
      // The epoch from before the reaping is stale now: its patch changes nothing.
      const stale = await ask(silent, 'presence:heartbeat', { patchState: { s: 99 }, epoch: self.epoch });
      assert.deepEqual(stale, { ok: true, changed: false, epoch: back.epoch });
      const fresh = await ask(silent, 'presence:heartbeat', { patchState: { s: 2 }, epoch: back.epoch });
      assert.deepEqual(fresh, { ok: true, changed: true, epoch: back.epoch });
      const upd = await next(watcher, 'presence:event', (e) => e.type === 'update' && e.connId === silent.id);
      assert.equal(upd.state.s, 2, 'the stale patch was never broadcast');
      assert.deepEqual(upd.state, { s: 2 });
      assert.equal(upd.epoch, back.epoch);
      assert.deepEqual(pending(watcher, 'presence:event').filter((e) => e.connId === silent.id), []);
    } finally {
      clearInterval(keepAlive);
      await close(watcher, silent);
    }
  });

  test('members of a SIGKILLed node are reaped by the survivor (even if it restarts under its id), each leave heard once', async () => {
    const room = unique('x-reap');
    const watcher = await joinedOn(D, room, 'watcher');
    const doomed = await joinedOn(C, room, 'doomed', { where: 'C' });
    const doomed2 = await joinedOn(C, room, 'doomed2');
    // An ActiveNow WebSocket member on the doomed node too: the same reaper removes it.
    const doomedWs = await wsConnect(C, room, 'doomed-ws');
    await wsNext(doomedWs, (m) => m.type === 'hello');
    // Both sides heartbeat like live clients, so only the node's death removes the doomed.
    const keepAlive = setInterval(() => {
      for (const s of [watcher, doomed, doomed2]) if (s.connected) s.emit('presence:heartbeat', {});
    }, REAPER_MS * 2);
    let late;
    try {
      const ids = [doomed.id, doomed2.id];
      for (const id of ids) await next(watcher, 'presence:event', (e) => e.type === 'join' && e.connId === id);
      const wsJoin = await next(watcher, 'presence:event', (e) => e.type === 'join' && e.userId === 'doomed-ws');
      ids.push(wsJoin.connId);
      const counts = await http(D, 'GET', '/v1/activity/rooms', undefined, { key: null });
      assert.equal(counts.body.room_count[room], 4);

      const killedAt = Date.now();
      await C.kill();
      // The node comes straight back under the same NODE_ID (a restarted pod): that must not
      // keep its dead predecessor's members alive.
      C = await startServer({ REDIS_URL: redis.url, NODE_ID: 'reap-a', ...liveness });
      const leaves = [];
      for (const id of ids) {
        leaves.push(await next(watcher, 'presence:event', (e) => e.type === 'leave' && e.connId === id, 10_000));
      }
      const elapsed = Date.now() - killedAt;
      assert.deepEqual(leaves.map((l) => l.userId).sort(), ['doomed', 'doomed-ws', 'doomed2']);
      assert.ok(leaves.every((l) => l.roomId === room && l.state === null));
      // SPEC §9: removed within TTL + reaper interval with the default lookback; the slack
      // covers a loaded machine.
      assert.ok(elapsed < TTL_MS + REAPER_MS + 2000, `reaped after ${elapsed} ms`);
      console.log(`# killed node's members reaped after ${elapsed} ms`);
      assert.ok(watcher.connected, 'the survivor kept its socket');
      const remaining = await http(D, 'GET', '/v1/activity/rooms', undefined, { key: null });
      assert.equal(remaining.body.room_count[room], 1);

      // Barrier: a later join (on the restarted node) arrives after any duplicate leave would
      // have.
      late = await joinedOn(C, room, 'late');
      assert.deepEqual(late.joinAck.snapshot.map((m) => m.userId).sort(), ['late', 'watcher']);
      await next(watcher, 'presence:event', (e) => e.type === 'join' && e.connId === late.id);
      assert.deepEqual(pending(watcher, 'presence:event').filter((e) => e.type === 'leave'), [], 'each leave once');
      assertNoDuplicates(watcher, 'presence:event');
      const settled = await http(D, 'GET', '/v1/activity/rooms', undefined, { key: null });
      assert.equal(settled.body.room_count[room], 2);
    } finally {
      clearInterval(keepAlive);
      doomedWs.terminate();
      await close(...[watcher, doomed, doomed2, late].filter(Boolean));
    }
  });
});
