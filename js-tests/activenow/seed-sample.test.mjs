// Seed 0's own browser sample, line for line, with the `ws` package standing in for the
// browser's WebSocket: every message and field the seed lists must arrive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, inbox } from './server.mjs';

const opened = (ws) => new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });

test('the seed browser sample sees every message and field', async () => {
  const server = await startServer();
  const location = { host: server.host };
  try {
    const sid = 'sample-' + Math.random().toString(16).slice(2);
    const web = new WebSocket(`ws://${location.host}/web?socket_session_id=${encodeURIComponent(sid)}`);
    const webIn = inbox(web);
    await opened(web);
    assert.deepEqual(await webIn.next(), { type: 'GATEWAY_CONNECT', data: 'WebSocket 已连接' });
    const online = await webIn.next();
    assert.equal(online.type, 'VISITOR_ONLINE');
    assert.equal(online.data.online, 1);
    assert.equal(typeof online.data.timestamp, 'number');

    const room = 'demo';
    const ws = new WebSocket(`ws://${location.host}/v1/ws?room=${encodeURIComponent(room)}&socket_session_id=${encodeURIComponent(sid)}`);
    const roomIn = inbox(ws);
    await opened(ws);
    const hello = await roomIn.next();
    assert.deepEqual(Object.keys(hello).sort(), ['count', 'sid', 'ttl', 'type']);
    assert.equal(hello.type, 'hello');
    assert.equal(hello.sid, sid);
    assert.equal(hello.count, 1);
    const hbSec = Math.max(5, Math.floor((hello.ttl || 30) / 2));
    assert.equal(hbSec, 15);
    ws.send(JSON.stringify({ type: 'hb' }));
    const join = await roomIn.until('ACTIVITY_JOIN_PRESENCE');
    assert.deepEqual(Object.keys(join.data).sort(), ['identity', 'joinedAt', 'roomName']);
    assert.equal(join.data.identity, sid);
    assert.equal(join.data.roomName, room);

    // updatePresence(position, displayName), as the sample's fetch does.
    const r = await fetch(`http://${location.host}/v1/activity/presence/update`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'x-socket-session-id': sid },
      body: JSON.stringify({ room_name: room, position: 1, display_name: 'Ann' }),
    });
    assert.equal(r.status, 200);
    const upd = await roomIn.until('ACTIVITY_UPDATE_PRESENCE');
    assert.deepEqual(upd.data.identity, sid);
    assert.equal(upd.data.roomName, room);
    assert.equal(upd.data.displayName, 'Ann');
    assert.equal(upd.data.position, 1);
    assert.equal(typeof upd.data.updatedAt, 'number');

    // Another visitor joins the room, then leaves: sync and both events.
    const other = new WebSocket(`ws://${location.host}/v1/ws?room=${room}&socket_session_id=other`);
    await opened(other);
    assert.equal((await roomIn.until('ACTIVITY_JOIN_PRESENCE')).data.identity, 'other');
    assert.deepEqual(await roomIn.until('sync'), { type: 'sync', count: 2 });
    other.close();
    assert.deepEqual(await roomIn.until('ACTIVITY_LEAVE_PRESENCE'), {
      type: 'ACTIVITY_LEAVE_PRESENCE', data: { identity: 'other', roomName: room },
    });
    assert.deepEqual(await roomIn.until('sync'), { type: 'sync', count: 1 });

    // A second visitor on the global channel: online, then offline with its sessionId.
    const web2 = new WebSocket(`ws://${location.host}/v1/ws/web?socket_session_id=v2`);
    await opened(web2);
    assert.equal((await webIn.until('VISITOR_ONLINE')).data.online, 2);
    web2.close();
    const off = await webIn.until('VISITOR_OFFLINE');
    assert.equal(off.data.online, 1);
    assert.equal(off.data.sessionId, 'v2');
    assert.equal(typeof off.data.timestamp, 'number');

    const today = await (await fetch(`http://${location.host}/v1/metrics/online/today`)).json();
    assert.deepEqual(Object.keys(today).sort(), ['backend', 'date', 'max', 'total']);
    assert.equal(today.max, 2);
    web.close();
    ws.close();
  } finally {
    await server.stop();
  }
});

test('SIGTERM closes sockets with 1012', async () => {
  const server = await startServer();
  const ws = new WebSocket(`ws://${server.host}/v1/ws?room=bye`);
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  await opened(ws);
  await server.stop();
  assert.equal(await closed, 1012);
});
