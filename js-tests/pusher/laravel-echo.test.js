'use strict';
// Laravel Echo 2.x with `broadcaster: 'pusher'` against ActiveNow, configured as for Pusher
// except wsHost/wsPort: join().here/joining/leaving across tabs, whisper/listenForWhisper.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { APP, Pusher, startAuthServer, startServer, unique, withTimeout } = require('./helpers');

// laravel-echo 2.x ships ESM (its CommonJS file is not loadable under its "type": "module").
let Echo;

/** An Echo instance for `user`, connected. */
async function echoFor(server, auth, user) {
  const echo = new Echo({
    broadcaster: 'pusher',
    Pusher,
    key: APP.key,
    cluster: 'mt1',
    wsHost: '127.0.0.1',
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    authEndpoint: auth.url,
    auth: { params: { user_id: user.id, name: user.name } },
  });
  await withTimeout(new Promise((resolve) => {
    if (echo.connector.pusher.connection.state === 'connected') resolve();
    echo.connector.pusher.connection.bind('connected', resolve);
  }), 'Echo to connect');
  return echo;
}

/** A queue of callback arguments, awaited one by one. */
function queue() {
  const items = [];
  const waiters = [];
  return {
    push(item) {
      const w = waiters.shift();
      if (w) w(item);
      else items.push(item);
    },
    next(what) {
      if (items.length) return Promise.resolve(items.shift());
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), what);
    },
    get length() {
      return items.length;
    },
  };
}

describe('Laravel Echo (broadcaster: pusher)', () => {
  let server;
  let auth;
  const echos = [];

  before(async () => {
    ({ default: Echo } = await import('laravel-echo'));
    server = await startServer();
    auth = await startAuthServer();
  });
  after(async () => {
    for (const e of echos) e.disconnect();
    await auth.stop();
    await server.stop();
  });

  test('join().here/joining/leaving, one member per user across tabs, whisper', async () => {
    const room = unique('chat.');
    const alice = await echoFor(server, auth, { id: 'alice', name: 'Alice' });
    echos.push(alice);
    const here = queue();
    const joining = queue();
    const leaving = queue();
    const whispers = queue();
    alice.join(room)
      .here((users) => here.push(users))
      .joining((user) => joining.push(user))
      .leaving((user) => leaving.push(user))
      .listenForWhisper('typing', (e) => whispers.push(e));
    assert.deepEqual(await here.next('here'), [{ name: 'Alice' }]);

    const bob = await echoFor(server, auth, { id: 'bob', name: 'Bob' });
    echos.push(bob);
    const bobHere = queue();
    const bobChannel = bob.join(room).here((users) => bobHere.push(users));
    const users = await bobHere.next('bob here');
    assert.deepEqual(users.map((u) => u.name).sort(), ['Alice', 'Bob']);
    assert.deepEqual(await joining.next('joining'), { name: 'Bob' });

    // Bob's second tab: no second joining.
    const bobTab2 = await echoFor(server, auth, { id: 'bob', name: 'Bob' });
    echos.push(bobTab2);
    const tab2Here = queue();
    bobTab2.join(room).here((u) => tab2Here.push(u));
    assert.equal((await tab2Here.next('tab 2 here')).length, 2);

    bobChannel.whisper('typing', { who: 'bob' });
    assert.deepEqual(await whispers.next('whisper'), { who: 'bob' });
    assert.equal(joining.length, 0, 'a second tab is not a new member');

    bobTab2.disconnect();
    bob.disconnect();
    assert.deepEqual(await leaving.next('leaving'), { name: 'Bob' });
  });
});
