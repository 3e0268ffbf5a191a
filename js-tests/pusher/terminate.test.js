'use strict';
// terminate_connections with the official `pusher` SDK (terminateUserConnections) against
// real pusher-js clients: every socket signed in as the user gets pusher:error 4009 and close
// 4009 (so pusher-js does not reconnect), its presence membership ends, other users stay.
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  connect,
  disconnect,
  next,
  signedIn,
  startAuthServer,
  startServer,
  subscribed,
  terminated,
  withTimeout,
} = require('./helpers');

describe('terminate_connections', () => {
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

  test('closes every socket of the user with 4009; others stay; the member leaves', async () => {
    const alice1 = await signedIn(await client({ id: 'alice' }));
    const alice2 = await signedIn(await client({ id: 'alice' }));
    const bob = await signedIn(await client({ id: 'bob' }));
    await subscribed(alice1, 'presence-terminate');
    const watch = await subscribed(bob, 'presence-terminate');
    const ends = [terminated(alice1), terminated(alice2)];
    await server.api.terminateUserConnections('alice');
    const [[code1, state1], [code2, state2]] = await Promise.all(ends);
    assert.equal(code1, 4009);
    assert.equal(code2, 4009);
    // 4009 is in pusher-js's "do not reconnect" range.
    assert.equal(state1, 'disconnected');
    assert.equal(state2, 'disconnected');
    const removed = await next(watch, 'pusher:member_removed');
    assert.equal(removed.data.id, 'alice');
    // bob is still connected and signed in: a dm reaches him.
    const dm = new Promise((resolve) => bob.user.bind('dm', resolve));
    await server.api.sendToUser('bob', 'dm', { text: 'still here' });
    assert.deepEqual(await withTimeout(dm, 'the dm to bob'), { text: 'still here' });
    assert.equal(bob.connection.state, 'connected');
  });

  test('a user with no sockets, a bad signature and an unknown app are answered as Pusher does', async () => {
    const res = await server.api.terminateUserConnections('nobody');
    assert.equal(res.status, 200);
    const PusherServer = require('pusher');
    const forged = new PusherServer({ appId: 'test-app', key: 'test-key', secret: 'wrong', host: '127.0.0.1', port: String(server.port), useTLS: false });
    await assert.rejects(forged.terminateUserConnections('bob'), (e) => e.status === 401);
    const other = new PusherServer({ appId: 'other-app', key: 'test-key', secret: 'wrong', host: '127.0.0.1', port: String(server.port), useTLS: false });
    await assert.rejects(other.terminateUserConnections('bob'), (e) => e.status === 404);
  });
});
