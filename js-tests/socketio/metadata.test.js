'use strict';
// Channel metadata over Socket.IO and HTTP: every operation, every error code, the
// metadata:event broadcast, and 20 concurrent writers on one item.
const test = require('node:test');
const assert = require('node:assert/strict');
const { startServer, connect, ask, next, close, http, incrementConcurrently, unique } = require('./helpers');

let server;
test.before(async () => {
  server = await startServer({ METADATA_MAX_VALUE_BYTES: '64', METADATA_MAX_ITEMS: '8' });
});
test.after(async () => {
  await server.stop();
});

async function joined(room, userId) {
  const s = await connect(server);
  const ack = await ask(s, 'presence:join', { roomId: room, userId });
  assert.equal(ack.ok, true);
  return s;
}

test('set, update, remove and get with acks and metadata:event broadcasts', async () => {
  const room = unique('meta');
  const a = await joined(room, 'alice');
  const w = await joined(room, 'watcher');
  const ch = { channelName: room, channelType: 'room' };
  try {
    const empty = await ask(a, 'metadata:getChannel', ch);
    assert.equal(empty.ok, true);
    assert.deepEqual(
      { totalCount: empty.totalCount, majorRevision: empty.majorRevision, metadata: empty.metadata },
      { totalCount: 0, majorRevision: 0, metadata: {} },
    );

    const set = await ask(a, 'metadata:setChannel', {
      ...ch,
      data: [{ key: 'topic', value: 'Weekly' }, { key: 'mode', value: 'open' }],
      options: { addTimestamp: true, addUserId: true },
    });
    assert.equal(set.ok, true);
    assert.equal(set.channelName, room);
    assert.equal(set.channelType, 'room');
    assert.equal(set.totalCount, 2);
    assert.equal(set.majorRevision, 1);
    assert.ok(set.timestamp > 0);
    assert.equal(set.metadata.topic.value, 'Weekly');
    assert.equal(set.metadata.topic.revision, 1);
    assert.equal(set.metadata.topic.authorUid, 'alice');
    assert.match(set.metadata.topic.updated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const ev = await next(w, 'metadata:event', (e) => e.operation === 'set');
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

    const upd = await ask(a, 'metadata:updateChannel', {
      ...ch,
      data: [{ key: 'topic', value: 'Daily', revision: 1 }],
      options: { majorRevision: 1 },
    });
    assert.equal(upd.ok, true);
    assert.equal(upd.majorRevision, 2);
    assert.deepEqual(
      { value: upd.metadata.topic.value, revision: upd.metadata.topic.revision },
      { value: 'Daily', revision: 2 },
    );
    assert.equal(upd.metadata.topic.authorUid, 'alice', 'kept from the set');
    const uev = await next(w, 'metadata:event', (e) => e.operation === 'update');
    assert.deepEqual(uev.items, [{ key: 'topic', value: 'Daily', revision: 2 }]);
    assert.equal(uev.majorRevision, 2);

    const got = await ask(w, 'metadata:getChannel', ch);
    assert.deepEqual(got.metadata, upd.metadata);

    const rm = await ask(a, 'metadata:removeChannel', { ...ch, data: [{ key: 'mode' }] });
    assert.equal(rm.ok, true);
    assert.deepEqual(Object.keys(rm.metadata), ['topic']);
    assert.equal(rm.majorRevision, 3);
    const rev = await next(w, 'metadata:event', (e) => e.operation === 'remove');
    assert.deepEqual(rev.items, [{ key: 'mode', value: 'open', revision: 1 }]);

    const all = await ask(a, 'metadata:removeChannel', ch);
    assert.equal(all.totalCount, 0);
    assert.equal(all.majorRevision, 4);
    await next(w, 'metadata:event', (e) => e.operation === 'remove' && e.majorRevision === 4);

    // Channels are per (type, name).
    const other = await ask(a, 'metadata:getChannel', { channelName: room, channelType: 'user' });
    assert.equal(other.majorRevision, 0);
  } finally {
    await close(a, w);
  }
});

test('error codes: METADATA_CONFLICT, METADATA_INVALID, METADATA_LOCK', async () => {
  const room = unique('errors');
  const a = await joined(room, 'alice');
  const b = await joined(room, 'bob');
  const ch = { channelName: room, channelType: 'room' };
  const code = (r) => (r.ok ? 'ok' : r.code);
  try {
    assert.equal(code(await ask(a, 'metadata:updateChannel', { ...ch, data: [{ key: 'k', value: 'v' }] })), 'METADATA_INVALID', 'update of a missing channel');
    await ask(a, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'v' }] });
    const stale = await ask(a, 'metadata:setChannel', { ...ch, data: [], options: { majorRevision: 0 } });
    assert.equal(stale.ok, false);
    assert.equal(stale.code, 'METADATA_CONFLICT');
    assert.equal(stale.error, 'Expected major revision 0, but got 1');
    const rev = await ask(a, 'metadata:updateChannel', { ...ch, data: [{ key: 'k', value: 'x', revision: 7 }] });
    assert.deepEqual(rev, { ok: false, error: 'Revision mismatch for key "k"', code: 'METADATA_CONFLICT' });
    assert.equal(code(await ask(a, 'metadata:updateChannel', { ...ch, data: [{ key: 'nope', value: 'x' }] })), 'METADATA_INVALID');
    assert.equal(code(await ask(a, 'metadata:updateChannel', { ...ch, data: [] })), 'METADATA_INVALID');
    assert.equal(code(await ask(a, 'metadata:setChannel', { channelType: 'room', data: [] })), 'METADATA_INVALID');
    assert.equal(code(await ask(a, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 5 }] })), 'METADATA_INVALID');
    assert.equal(code(await ask(a, 'metadata:setChannel', { ...ch, data: [{ key: 'k', value: 'x'.repeat(65) }] })), 'METADATA_INVALID');
    const tooMany = Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
    assert.equal(code(await ask(a, 'metadata:setChannel', { ...ch, data: tooMany })), 'METADATA_INVALID');
    assert.equal(code(await ask(a, 'metadata:setChannel', { ...ch, data: [{ key: '', value: 'v' }] })), 'METADATA_INVALID');

    // Locks: a write naming a lock needs its actor to hold it.
    const lock = unique('lock');
    const guarded = { ...ch, data: [{ key: 'k', value: 'locked' }], options: { lockName: lock } };
    const free = await ask(a, 'metadata:updateChannel', guarded);
    assert.deepEqual(free, { ok: false, error: `Lock "${lock}" is not held by any user`, code: 'METADATA_LOCK' });
    const taken = await ask(b, 'lock:acquire', { name: lock, ttlMs: 10_000 });
    assert.deepEqual(taken, { ok: true, name: lock, owner: 'bob', ttlMs: 10_000 });
    const held = await ask(a, 'lock:acquire', { name: lock });
    assert.equal(held.ok, false);
    assert.equal(held.code, 'LOCK_HELD');
    assert.equal(held.owner, 'bob');
    const byOther = await ask(a, 'metadata:updateChannel', guarded);
    assert.equal(byOther.code, 'METADATA_LOCK');
    assert.equal(byOther.error, `Lock "${lock}" is held by a different user`);
    assert.equal((await ask(b, 'metadata:updateChannel', guarded)).ok, true, 'the holder writes');
    assert.equal((await ask(a, 'lock:release', { name: lock })).code, 'LOCK_NOT_OWNER');
    assert.deepEqual(await ask(b, 'lock:release', { name: lock }), { ok: true, released: true });
    assert.deepEqual(await ask(b, 'lock:release', { name: lock }), { ok: true, released: false });
    assert.equal((await ask(a, 'lock:acquire', { name: lock, ttlMs: 1000 })).ok, true);
    assert.equal((await ask(a, 'metadata:updateChannel', guarded)).ok, true);

    // A socket that has not joined has no actor: it cannot hold locks nor write metadata.
    const anon = await connect(server);
    assert.equal((await ask(anon, 'lock:acquire', { name: unique('l') })).code, 'LOCK_INVALID');
    assert.equal((await ask(anon, 'metadata:updateChannel', guarded)).code, 'METADATA_FORBIDDEN');
    assert.equal((await ask(anon, 'metadata:setChannel', { ...ch, data: [] })).code, 'METADATA_FORBIDDEN');
    await close(anon);
  } finally {
    await close(a, b);
  }
});

