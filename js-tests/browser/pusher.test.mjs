// pusher-js's browser build in headless Chromium against the real binary: an app page, served
// here with the channel authorization endpoint its back end would have (signed by the
// official `pusher` SDK), connects by changing only wsHost/wsPort, subscribes to a presence
// channel, and sees the other page's member_added and member_removed. Every wait is for a DOM
// state (with a timeout), never a sleep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import PusherServer from 'pusher';
import { chromiumOrSkip, launch, withScreenshots } from './browser.mjs';
import { startServer } from './server.mjs';

const require = createRequire(import.meta.url);
const APP = { appId: 'browser-app', key: 'browser-key', secret: 'browser-secret' };
const PUSHER_JS = readFileSync(require.resolve('pusher-js/dist/web/pusher.min.js'));

/** The app page: members in #members, count in #count, events in #log. */
function page(wsPort) {
  return `<!doctype html><html><head><meta charset="utf-8"><script src="/pusher.min.js"></script></head><body>
<p id="state">-</p><p id="me">-</p><p id="count">-</p><ul id="members"></ul><ul id="log"></ul>
<script>
const user = new URLSearchParams(location.search).get('user');
const pusher = new Pusher(${JSON.stringify(APP.key)}, {
  cluster: 'mt1', wsHost: '127.0.0.1', wsPort: ${wsPort}, forceTLS: false,
  enabledTransports: ['ws'], disableStats: true,
  channelAuthorization: { endpoint: '/pusher/auth', params: { user_id: user } },
});
pusher.connection.bind('state_change', (s) => { document.querySelector('#state').textContent = s.current; });
const render = (members) => {
  document.querySelector('#count').textContent = String(members.count);
  const list = document.querySelector('#members');
  list.textContent = '';
  members.each((m) => {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    li.textContent = m.info.name;
    list.append(li);
  });
};
const log = (kind, id) => {
  const li = document.createElement('li');
  li.dataset.kind = kind;
  li.dataset.id = id;
  document.querySelector('#log').append(li);
};
const channel = pusher.subscribe('presence-browser');
channel.bind('pusher:subscription_succeeded', (members) => {
  document.querySelector('#me').textContent = members.me.id;
  render(members);
});
channel.bind('pusher:member_added', (m) => { log('added', m.id); render(channel.members); });
channel.bind('pusher:member_removed', (m) => { log('removed', m.id); render(channel.members); });
</script></body></html>`;
}

/** The app's web server: the page, pusher-js, and the authorization endpoint. */
async function appServer(wsPort) {
  const signer = new PusherServer({ ...APP, host: '127.0.0.1' });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/pusher.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(PUSHER_JS);
      return;
    }
    if (url.pathname === '/pusher/auth' && req.method === 'POST') {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const user = form.get('user_id');
        const auth = signer.authorizeChannel(form.get('socket_id'), form.get('channel_name'), {
          user_id: user,
          user_info: { name: `User ${user}` },
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(auth));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(wsPort));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: (user) => `http://127.0.0.1:${server.address().port}/app?user=${user}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

const text = (page, sel, want) =>
  page.waitForFunction(([s, w]) => document.querySelector(s)?.textContent.trim() === w, [sel, String(want)], { timeout: 10000 });

test('pusher-js in Chromium: connect, presence subscribe with an auth endpoint, member_added across two pages', async (t) => {
  if (!chromiumOrSkip(t)) return;
  const server = await startServer({ PUSHER_APP_ID: APP.appId, PUSHER_APP_KEY: APP.key, PUSHER_APP_SECRET: APP.secret });
  const app = await appServer(Number(server.host.split(':')[1]));
  const b = await launch();
  const pages = [];
  try {
    await withScreenshots('pusher', () => pages, async () => {
      const alice = await b.context.newPage();
      pages.push(alice);
      await alice.goto(app.url('alice'));
      await text(alice, '#state', 'connected');
      await text(alice, '#me', 'alice');
      await text(alice, '#count', 1);

      const bob = await (await b.isolated()).newPage();
      pages.push(bob);
      await bob.goto(app.url('bob'));
      await text(bob, '#count', 2);
      await alice.waitForSelector('#log li[data-kind="added"][data-id="bob"]', { timeout: 10000 });
      await text(alice, '#count', 2);
      await text(alice, '#members li[data-id="bob"]', 'User bob');
      await text(bob, '#members li[data-id="alice"]', 'User alice');

      // The engine sees the channel as a room with two members.
      const rooms = await (await fetch(`http://${server.host}/v1/activity/rooms`)).json();
      assert.equal(rooms.room_count[`pusher:${APP.appId}:presence-browser`], 2);

      await bob.close();
      await alice.waitForSelector('#log li[data-kind="removed"][data-id="bob"]', { timeout: 10000 });
      await text(alice, '#count', 1);
    });
  } finally {
    await b.close();
    await app.close();
    await server.stop();
  }
});
