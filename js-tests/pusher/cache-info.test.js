'use strict';
// The `info` attributes of the HTTP API (events, batch_events, channels, channel) and cache
// channels, through the official `pusher` SDK and real pusher-js clients.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  connect,
  disconnect,
  next,
  record,
  startAuthServer,
  startServer,
  subscribed,
  unique,
  withTimeout,
} = require('./helpers');

/** Subscribes; resolves with the first event after subscription_succeeded (checked first). */
async function firstAfterSubscribe(client, name) {
  const channel = record(client.subscribe(name));
  const first = new Promise((resolve) => {
    channel.bind_global((event, data) => {
      if (event !== 'pusher:subscription_succeeded') resolve({ event, data });
    });
  });
  await next(channel, 'pusher:subscription_succeeded');
  const got = await withTimeout(first, `the first event on ${name}`);
  assert.equal(channel.log[0].event, 'pusher:subscription_succeeded');
  return { channel, first: got };
}

describe('info attributes and cache channels', () => {
  let server;
  let stale;
  let auth;
  const clients = [];
  const client = async (node, user) => {
    const c = await connect(node, auth, user);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer({ PUSHER_CACHE_MAX_EVENT_BYTES: '100' });
    // Every kept event is already expired: the TTL path without waiting for time to pass.
    stale = await startServer({ PUSHER_CACHE_TTL: '0' });
    auth = await startAuthServer();
  });
  after(async () => {
    await Promise.all(clients.map(disconnect));
    await auth.stop();
    await server.stop();
    await stale.stop();
  });

  test('events, batch_events, channels and channel answer user_count and subscription_count', async () => {
    const [presence, pub] = [unique('presence-'), unique('public-')];
    await subscribed(await client(server, { id: 'alice' }), presence);
    await subscribed(await client(server, { id: 'alice' }), presence);
    await subscribed(await client(server, { id: 'bob' }), presence);
    await subscribed(await client(server, { id: 'carol' }), pub);
    const info = 'user_count,subscription_count';
    const res = await server.api.trigger([presence, pub], 'news', { n: 1 }, { info });
    assert.deepEqual(await res.json(), {
      channels: {
        [presence]: { user_count: 2, subscription_count: 3 },
        [pub]: { subscription_count: 1 },
      },
    });
    const plain = await server.api.trigger(pub, 'news', { n: 2 });
    assert.deepEqual(await plain.json(), {});
    const batch = await server.api.triggerBatch([
      { channel: presence, name: 'a', data: '1', info },
      { channel: pub, name: 'b', data: '2' },
    ]);
    assert.deepEqual(await batch.json(), { batch: [{ user_count: 2, subscription_count: 3 }, {}] });

    const list = await (await server.api.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info } })).json();
    assert.deepEqual(list.channels[presence], { user_count: 2, subscription_count: 3 });
    const all = await (await server.api.get({ path: '/channels', params: { info: 'subscription_count' } })).json();
    assert.deepEqual(all.channels[pub], { subscription_count: 1 });
    assert.ok(Object.keys(all.channels).every((c) => !c.startsWith('#')), 'per-user rooms are not listed');
    const one = await (await server.api.get({ path: `/channels/${presence}`, params: { info } })).json();
    assert.deepEqual(one, { occupied: true, user_count: 2, subscription_count: 3 });
  });

  test('cache channels: cache_miss first, then the last event to each new subscriber', async () => {
    for (const prefix of ['cache-', 'private-cache-', 'presence-cache-']) {
      const name = unique(prefix);
      const early = await firstAfterSubscribe(await client(server, { id: 'early' }), name);
      assert.equal(early.first.event, 'pusher:cache_miss', prefix);
      await server.api.trigger(name, 'news', { n: 1 });
      await server.api.trigger(name, 'news', { n: 2 });
      // The early subscriber got both live; the barrier that both were kept in order.
      await next(early.channel, 'news', (d) => d.n === 2);
      const late = await firstAfterSubscribe(await client(server, { id: 'late' }), name);
      assert.equal(late.first.event, 'news', prefix);
      assert.deepEqual(late.first.data, { n: 2 }, prefix);
    }
  });

  test('cache channels: an event over PUSHER_CACHE_MAX_EVENT_BYTES is delivered, not kept; TTL', async () => {
    const name = unique('cache-');
    const early = await subscribed(await client(server, { id: 'early' }), name);
    await server.api.trigger(name, 'small', { n: 1 });
    await server.api.trigger(name, 'big', { text: 'x'.repeat(200) });
    await next(early, 'big');
    const late = await firstAfterSubscribe(await client(server, { id: 'late' }), name);
    assert.equal(late.first.event, 'small');

    const expired = unique('cache-');
    await stale.api.trigger(expired, 'news', { n: 1 });
    const after = await firstAfterSubscribe(await client(stale, { id: 'late' }), expired);
    assert.equal(after.first.event, 'pusher:cache_miss');
  });
});
