// /demo, /dashboard and the SDK's README page example in headless Chromium against the
// real binary. Every wait is for a DOM state (with a timeout), never a sleep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { chromiumOrSkip, launch, withScreenshots } from './browser.mjs';
import { startServer } from './server.mjs';
import { frontWithPage } from './proxy.mjs';

const text = (page, sel, want) =>
  page.waitForFunction(([s, w]) => document.querySelector(s)?.textContent.trim() === w, [sel, String(want)], { timeout: 10000 });

test('demo: joins, a second session raises the count, a second tab of one session does not, leaving lowers it', async (t) => {
  if (!chromiumOrSkip(t)) return;
  const server = await startServer();
  const b = await launch();
  const pages = [];
  try {
    await withScreenshots('demo', () => pages, async () => {
      const url = `http://${server.host}/demo?room=browser-room`;
      const one = await b.context.newPage();
      pages.push(one);
      await one.goto(url);
      await text(one, '#count', 1);
      await text(one, '#state', 'open');
      await text(one, '#visitors', 1);
      const sid = (await one.textContent('#me')).trim();
      await one.waitForSelector(`#log li[data-kind="hello"]`);
      await one.waitForSelector(`#members li[data-identity="${sid}"]`);

      // Another tab of the same browser: the same session id, still one.
      const sameBrowser = await b.context.newPage();
      pages.push(sameBrowser);
      await sameBrowser.goto(url);
      await text(sameBrowser, '#count', 1);
      assert.equal((await sameBrowser.textContent('#me')).trim(), sid);

      // Another browser (its own storage): a second session, two.
      const other = await (await b.isolated()).newPage();
      pages.push(other);
      await other.goto(url);
      await text(other, '#count', 2);
      await text(one, '#count', 2);
      await text(one, '#visitors', 2);
      const otherSid = (await other.textContent('#me')).trim();
      await one.waitForSelector(`#log li[data-kind="ACTIVITY_JOIN_PRESENCE"]`);

      // A presence update over HTTP reaches the first page as an event and in the list.
      await other.fill('#display-name', 'Ann');
      await other.fill('#position', '3');
      await other.click('#update');
      await one.waitForSelector('#log li[data-kind="ACTIVITY_UPDATE_PRESENCE"]');
      await one.waitForFunction((id) => document.querySelector(`#members li[data-identity="${id}"]`)?.textContent.includes('Ann · 3'), otherSid, { timeout: 10000 });

      // Leave (button), then the count falls and the first page logs the leave.
      await other.click('#leave');
      await text(one, '#count', 1);
      await one.waitForSelector('#log li[data-kind="ACTIVITY_LEAVE_PRESENCE"]');
      // A heartbeat from the button goes out on the open socket.
      await one.click('#hb');
      await one.waitForSelector('#log li[data-kind="hb sent"]');
      assert.match(await one.textContent('#log li[data-kind="hb sent"]'), /"ok":true/);
      // Closing the other browser's page ends its visitor too.
      await other.close();
      await text(one, '#visitors', 1);
    });
  } finally {
    await b.close();
    await server.stop();
  }
});

test('dashboard: behind API_KEY, shows a room appearing and its chart point, and is not a member', async (t) => {
  if (!chromiumOrSkip(t)) return;
  const key = 'dash-key';
  const server = await startServer({ API_KEY: key, STATS_PUSH_INTERVAL_MS: '100' });
  const b = await launch();
  const pages = [];
  let ws;
  try {
    await withScreenshots('dashboard', () => pages, async () => {
      const page = await b.context.newPage();
      pages.push(page);
      // Without the key the page asks for it; a wrong one is refused.
      await page.goto(`http://${server.host}/dashboard`);
      await page.waitForSelector('#key-form:not([hidden])');
      await page.fill('#key', 'wrong');
      await page.click('#key-form button');
      await text(page, '#key-error', 'that key was refused');
      await page.fill('#key', key);
      await page.click('#key-form button');
      await text(page, '#state', 'open');
      await text(page, '#room-count', 0);
      await text(page, '#visitors-now', 0);

      ws = new WebSocket(`ws://${server.host}/v1/ws?room=dash-room&socket_session_id=watcher-1`);
      await page.waitForSelector('#rooms li[data-room="dash-room"]', { timeout: 10000 });
      await text(page, '#rooms li[data-room="dash-room"] .n', 1);
      await page.waitForSelector('#chart circle.members.last[data-value="1"]', { timeout: 10000 });
      await text(page, '#connections li[data-protocol="rooms"]', 'rooms: 1');
      // Watching made nobody a member: one room, one member, no visitor.
      const rooms = await (await fetch(`http://${server.host}/v1/activity/rooms`)).json();
      assert.deepEqual(rooms.room_count, { 'dash-room': 1 });
      await text(page, '#visitors-now', 0);

      // The room empties: the list and the chart follow.
      ws.close();
      await page.waitForSelector('#rooms li[data-room="dash-room"]', { state: 'detached', timeout: 10000 });
      await page.waitForSelector('#chart circle.members.last[data-value="0"]', { timeout: 10000 });

      // A link with #key= opens directly, and the key leaves the address bar.
      const linked = await b.context.newPage();
      pages.push(linked);
      await linked.goto(`http://${server.host}/dashboard#key=${key}`);
      await text(linked, '#state', 'open');
      assert.equal(new URL(linked.url()).hash, '');
    });
  } finally {
    ws?.close();
    await b.close();
    await server.stop();
  }
});

test("the SDK README's page example runs in the browser", async (t) => {
  if (!chromiumOrSkip(t)) return;
  const server = await startServer();
  const b = await launch();
  const pages = [];
  let front;
  try {
    await withScreenshots('readme', () => pages, async () => {
      const readme = readFileSync(new URL('../../clients/js/README.md', import.meta.url), 'utf8');
      const html = readme.match(/```html\n([\s\S]*?)```/)[1];
      front = await frontWithPage(server.host, '/readme-example/page', `<!doctype html><html><head><meta charset="utf-8"></head><body>${html}</body></html>`);
      const page = await b.context.newPage();
      pages.push(page);
      await page.goto(`http://${front.host}/readme-example/page`);
      await text(page, '#count', 1);
      await text(page, '#visitors', 1);
      const sid = await page.evaluate(() => localStorage.getItem('activenow.sid'));
      await text(page, '#members li', sid);
      const list = await (await fetch(`http://${server.host}/v1/activity/presence?room_name=${encodeURIComponent('/readme-example/page')}`)).json();
      assert.deepEqual(list.map((m) => m.identity), [sid]);
    });
  } finally {
    await b.close();
    await front?.close();
    await server.stop();
  }
});