test('20 concurrent writers on one item: one winner per revision, no lost update', async () => {
  const room = unique('race');
  const ch = { channelName: room, channelType: 'room' };
  const clients = await Promise.all(Array.from({ length: 20 }, (_, i) => joined(room, `w${i}`)));
  try {
    const set = await ask(clients[0], 'metadata:setChannel', { ...ch, data: [{ key: 'n', value: '0' }] });
    assert.equal(set.ok, true);
    // One round: all 20 write with the same expected revision at once; exactly one wins.
    const round = await Promise.all(
      clients.map((c, i) =>
        ask(c, 'metadata:updateChannel', { ...ch, data: [{ key: 'n', value: `r${i}`, revision: 1 }] }),
      ),
    );
    assert.equal(round.filter((r) => r.ok).length, 1);
    assert.ok(round.filter((r) => !r.ok).every((r) => r.code === 'METADATA_CONFLICT'));
    const reset = await ask(clients[0], 'metadata:setChannel', { ...ch, data: [{ key: 'n', value: '0' }] });

    const { winners, conflicts } = await incrementConcurrently(clients, ch);
    assert.deepEqual([...winners.keys()].sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 2));
    const last = await ask(clients[0], 'metadata:getChannel', ch);
    assert.equal(last.metadata.n.value, '20', 'no increment lost');
    assert.equal(last.metadata.n.revision, 21);
    assert.equal(last.majorRevision, reset.majorRevision + 20);
    console.log(`# conflicts while retrying: ${conflicts}`);
  } finally {
    await close(...clients);
  }
});

