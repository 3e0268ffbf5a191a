// Measures the server's resident memory per idle Socket.IO socket.
//
//   node tools/idle-rss.js [sockets=3000] [joined=1|0|ws]
//
// Starts ACTIVENOW_BIN (default: target/release/activenow), opens one socket to warm up and
// reads VmRSS, then opens N more WebSocket-transport sockets (each joined to one of 100
// rooms when joined=1), waits for every ack, reads VmRSS again and prints the difference
// divided by N. `ws` opens ActiveNow /v1/ws room sockets instead, for comparison.
// Not a test: node --test does not pick up this folder.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { io } = require('socket.io-client');

process.env.ACTIVENOW_BIN ||= path.resolve(__dirname, '../../../target/release/activenow');
const { startServer } = require('../helpers');

const N = Number(process.argv[2] || 3000);
const MODE = process.argv[3] || '1';
const JOIN = MODE === '1';

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]);
}

async function open(server, i) {
  if (MODE === 'ws') {
    const WebSocket = require('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/ws?room=room-${i % 100}&socket_session_id=u${i}`);
    await new Promise((resolve, reject) => {
      ws.once('message', resolve); // hello
      ws.once('error', reject);
    });
    ws.disconnect = () => ws.close();
    return ws;
  }
  const s = io(server.base, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', reject);
  });
  if (JOIN) {
    const ack = await s.timeout(30_000).emitWithAck('presence:join', { roomId: `room-${i % 100}`, userId: `u${i}` });
    if (!ack.ok) throw new Error(JSON.stringify(ack));
  }
  return s;
}

(async () => {
  const server = await startServer({ MAX_MESSAGES_PER_SECOND: '100' });
  const pid = server.pid;
  const sockets = [await open(server, 0)];
  const before = rssKiB(pid);
  for (let i = 1; i <= N; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(i + 200, N + 1); j++) batch.push(open(server, j));
    sockets.push(...(await Promise.all(batch)));
  }
  const after = rssKiB(pid);
  const per = ((after - before) * 1024) / N;
  console.log(JSON.stringify({ sockets: N, mode: MODE, rss_before_kib: before, rss_after_kib: after, bytes_per_socket: Math.round(per) }));
  for (const s of sockets) s.disconnect();
  await server.stop();
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
