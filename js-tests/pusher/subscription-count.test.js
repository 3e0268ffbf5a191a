'use strict';
// Subscription count events with the real pusher-js: an app with
// PUSHER_SUBSCRIPTION_COUNT_EVENTS=true gets `pusher:subscription_count` on public and
// private channels (and `channel.subscriptionCount`), 1 -> 2 -> 1, on one node and across two
// nodes sharing a throwaway `redis-server` (skipped loudly without one, failing under CI=true).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  connect,
  disconnect,
  next,
  onPath,
  startAuthServer,
  startRedis,
  startServer,
  subscribed,
  unique,
} = require('./helpers');

const ENABLED = { PUSHER_SUBSCRIPTION_COUNT_EVENTS: 'true' };

/** The next subscription count of `channel` equal to `n`; checks the channel property too. */
async function counted(channel, n) {
  const e = await next(channel, 'pusher:subscription_count', (d) => d.subscription_count === n);
  assert.equal(channel.subscriptionCount, n);
  return e;
}

describe('subscription counts on one node', () => {
  let server;
  let auth;
  before(async () => {
    server = await startServer(ENABLED);
    auth = await startAuthServer();
  });
  after(async () => {
    if (server) await server.stop();
    if (auth) await auth.stop();
  });

  for (const prefix of ['', 'private-']) {
    test(`${prefix || 'public '}channel: 1 -> 2 -> 1`, async () => {
      const name = unique(`${prefix}count-`);
      const a = await connect(server, auth, { id: 'a' });
      const b = await connect(server, auth, { id: 'b' });
      try {
        const onA = await subscribed(a, name);
        await counted(onA, 1);
        const onB = await subscribed(b, name);
        await counted(onA, 2);
        await counted(onB, 2);
        b.unsubscribe(name);
        await counted(onA, 1);
      } finally {
        await disconnect(a);
        await disconnect(b);
      }
    });
  }
});

const REDIS_SERVER = onPath('redis-server');
const CI = process.env.CI === 'true';
let skip = false;
if (!REDIS_SERVER) {
  const why = 'redis-server is not on PATH: the two-node subscription count test cannot run';
  if (CI) {
    console.error(`\n!!! ${why} (CI=true: failing) !!!\n`);
  } else {
    console.error(`\n!!! SKIPPED: ${why}; install Redis (e.g. apt-get install redis-server) !!!\n`);
    skip = why;
  }
}

describe('subscription counts on two nodes over Redis', { skip }, () => {
  let redis;
  const nodes = [];
  let auth;
  before(async () => {
    redis = await startRedis(REDIS_SERVER);
    auth = await startAuthServer();
    for (const name of ['a', 'b']) {
      nodes.push(await startServer({ ...ENABLED, REDIS_URL: redis.url, NODE_ID: `count-${name}` }));
    }
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    if (auth) await auth.stop();
    if (redis) await redis.stop();
  });

  test('the count moves 1 -> 2 -> 1 across nodes', async () => {
    const name = unique('private-count-');
    const a = await connect(nodes[0], auth, { id: 'a' });
    const b = await connect(nodes[1], auth, { id: 'b' });
    try {
      const onA = await subscribed(a, name);
      await counted(onA, 1);
      const onB = await subscribed(b, name);
      await counted(onB, 2);
      await counted(onA, 2);
      await disconnect(b);
      await counted(onA, 1);
    } finally {
      await disconnect(a);
      await disconnect(b);
    }
  });
});
