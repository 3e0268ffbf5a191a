// Outside clients against the real binary: a game front end (ping socket every second, HTTP
// heartbeats when the socket is gone) with a webhook receiver verifying signatures the way the
// README shows, and a QR-login page waiting on its socket while the app confirms.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import WebSocket from 'ws';
import { startServer, inbox } from './server.mjs';

const opened = (ws) => new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
const closed = (ws) => new Promise((resolve) => ws.once('close', (code) => resolve(code)));

/** A webhook receiver on a free loopback port; `next()` awaits the next verified event. */
async function receiver(secret) {
  let push;
  const events = inbox({ on: (_, fn) => (push = fn) });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // The README's verification, over the raw body, in constant time.
      const want = 'sha256=' + crypto.createHmac('sha256', secret).update(body).digest('hex');
      const got = req.headers['x-activenow-signature'] || '';
      const ok = got.length === want.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want));
      res.writeHead(ok ? 204 : 401).end();
      push(Buffer.from(JSON.stringify({ ok, event: JSON.parse(body.toString()) })));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, events, close: () => server.close() };
}

async function post(base, path, body, headers = {}) {
  const r = await fetch(`http://${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: r.status === 204 ? null : await r.json() };
}

test('ping socket, HTTP fallback and signed webhooks', async () => {
  const hooks = await receiver('s3cret');
  const server = await startServer({ WEBHOOK_URL: hooks.url, WEBHOOK_SECRET: 's3cret', ONLINE_TTL_MS: '1500', PRESENCE_REAPER_INTERVAL_MS: '100' });
  try {
    const ws = new WebSocket(`ws://${server.host}/api/online/ws?playerId=1001`);
    const msgs = inbox(ws);
    await opened(ws);
    ws.send(JSON.stringify({ type: 'ping' }));
    const pong = await msgs.next();
    assert.equal(pong.type, 'pong');
    assert.equal(typeof pong.ts, 'number');
    const online = await hooks.events.next();
    assert.equal(online.ok, true, 'signature verifies');
    assert.equal(online.event.type, 'user.online');
    assert.equal(online.event.data.playerId, '1001');

    // The socket drops; the front end falls back to HTTP heartbeats.
    ws.close();
    await closed(ws);
    for (let i = 0; i < 8; i++) {
      const hb = await post(server.host, '/api/online/heartbeat', { playerId: '1001' });
      assert.equal(hb.status, 200);
      await new Promise((r) => setTimeout(r, 300)); // the client's heartbeat period
    }
    const rec = await (await fetch(`http://${server.host}/api/online/player/1001`)).json();
    assert.equal(rec.status, 'online');
    const out = await post(server.host, '/api/online/logout', { playerId: '1001' });
    assert.equal(out.status, 200);
    const offline = await hooks.events.next();
    assert.equal(offline.ok, true);
    assert.equal(offline.event.type, 'user.offline');
  } finally {
    await server.stop();
    hooks.close();
  }
});

test('QR login: the page waits, the app scans and confirms', async () => {
  const server = await startServer({ API_KEY: 'k' });
  try {
    const gen = await post(server.host, '/v1/qr-login/generate', { client_info: 'web' });
    assert.equal(gen.status, 200);
    const { session_id, qr_image, expires_in } = gen.body;
    assert.equal(expires_in, 300);
    assert.match(qr_image, /^data:image\/svg\+xml;base64,/);
    const ws = new WebSocket(`ws://${server.host}/v1/ws/qr/${session_id}`);
    const msgs = inbox(ws);
    await opened(ws);
    assert.deepEqual(await msgs.next(), { status: 'connected', message: 'Waiting for confirmation' });
    const auth = { authorization: 'Bearer k' };
    assert.equal((await post(server.host, '/v1/qr-login/scan', { session_id }, auth)).status, 200);
    assert.deepEqual(await msgs.next(), { status: 'scanned' });
    const done = closed(ws);
    assert.equal((await post(server.host, '/v1/qr-login/confirm', { session_id, web_token: 'jwt' }, auth)).status, 200);
    assert.deepEqual(await msgs.next(), { status: 'confirmed', web_token: 'jwt', message: 'Login successful' });
    assert.equal(await done, 1000);
    const st = await (await fetch(`http://${server.host}/v1/qr-login/status/${session_id}`)).json();
    assert.equal(st.status, 'confirmed');
    const unknown = new WebSocket(`ws://${server.host}/v1/ws/qr/nope`);
    const refused = await new Promise((resolve) => unknown.once('unexpected-response', (_, res) => resolve(res.statusCode)));
    assert.equal(refused, 404);
  } finally {
    await server.stop();
  }
});
