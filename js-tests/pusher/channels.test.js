'use strict';
// The Pusher protocol with the real pusher-js (Node build) against the built binary: the
// handshake, public/private/presence channels with an auth endpoint signed by the official
// `pusher` SDK, members across tabs, client events, and every refusal with Pusher's code.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const {
  APP,
  WAIT_MS,
  connect,
  disconnect,
  next,
  pending,
  record,
  startAuthServer,
  startServer,
  subscribed,
  unique,
  withTimeout,
} = require('./helpers');

/** A raw `ws` socket on /app/{key}, with its frames queued for `take`. */
async function raw(server, key = APP.key, query = 'protocol=7&client=js&version=8.6.0') {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${key}?${query}`);
  ws.frames = [];
  ws.waiters = [];
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString());
    const w = ws.waiters.find((x) => x.match(frame));
    if (w) {
      ws.waiters.splice(ws.waiters.indexOf(w), 1);
      w.resolve(frame);
    } else {
      ws.frames.push(frame);
    }
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'ws open');
  return ws;
}

function take(ws, match, what) {
  const i = ws.frames.findIndex(match);
  if (i >= 0) return Promise.resolve(ws.frames.splice(i, 1)[0]);
  return withTimeout(new Promise((resolve) => ws.waiters.push({ match, resolve })), what);
}

const byEvent = (event) => (f) => f.event === event;

describe('pusher-js against ActiveNow', () => {
  let server;
  let auth;
  const clients = [];
  const client = async (user, extra) => {
    const c = await connect(server, auth, user, extra);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer({ PUSHER_CLIENT_EVENT_RATE: '5', PUSHER_MAX_EVENT_BYTES: '1000', PUSHER_MAX_PRESENCE_MEMBERS: '3', PUSHER_MAX_CHANNELS_PER_SOCKET: '3' });
    auth = await startAuthServer();
  });
  after(async () => {
    await Promise.all(clients.map(disconnect));
    await auth.stop();
    await server.stop();
  });

  test('connects: connection_established carries a Pusher socket id and the activity timeout', async () => {
    const c = await client();
    assert.match(c.connection.socket_id, /^\d+\.\d+$/);
    assert.equal(c.connection.activityTimeout, 120_000);
    const ws = await raw(server);
    const hello = await take(ws, byEvent('pusher:connection_established'), 'hello');
    assert.equal(typeof hello.data, 'string', 'data is a JSON string, as the protocol says');
    assert.equal(JSON.parse(hello.data).activity_timeout, 120);
    ws.send(JSON.stringify({ event: 'pusher:ping', data: {} }));
    await take(ws, byEvent('pusher:pong'), 'pong');
    ws.close();
  });

  test('public channel: a server event from the official SDK reaches the subscriber', async () => {
    const name = unique('public-');
    const c = await client();
    const ch = await subscribed(c, name);
    await server.api.trigger(name, 'greet', { hello: 'world' });
    const got = await next(ch, 'greet');
    assert.deepEqual(got.data, { hello: 'world' });
  });

  test('private channel: signed by the auth endpoint; a forged signature gets subscription_error', async () => {
    const name = unique('private-');
    const c = await client({ id: 'alice' });
    const ch = await subscribed(c, name);
    await server.api.trigger(name, 'note', { n: 1 });
    assert.deepEqual((await next(ch, 'note')).data, { n: 1 });

    const forger = await client({ id: 'forger' });
    const bad = record(forger.subscribe(name));
    const err = await next(bad, 'pusher:subscription_error');
    assert.equal(err.data.type, 'AuthError');
    assert.equal(err.data.status, 401);
    assert.equal(pending(bad, 'pusher:subscription_succeeded').length, 0);
  });

  test('private channel: a raw subscribe without auth, or with another socket\'s signature, is refused', async () => {
    const name = unique('private-');
    const ws = await raw(server);
    await take(ws, byEvent('pusher:connection_established'), 'hello');
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: name } }));
    const e1 = await take(ws, byEvent('pusher:subscription_error'), 'error');
    assert.equal(e1.data.status, 401);
    // A signature for socket 1.1 replayed on this socket.
    const stolen = new (require('pusher'))({ ...APP, host: 'x' }).authorizeChannel('1.1', name);
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: name, auth: stolen.auth } }));
    const e2 = await take(ws, byEvent('pusher:subscription_error'), 'error');
    assert.equal(e2.data.type, 'AuthError');
    ws.close();
  });

  test('presence channel: members count, each, me; member_added once per user across tabs', async () => {
    const name = unique('presence-');
    const alice = await client({ id: 'alice', name: 'Alice' });
    const a = await subscribed(alice, name);
    assert.equal(a.members.count, 1);
    assert.deepEqual(a.members.me, { id: 'alice', info: { name: 'Alice' } });

    const bobTab1 = await client({ id: 'bob', name: 'Bob' });
    const b1 = await subscribed(bobTab1, name);
    assert.equal(b1.members.count, 2);
    const seen = [];
    b1.members.each((m) => seen.push(m.id));
    assert.deepEqual(seen.sort(), ['alice', 'bob']);
    const added = await next(a, 'pusher:member_added');
    assert.deepEqual(added.data, { id: 'bob', info: { name: 'Bob' } });
    assert.equal(a.members.count, 2);

    // Bob's second tab: the same user, so no member_added, and the count stays 2.
    const bobTab2 = await client({ id: 'bob', name: 'Bob' });
    const b2 = await subscribed(bobTab2, name);
    assert.equal(b2.members.count, 2);
    // Barrier: a server event sent after the second tab joined.
    await server.api.trigger(name, 'barrier', { n: 1 });
    await next(a, 'barrier');
    assert.equal(pending(a, 'pusher:member_added').length, 0, 'a second tab is not a new member');
    // Nobody receives its own member_added.
    assert.equal(pending(b1, 'pusher:member_added').length, 0);
    assert.equal(pending(b2, 'pusher:member_added').length, 0);

    await disconnect(bobTab2);
    await disconnect(bobTab1);
    const removed = await next(a, 'pusher:member_removed');
    assert.equal(removed.data.id, 'bob');
    await server.api.trigger(name, 'barrier', { n: 2 });
    await next(a, 'barrier');
    assert.equal(pending(a, 'pusher:member_removed').length, 0, 'one member_removed for two tabs');
    assert.equal(a.members.count, 1);
  });

  test('presence channel: the member limit refuses the next user with LimitReached', async () => {
    const name = unique('presence-');
    for (const id of ['u1', 'u2', 'u3']) {
      await subscribed(await client({ id }), name);
    }
    // Another tab of a member still fits.
    await subscribed(await client({ id: 'u1' }), name);
    const late = record((await client({ id: 'u4' })).subscribe(name));
    const err = await next(late, 'pusher:subscription_error');
    assert.equal(err.data.type, 'LimitReached');
  });

  test('limits: PUSHER_MAX_CHANNELS_PER_SOCKET and PUSHER_MAX_USER_INFO_BYTES refuse with subscription_error', async () => {
    const ws = await raw(server);
    await take(ws, byEvent('pusher:connection_established'), 'hello');
    const names = [unique('public-'), unique('public-'), unique('public-'), unique('public-')];
    for (const channel of names) ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
    for (const channel of names.slice(0, 3)) {
      await take(ws, (f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === channel, channel);
    }
    const over = await take(ws, byEvent('pusher:subscription_error'), 'the fourth channel refused');
    assert.equal(over.channel, names[3]);
    assert.equal(over.data.type, 'LimitReached');
    // Resubscribing to a channel it holds is not a new one.
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: names[0] } }));
    await take(ws, (f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === names[0], 'resubscribe');
    ws.close();

    const big = await client({ id: 'big', name: 'x'.repeat(2000) });
    const ch = record(big.subscribe(unique('presence-')));
    const err = await next(ch, 'pusher:subscription_error');
    assert.equal(err.data.type, 'InvalidChannelData');
    assert.match(err.data.error, /PUSHER_MAX_USER_INFO_BYTES/);
  });

  test('client events: relayed to the others, not echoed, user_id added on presence channels', async () => {
    const name = unique('presence-');
    const alice = await client({ id: 'alice' });
    const bob = await client({ id: 'bob' });
    const a = await subscribed(alice, name);
    const b = await subscribed(bob, name);
    // bind_global callbacks get no metadata: bind the event itself for user_id.
    const meta = new Promise((resolve) => b.bind('client-typing', (data, m) => resolve({ data, m })));
    a.trigger('client-typing', { typing: true });
    const got = await next(b, 'client-typing');
    assert.deepEqual(got.data, { typing: true });
    assert.equal((await withTimeout(meta, 'client-typing metadata')).m.user_id, 'alice');
    b.trigger('client-typing', { typing: false });
    await next(a, 'client-typing');
    assert.equal(pending(a, 'client-typing').length, 0, 'the sender does not get its own event');

    const priv = unique('private-');
    const p1 = await subscribed(alice, priv);
    const p2 = await subscribed(bob, priv);
    p1.trigger('client-hi', 'there');
    assert.equal((await next(p2, 'client-hi')).data, 'there');
  });

  test('client events: refused on public channels and from unsubscribed sockets; pusher_internal refused', async () => {
    const ws = await raw(server);
    await take(ws, byEvent('pusher:connection_established'), 'hello');
    const name = unique('public-');
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: name } }));
    await take(ws, byEvent('pusher_internal:subscription_succeeded'), 'subscribed');
    ws.send(JSON.stringify({ event: 'client-x', channel: name, data: {} }));
    assert.equal((await take(ws, byEvent('pusher:error'), 'error')).data.code, 4009);
    ws.send(JSON.stringify({ event: 'client-x', channel: unique('private-'), data: {} }));
    assert.equal((await take(ws, byEvent('pusher:error'), 'error')).data.code, 4009);
    ws.send(JSON.stringify({ event: 'pusher_internal:member_added', channel: name, data: '{"user_id":"x"}' }));
    assert.equal((await take(ws, byEvent('pusher:error'), 'error')).data.code, 4300);
    ws.close();
  });

  test('client events: over PUSHER_CLIENT_EVENT_RATE get 4301 and are dropped; oversized data gets 4300', async () => {
    const name = unique('private-');
    const alice = await client({ id: 'alice' });
    const bob = await client({ id: 'bob' });
    const a = await subscribed(alice, name);
    const b = await subscribed(bob, name);
    const errors = [];
    const limited = new Promise((resolve) => alice.connection.bind('error', (e) => {
      errors.push(e);
      if (e.data && e.data.code === 4301) resolve(e);
    }));
    for (let i = 0; i < 40; i += 1) a.trigger('client-flood', { i });
    await withTimeout(limited, 'the 4301 rate limit error');
    // Fewer than 40 arrive: the excess was dropped, not queued.
    a.trigger('client-big', { blob: 'x'.repeat(2000) });
    const big = await withTimeout(new Promise((resolve) => alice.connection.bind('error', (e) => {
      if (e.data && e.data.code === 4300) resolve(e);
    })), 'the 4300 size error');
    assert.match(big.data.message, /PUSHER_MAX_EVENT_BYTES/);
    assert.equal(pending(b, 'client-big').length, 0);
    assert.ok(pending(b, 'client-flood').length < 40);
  });

  test('unsubscribe: no more events, and the member leaves', async () => {
    const name = unique('presence-');
    const alice = await client({ id: 'alice' });
    const bob = await client({ id: 'bob' });
    const a = await subscribed(alice, name);
    await subscribed(bob, name);
    bob.unsubscribe(name);
    const removed = await next(a, 'pusher:member_removed');
    assert.equal(removed.data.id, 'bob');
  });

  test('user authentication: signin, then sendToUser reaches every socket of that user only', async () => {
    const alice1 = await client({ id: 'alice' });
    const alice2 = await client({ id: 'alice' });
    const bob = await client({ id: 'bob' });
    const got = { a1: [], a2: [], b: [] };
    const arrived = (list) => new Promise((resolve) => list.resolve = resolve);
    const waits = [arrived(got.a1), arrived(got.a2)];
    alice1.user.bind('dm', (d) => { got.a1.push(d); got.a1.resolve(); });
    alice2.user.bind('dm', (d) => { got.a2.push(d); got.a2.resolve(); });
    bob.user.bind('dm', (d) => got.b.push(d));
    for (const c of [alice1, alice2, bob]) c.signin();
    await Promise.all([alice1, alice2, bob].map((c) => withTimeout(c.user.signinDonePromise, 'signin')));
    assert.equal(alice1.user.user_data.id, 'alice');
    // The server-to-user channel is subscribed by pusher-js after signin_success.
    const sub = (c) => withTimeout(new Promise((resolve) => {
      if (c.user.serverToUserChannel.subscribed) resolve();
      c.user.serverToUserChannel.bind('pusher:subscription_succeeded', resolve);
    }), 'server-to-user subscription');
    await Promise.all([alice1, alice2, bob].map(sub));
    await server.api.sendToUser('alice', 'dm', { text: 'hi' });
    await withTimeout(Promise.all(waits), 'the dm on both of alice\'s sockets');
    assert.deepEqual([...got.a1], [{ text: 'hi' }]);
    assert.deepEqual([...got.a2], [{ text: 'hi' }]);
    // Barrier for bob: a dm to bob arrives, and it is the only one.
    const bobGot = new Promise((resolve) => bob.user.bind('dm', resolve));
    await server.api.sendToUser('bob', 'dm', { text: 'yo' });
    await withTimeout(bobGot, 'the dm to bob');
    assert.deepEqual([...got.b], [{ text: 'yo' }]);
  });

  test('user authentication: a forged signin closes with 4009; #server-to-user-X needs signin as X', async () => {
    const ws = await raw(server);
    const hello = await take(ws, byEvent('pusher:connection_established'), 'hello');
    const socketId = JSON.parse(hello.data).socket_id;
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: '#server-to-user-bob' } }));
    assert.equal((await take(ws, byEvent('pusher:subscription_error'), 'refused')).data.status, 401);
    const forged = new (require('pusher'))({ ...APP, secret: 'wrong', host: 'x' }).authenticateUser(socketId, { id: 'bob' });
    ws.send(JSON.stringify({ event: 'pusher:signin', data: forged }));
    assert.equal((await ws.closed).code, 4009);
  });

  test('unknown app key: pusher:error 4001 and close 4001; pusher-js reports it and does not retry', async () => {
    const ws = await raw(server, 'no-such-key');
    const err = await take(ws, byEvent('pusher:error'), 'error');
    assert.equal(err.data.code, 4001);
    assert.equal((await ws.closed).code, 4001);

    const { Pusher } = require('./helpers');
    const c = new Pusher('no-such-key', require('./helpers').clientOptions(server, auth));
    clients.push(c);
    const seen = [];
    const e = await withTimeout(new Promise((resolve) => c.connection.bind('error', (err) => {
      seen.push(err);
      const code = (err.data && err.data.code) || (err.error && err.error.data && err.error.data.code);
      if (code === 4001) resolve(err);
    })), 'the 4001 error');
    assert.ok(e, JSON.stringify(seen));
    await withTimeout(new Promise((resolve) => {
      if (c.connection.state === 'failed' || c.connection.state === 'disconnected') resolve();
      c.connection.bind('state_change', (s) => { if (s.current === 'failed' || s.current === 'disconnected') resolve(); });
    }), 'pusher-js to give up');
  });

  test('protocol older than 7 is refused with 4007; none with 4008', async () => {
    const old = await raw(server, APP.key, 'protocol=6');
    assert.equal((await take(old, byEvent('pusher:error'), 'error')).data.code, 4007);
    assert.equal((await old.closed).code, 4007);
    const none = await raw(server, APP.key, '');
    assert.equal((await none.closed).code, 4008);
  });

  test('malformed frames get pusher:error and the socket stays; an oversized frame closes it with 1009', async () => {
    const ws = await raw(server);
    await take(ws, byEvent('pusher:connection_established'), 'hello');
    ws.send('not json');
    assert.equal((await take(ws, byEvent('pusher:error'), 'error')).data.code, 4300);
    ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'bad name!' } }));
    assert.equal((await take(ws, byEvent('pusher:subscription_error'), 'error')).data.type, 'InvalidChannel');
    ws.send(JSON.stringify({ event: 'pusher:ping', data: {} }));
    await take(ws, byEvent('pusher:pong'), 'pong after errors');
    ws.send(JSON.stringify({ event: 'client-x', channel: 'private-a', data: 'x'.repeat(70_000) }));
    assert.equal((await ws.closed).code, 1009);
  });

  test('the ActiveNow room socket, HTTP presence API and Socket.IO refuse the pusher: namespace', async () => {
    const refused = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/ws?room=${encodeURIComponent(`pusher:${APP.appId}:presence-x`)}`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.on('open', () => { ws.close(); resolve('opened'); });
    });
    assert.equal(refused, 400);
    const room = encodeURIComponent(`pusher:${APP.appId}:presence-x`);
    const list = await fetch(`${server.base}/v1/activity/presence?room_name=${room}`);
    assert.equal(list.status, 400);
    const update = await fetch(`${server.base}/v1/activity/presence/update`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-socket-session-id': 'alice' },
      body: JSON.stringify({ room_name: `pusher:${APP.appId}:presence-x`, display_name: 'Mallory' }),
    });
    assert.equal(update.status, 400);

    // Socket.IO presence:join into a Pusher presence channel's room is refused too.
    const { io } = require('socket.io-client');
    const sio = io(server.base, { transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      await withTimeout(new Promise((resolve, reject) => { sio.once('connect', resolve); sio.once('connect_error', reject); }), 'socket.io connect');
      const ack = await sio.timeout(WAIT_MS).emitWithAck('presence:join', { roomId: `pusher:${APP.appId}:presence-x`, userId: 'mallory' });
      assert.equal(ack.ok, false, JSON.stringify(ack));
    } finally {
      sio.close();
    }
  });
});

describe('keep-alive', () => {
  let server;
  before(async () => {
    server = await startServer({ PUSHER_ACTIVITY_TIMEOUT: '1' });
  });
  after(() => server.stop());

  test('a socket that answers no ping is closed with 4201; pusher-js stays connected', async () => {
    const c = await connect(server);
    const silent = new WebSocket(`ws://127.0.0.1:${server.port}/app/${APP.key}?protocol=7`, { autoPong: false });
    const closed = new Promise((resolve) => silent.on('close', (code) => resolve(code)));
    assert.equal(await withTimeout(closed, 'the 4201 close'), 4201);
    assert.equal(c.connection.state, 'connected');
    await disconnect(c);
  });
});