test('HTTP metadata API: reads open, writes need the API key, same rules and events', async () => {
  const room = unique('http');
  const w = await joined(room, 'watcher');
  const path = `/v1/channels/room/${encodeURIComponent(room)}/metadata`;
  try {
    const put = await http(server, 'PUT', path, { data: [{ key: 'a', value: '1' }], actorUserId: 'svc', options: { addUserId: true } });
    assert.equal(put.status, 200);
    assert.equal(put.body.majorRevision, 1);
    assert.equal(put.body.metadata.a.authorUid, 'svc');
    const ev = await next(w, 'metadata:event', (e) => e.operation === 'set');
    assert.equal(ev.authorUid, 'svc');

    const patch = await http(server, 'PATCH', path, { data: [{ key: 'a', value: '2', revision: 1 }] });
    assert.equal(patch.status, 200);
    assert.equal(patch.body.metadata.a.revision, 2);
    await next(w, 'metadata:event', (e) => e.operation === 'update');
    const conflict = await http(server, 'PATCH', path, { data: [{ key: 'a', value: '3', revision: 1 }] });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error, 'METADATA_CONFLICT');
    const invalid = await http(server, 'PATCH', path, { data: [{ key: 'zz', value: '3' }] });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.error, 'METADATA_INVALID');
    const locked = await http(server, 'PATCH', path, { data: [{ key: 'a', value: '3' }], options: { lockName: unique('l') }, actorUserId: 'svc' });
    assert.equal(locked.status, 423);
    assert.equal(locked.body.error, 'METADATA_LOCK');

    const get = await http(server, 'GET', path, undefined, { key: null });
    assert.equal(get.status, 200);
    assert.equal(get.body.totalCount, 1);
    assert.equal(get.body.metadata.a.value, '2');

    const del = await http(server, 'DELETE', path);
    assert.equal(del.status, 200);
    assert.equal(del.body.totalCount, 0);
    await next(w, 'metadata:event', (e) => e.operation === 'remove');

    const noKey = await http(server, 'PUT', path, { data: [] }, { key: null });
    assert.equal(noKey.status, 401);
    const wrongKey = await http(server, 'PUT', path, { data: [] }, { key: 'nope' });
    assert.equal(wrongKey.status, 401);
    assert.equal(wrongKey.body.error, 'unauthorized');
  } finally {
    await close(w);
  }
});

test('HTTP locks: acquire, 409 when held, release by owner, TTL', async () => {
  const name = unique('lock');
  const path = `/v1/locks/${encodeURIComponent(name)}`;
  const ok = await http(server, 'POST', path, { owner: 'o1', ttl_ms: 5000 });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { name, owner: 'o1', ttl_ms: 5000 });
  const held = await http(server, 'POST', path, { owner: 'o2', ttl_ms: 5000 });
  assert.equal(held.status, 409);
  assert.equal(held.body.error, 'LOCK_HELD');
  assert.equal(held.body.owner, 'o1');
  const who = await http(server, 'GET', path, undefined, { key: null });
  assert.equal(who.body.owner, 'o1');
  assert.equal((await http(server, 'DELETE', `${path}?owner=o2`)).status, 409);
  assert.equal((await http(server, 'DELETE', `${path}?owner=o1`)).status, 200);
  assert.equal((await http(server, 'DELETE', `${path}?owner=o1`)).status, 404);
  assert.equal((await http(server, 'POST', path, { owner: 'o2', ttl_ms: 0 })).status, 400);
  assert.equal((await http(server, 'POST', path, { owner: 'o2', ttl_ms: 10_000_000 })).status, 400);
  assert.equal((await http(server, 'POST', path, { ttl_ms: 10 })).status, 400);
  assert.equal((await http(server, 'POST', path, { owner: 'o2', ttl_ms: 1000 }, { key: null })).status, 401);
  assert.equal((await http(server, 'GET', `/v1/locks/${unique('free')}`, undefined, { key: null })).status, 404);
});

test('without API_KEY, HTTP writes are refused with a clear reason', async () => {
  const open = await startServer({ API_KEY: '' });
  try {
    const r = await http(open, 'PUT', '/v1/channels/room/x/metadata', { data: [] });
    assert.equal(r.status, 503);
    assert.equal(r.body.error, 'api_key_not_set');
    assert.match(r.body.message, /API_KEY/);
    assert.equal((await http(open, 'POST', '/v1/locks/x', { owner: 'o', ttl_ms: 10 })).status, 503);
    assert.equal((await http(open, 'GET', '/v1/channels/room/x/metadata')).status, 200);
  } finally {
    await open.stop();
  }
});
