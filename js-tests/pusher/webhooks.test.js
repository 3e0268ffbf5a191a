'use strict';
// Pusher webhooks checked with the official `pusher` server SDK's webhook() helper: a
// receiver served here gets the binary's batches (PUSHER_APP_WEBHOOK_URL) and each one must
// pass `pusher.webhook({headers, rawBody}).isValid()`; a tampered body must not. Real pusher-js
// clients cause channel_occupied, member_added, client_event, member_removed and
// channel_vacated.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const {
  APP,
  PusherServer,
  connect,
  disconnect,
  next,
  startAuthServer,
  startServer,
  subscribed,
  unique,
  withTimeout,
} = require('./helpers');

/** A webhook receiver: every request's lower-case headers and raw body, in order. */
async function startReceiver() {
  const received = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    let rawBody = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { rawBody += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, rawBody });
      res.writeHead(200).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    received,
    /** Resolves once the requests hold `n` events in all. */
    async events(sdk, n) {
      const all = () => received.flatMap((r) => sdk.webhook(r).getEvents());
      await withTimeout(new Promise((resolve) => {
        const check = () => (all().length >= n ? resolve() : waiters.push(check));
        check();
      }), `${n} webhook events (got ${JSON.stringify(all())})`);
      return all();
    },
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('Pusher webhooks verified by the pusher SDK', () => {
  let server;
  let auth;
  let receiver;
  const sdk = new PusherServer({ ...APP, host: '127.0.0.1' });
  before(async () => {
    receiver = await startReceiver();
    auth = await startAuthServer();
    server = await startServer({ PUSHER_APP_WEBHOOK_URL: receiver.url });
  });
  after(async () => {
    if (server) await server.stop();
    if (auth) await auth.stop();
    if (receiver) await receiver.stop();
  });

  test('occupied, member_added, client_event, member_removed, vacated: each valid', async () => {
    const name = unique('presence-hooks-');
    const alice = await connect(server, auth, { id: 'alice' });
    const bob = await connect(server, auth, { id: 'bob' });
    const onAlice = await subscribed(alice, name);
    const onBob = await subscribed(bob, name);
    await next(onAlice, 'pusher:member_added');
    assert.ok(onAlice.trigger('client-typing', { on: true }));
    const typed = await next(onBob, 'client-typing');
    assert.deepEqual(typed.data, { on: true });
    const aliceSocket = alice.connection.socket_id;
    await disconnect(bob);
    await disconnect(alice);

    const events = await receiver.events(sdk, 7);
    for (const r of receiver.received) {
      const hook = sdk.webhook(r);
      assert.ok(hook.isValid(), `a valid signature: ${r.rawBody}`);
      assert.equal(typeof hook.getTime().getTime(), 'number');
    }
    const ours = events.filter((e) => e.channel === name);
    // The two sockets close concurrently: their member_removed may come in either order.
    const seen = ours.map((e) => [e.name, e.user_id]);
    const removed = seen.slice(4, 6).sort((x, y) => x[1].localeCompare(y[1]));
    assert.deepEqual([...seen.slice(0, 4), ...removed, ...seen.slice(6)], [
      ['channel_occupied', undefined],
      ['member_added', 'alice'],
      ['member_added', 'bob'],
      ['client_event', 'alice'],
      ['member_removed', 'alice'],
      ['member_removed', 'bob'],
      ['channel_vacated', undefined],
    ]);
    const client = ours.find((e) => e.name === 'client_event');
    assert.equal(client.event, 'client-typing');
    assert.equal(client.socket_id, aliceSocket);
    assert.deepEqual(JSON.parse(client.data), { on: true });

    // Tampered: the same headers over another body, or a signature under another secret.
    const first = receiver.received[0];
    const tampered = { headers: first.headers, rawBody: first.rawBody.replace('"time_ms":', '"time_ms":1') };
    assert.equal(sdk.webhook(tampered).isValid(), false);
    const stranger = new PusherServer({ ...APP, secret: 'another-secret', host: '127.0.0.1' });
    assert.equal(stranger.webhook(first).isValid(), false);
  });
});
