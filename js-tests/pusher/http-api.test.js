'use strict';
// Pusher's HTTP API, called only through the official `pusher` server SDK (its request
// signing, unmodified), against the built binary; deliveries checked with real pusher-js
// clients.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  APP,
  PusherServer,
  connect,
  disconnect,
  next,
  pending,
  startAuthServer,
  startServer,
  subscribed,
  unique,
} = require('./helpers');

/** The status and body of a refused SDK call. */
async function refusal(promise) {
  try {
    await promise;
  } catch (e) {
    return { status: e.status, body: e.body };
  }
  throw new Error('the call was not refused');
}

describe('Pusher HTTP API through the official SDK', () => {
  let server;
  let auth;
  const clients = [];
  const client = async (user) => {
    const c = await connect(server, auth, user);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer();
    auth = await startAuthServer();
  });
  after(async () => {
    await Promise.all(clients.map(disconnect));
    await auth.stop();
    await server.stop();
  });

  test('trigger to several channels, with socket_id exclusion', async () => {
    const [c1, c2] = [unique('public-'), unique('private-')];
    const alice = await client({ id: 'alice' });
    const bob = await client({ id: 'bob' });
    const a1 = await subscribed(alice, c1);
    const a2 = await subscribed(alice, c2);
    const b2 = await subscribed(bob, c2);
    const res = await server.api.trigger([c1, c2], 'news', { n: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual((await next(a1, 'news')).data, { n: 1 });
    assert.deepEqual((await next(a2, 'news')).data, { n: 1 });
    assert.deepEqual((await next(b2, 'news')).data, { n: 1 });

    // Excluding alice's socket: bob gets it, alice does not (barrier: a second event).
    await server.api.trigger(c2, 'only-others', { n: 2 }, { socket_id: alice.connection.socket_id });
    await server.api.trigger(c2, 'barrier', {});
    await next(b2, 'only-others');
    await next(a2, 'barrier');
    assert.equal(pending(a2, 'only-others').length, 0);
  });

  test('batch_events delivers each event to its channel', async () => {
    const [c1, c2] = [unique('public-'), unique('public-')];
    const alice = await client();
    const a1 = await subscribed(alice, c1);
    const a2 = await subscribed(alice, c2);
    const res = await server.api.triggerBatch([
      { channel: c1, name: 'one', data: { i: 1 } },
      { channel: c2, name: 'two', data: { i: 2 } },
    ]);
    assert.equal(res.status, 200);
    assert.deepEqual((await next(a1, 'one')).data, { i: 1 });
    assert.deepEqual((await next(a2, 'two')).data, { i: 2 });
  });

  test('channels, channel info and presence users', async () => {
    const presence = unique('presence-');
    const pub = unique('public-');
    const alice = await client({ id: 'alice' });
    const aliceTab2 = await client({ id: 'alice' });
    const bob = await client({ id: 'bob' });
    await subscribed(alice, presence);
    await subscribed(aliceTab2, presence);
    await subscribed(bob, presence);
    await subscribed(bob, pub);

    const all = await (await server.api.get({ path: '/channels' })).json();
    assert.ok(presence in all.channels && pub in all.channels, JSON.stringify(all));

    const filtered = await (await server.api.get({
      path: '/channels',
      params: { filter_by_prefix: 'presence-', info: 'user_count' },
    })).json();
    assert.deepEqual(filtered.channels[presence], { user_count: 2 });
    assert.ok(!(pub in filtered.channels));

    const info = await (await server.api.get({
      path: `/channels/${presence}`,
      params: { info: 'user_count,subscription_count' },
    })).json();
    assert.deepEqual(info, { occupied: true, user_count: 2, subscription_count: 3 });

    const empty = await (await server.api.get({ path: `/channels/${unique('public-')}` })).json();
    assert.deepEqual(empty, { occupied: false });

    const users = await (await server.api.get({ path: `/channels/${presence}/users` })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['alice', 'bob']);

    const notPresence = await refusal(server.api.get({ path: `/channels/${pub}/users` }));
    assert.equal(notPresence.status, 400);
    const userCountPublic = await refusal(server.api.get({ path: '/channels', params: { info: 'user_count' } }));
    assert.equal(userCountPublic.status, 400);
  });

  test('a wrong secret, a wrong key or an unknown app get 401/404 with a text body', async () => {
    const base = { host: '127.0.0.1', port: String(server.port), useTLS: false };
    const wrongSecret = new PusherServer({ ...APP, ...base, secret: 'wrong' });
    const r1 = await refusal(wrongSecret.trigger('public-x', 'e', {}));
    assert.equal(r1.status, 401);
    assert.match(r1.body, /Invalid signature/);

    const wrongKey = new PusherServer({ ...APP, ...base, key: 'other-key' });
    const r2 = await refusal(wrongKey.get({ path: '/channels' }));
    assert.equal(r2.status, 401);

    const otherApp = new PusherServer({ ...APP, ...base, appId: 'other-app' });
    const r3 = await refusal(otherApp.get({ path: '/channels' }));
    assert.equal(r3.status, 404);
  });

  test('a timestamp more than 600 s old is refused with 401', async () => {
    const realNow = Date.now;
    Date.now = () => realNow() - 700_000;
    let r;
    try {
      r = server.api.trigger('public-x', 'e', {});
    } finally {
      Date.now = realNow;
    }
    const refused = await refusal(r);
    assert.equal(refused.status, 401);
    assert.match(refused.body, /Timestamp expired/);
  });

  test('oversized data gets 413; more than 100 channels or a bad channel name gets 400', async () => {
    const big = await refusal(server.api.trigger('public-x', 'e', 'x'.repeat(11_000)));
    assert.equal(big.status, 413);
    // The SDK checks names itself; post() sends what a less careful SDK would.
    const bad = await refusal(server.api.post({ path: '/events', body: { name: 'e', data: '{}', channels: ['bad name!'] } }));
    assert.equal(bad.status, 400);
    // The SDK itself refuses more than 100 channels; the server does too, for other SDKs.
    const many = Array.from({ length: 101 }, (_, i) => `public-${i}`);
    const body = { name: 'e', data: '{}', channels: many };
    const tooMany = await refusal(server.api.post({ path: '/events', body }));
    assert.equal(tooMany.status, 400);
  });
});
