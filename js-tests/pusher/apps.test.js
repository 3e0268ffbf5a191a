'use strict';
// Several apps: the environment's app plus a `[[pusher.apps]]` list in the TOML config file,
// each with its own key, secret and limits, through real pusher-js clients and the official
// `pusher` SDK (one SDK instance per app, each signing with its own secret).
const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  Pusher,
  PusherServer,
  clientOptions,
  connect,
  disconnect,
  next,
  startAuthServer,
  startServer,
  subscribed,
  withTimeout,
} = require('./helpers');

const A = { appId: 'app-a', key: 'key-a', secret: 'secret-a' };
const B = { appId: 'app-b', key: 'key-b', secret: 'secret-b' };
const CONFIG = `
pusher_max_presence_members = 50

[[pusher.apps]]
id = "${A.appId}"
key = "${A.key}"
secret = "${A.secret}"
client_events = false
max_presence_members = 1
max_connections = 3

[[pusher.apps]]
id = "${B.appId}"
key = "${B.key}"
secret = "${B.secret}"
`;

/** The auth endpoint of one app (the shared helper signs for the environment's app). */
async function appAuth(app) {
  const http = require('node:http');
  const signer = new PusherServer({ ...app, host: '127.0.0.1' });
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const channel = form.get('channel_name');
      const userId = form.get('user_id') || 'anonymous';
      const presence = channel.startsWith('presence-') ? { user_id: userId, user_info: {} } : undefined;
      const auth = signer.authorizeChannel(form.get('socket_id'), channel, presence);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(auth));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/auth`,
    userUrl: `http://127.0.0.1:${server.address().port}/none`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Resolves when pusher-js reports a pusher:error with `code` (it nests it in two shapes). */
function errorCode(client, code, what) {
  return withTimeout(new Promise((resolve) => client.connection.bind('error', (err) => {
    const got = (err && err.data && err.data.code) || (err && err.error && err.error.data && err.error.data.code);
    if (got === code) resolve(got);
  })), what);
}

describe('several apps from [[pusher.apps]]', () => {
  let server;
  let dir;
  const auths = {};
  const clients = [];
  const client = async (app, user) => {
    const c = new Pusher(app.key, clientOptions(server, auths[app.appId], user));
    clients.push(c);
    await withTimeout(new Promise((resolve, reject) => {
      c.connection.bind('connected', resolve);
      c.connection.bind('failed', () => reject(new Error('failed')));
    }), `a client of ${app.appId} to connect`);
    return c;
  };
  const api = (app) => new PusherServer({ ...app, host: '127.0.0.1', port: String(server.port), useTLS: false });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'activenow-pusher-apps-'));
    const file = path.join(dir, 'activenow.toml');
    fs.writeFileSync(file, CONFIG);
    server = await startServer({}, ['--config', file]);
    auths[A.appId] = await appAuth(A);
    auths[B.appId] = await appAuth(B);
    auths.env = await startAuthServer();
  });
  after(async () => {
    await Promise.all(clients.map(disconnect));
    for (const a of Object.values(auths)) await a.stop();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('each app has its own channels and API; the environment app still works', async () => {
    const onA = await subscribed(await client(A, { id: 'u1' }), 'private-news');
    const onB = await subscribed(await client(B, { id: 'u1' }), 'private-news');
    await api(B).trigger('private-news', 'hello', { app: 'b' });
    assert.deepEqual((await next(onB, 'hello')).data, { app: 'b' });
    await api(A).trigger('private-news', 'hello', { app: 'a' });
    // A's event is the barrier: had B's reached A, it would have come first.
    assert.deepEqual((await next(onA, 'hello')).data, { app: 'a' });
    // A secret of another app does not sign for this one.
    const crossed = new PusherServer({ ...A, secret: B.secret, host: '127.0.0.1', port: String(server.port), useTLS: false });
    await assert.rejects(crossed.trigger('private-news', 'x', {}), (e) => e.status === 401);
    const envClient = await connect(server, auths.env, { id: 'e' });
    clients.push(envClient);
    await subscribed(envClient, 'private-news');
  });

  test('per-app limits: presence members, client events, connections', async () => {
    const first = await subscribed(await client(A, { id: 'p1' }), 'presence-room');
    assert.equal(first.members.count, 1);
    const second = await client(A, { id: 'p2' });
    const refused = new Promise((resolve) => second.subscribe('presence-room').bind('pusher:subscription_error', resolve));
    assert.equal((await withTimeout(refused, 'LimitReached')).status, 4100);
    // B takes the server-wide default from the file, not A's 1.
    await subscribed(await client(B, { id: 'p1' }), 'presence-room');
    await subscribed(await client(B, { id: 'p2' }), 'presence-room');

    const err = errorCode(first.pusher, 4009, 'client events refused');
    first.trigger('client-typing', {});
    await err;

    // A holds 3 sockets now (onA, first, second): the next one is over its quota.
    const over = new Pusher(A.key, clientOptions(server, auths[A.appId], { id: 'p3' }));
    clients.push(over);
    await errorCode(over, 4004, 'over quota');
  });

  test('an unknown key is refused with 4001', async () => {
    const stranger = new Pusher('key-c', clientOptions(server, null, null));
    clients.push(stranger);
    await errorCode(stranger, 4001, 'unknown key');
  });
});
