'use strict';
// Pusher presence across two `activenow serve` nodes sharing a throwaway `redis-server`
// started here: member_added / member_removed once per user across nodes and tabs, server
// events through either node, and the members of a killed node reaped (member_removed).
//
// Needs `redis-server` on PATH. Without it the suite is skipped loudly, and fails under
// CI=true.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  connect,
  disconnect,
  next,
  onPath,
  pending,
  signedIn,
  startAuthServer,
  startRedis,
  startServer,
  subscribed,
  terminated,
  unique,
} = require('./helpers');

const REDIS_SERVER = onPath('redis-server');
const CI = process.env.CI === 'true';
let skip = false;
if (!REDIS_SERVER) {
  const why = 'redis-server is not on PATH: the two-node Redis Pusher tests cannot run';
  if (CI) {
    console.error(`\n!!! ${why} (CI=true: failing) !!!\n`);
  } else {
    console.error(`\n!!! SKIPPED: ${why}; install Redis (e.g. apt-get install redis-server) !!!\n`);
    skip = why;
    test('two nodes on a real redis-server', { skip: why }, () => {});
  }
}

describe('Pusher presence on two nodes over Redis', { skip }, () => {
  let redis;
  let nodes = [];
  let auth;
  const clients = [];
  const client = async (node, user) => {
    const c = await connect(node, auth, user);
    clients.push(c);
    return c;
  };

  before(async () => {
    redis = await startRedis(REDIS_SERVER);
    auth = await startAuthServer();
    for (const name of ['a', 'b']) {
      nodes.push(await startServer({
        REDIS_URL: redis.url,
        NODE_ID: `pusher-${name}`,
        // A killed node's members are reaped within TTL + interval.
        PRESENCE_TTL_MS: '2000',
        PRESENCE_REAPER_INTERVAL_MS: '200',
        PRESENCE_REAPER_LOOKBACK_MS: '2000',
      }));
    }
  });
  after(async () => {
    await Promise.all(clients.map(disconnect));
    await Promise.all(nodes.map((n) => n.stop()));
    if (auth) await auth.stop();
    if (redis) await redis.stop();
  });

  test('member_added and member_removed once per user across nodes and tabs', async () => {
    const [a, b] = nodes;
    const name = unique('presence-');
    const alice = await subscribed(await client(a, { id: 'alice' }), name);
    const bobOnB = await client(b, { id: 'bob', name: 'Bob' });
    const bob = await subscribed(bobOnB, name);
    assert.equal(bob.members.count, 2);
    const added = await next(alice, 'pusher:member_added');
    assert.deepEqual(added.data, { id: 'bob', info: { name: 'Bob' } });

    // Bob's second tab, on the other node: no new member anywhere.
    const bobOnA = await client(a, { id: 'bob', name: 'Bob' });
    const bob2 = await subscribed(bobOnA, name);
    assert.equal(bob2.members.count, 2);
    // A server event through node B is the barrier on node A.
    await b.api.trigger(name, 'barrier', { n: 1 });
    await next(alice, 'barrier');
    assert.equal(pending(alice, 'pusher:member_added').length, 0);

    await disconnect(bobOnB);
    await disconnect(bobOnA);
    const removed = await next(alice, 'pusher:member_removed');
    assert.equal(removed.data.id, 'bob');
    await b.api.trigger(name, 'barrier', { n: 2 });
    await next(alice, 'barrier');
    assert.equal(pending(alice, 'pusher:member_removed').length, 0);
    assert.equal(alice.members.count, 1);

    const users = await (await b.api.get({ path: `/channels/${name}/users` })).json();
    assert.deepEqual(users.users, [{ id: 'alice' }]);
  });

  test('client events cross nodes; a killed node\'s members are removed by the survivor', async () => {
    const [a] = nodes;
    const victim = await startServer({
      REDIS_URL: redis.url,
      NODE_ID: 'pusher-victim',
      PRESENCE_TTL_MS: '2000',
      PRESENCE_REAPER_INTERVAL_MS: '200',
      PRESENCE_REAPER_LOOKBACK_MS: '2000',
    });
    nodes.push(victim);
    const name = unique('presence-');
    const alice = await subscribed(await client(a, { id: 'alice' }), name);
    const carol = await subscribed(await client(victim, { id: 'carol' }), name);
    await next(alice, 'pusher:member_added');
    carol.trigger('client-hello', { from: 'carol' });
    assert.deepEqual((await next(alice, 'client-hello')).data, { from: 'carol' });

    await victim.kill();
    const removed = await next(alice, 'pusher:member_removed', () => true, 15_000);
    assert.equal(removed.data.id, 'carol');
    assert.equal(alice.members.count, 1);
  });

  test('terminate_connections through one node closes the user\'s sockets on both', async () => {
    const [a, b] = nodes;
    const onA = await signedIn(await client(a, { id: 'dave' }));
    const onB = await signedIn(await client(b, { id: 'dave' }));
    const ends = [terminated(onA), terminated(onB)];
    await a.api.terminateUserConnections('dave');
    const results = await Promise.all(ends);
    assert.deepEqual(results, [[4009, 'disconnected'], [4009, 'disconnected']]);
  });
});
