// Join-ack latency with the real socket.io-client, against any Socket.IO presence server
// (ActiveNow on either backend, or seed 1's Node server):
//   node js-tests/socketio/tools/join-latency.js URL sequential 200   # one join at a time, each into a new room
//   node js-tests/socketio/tools/join-latency.js URL burst 100 100    # 100 connected sockets join 100 rooms at once
// Prints p50/p90/max in milliseconds. A measuring tool, not a test.
const { io } = require('socket.io-client');

const [url, mode = 'sequential', nArg = '100', roomsArg] = process.argv.slice(2);
const n = Number(nArg);
const rooms = Number(roomsArg || n);

function open() {
  const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('connect_error', reject);
  });
}

async function timedJoin(s, roomId, userId) {
  const t = process.hrtime.bigint();
  const ack = await s.timeout(10_000).emitWithAck('presence:join', { roomId, userId });
  if (!ack.ok) throw new Error(`join refused: ${JSON.stringify(ack)}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function report(lat) {
  lat.sort((a, b) => a - b);
  const at = (q) => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))].toFixed(2);
  console.log(`${url} ${mode} n=${lat.length}: join ack p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms`);
}

(async () => {
  if (!url) throw new Error('usage: join-latency.js URL sequential|burst N [ROOMS]');
  const tag = Date.now();
  const lat = [];
  if (mode === 'sequential') {
    for (let i = 0; i < n; i++) {
      const s = await open();
      lat.push(await timedJoin(s, `lat-${tag}-${i}`, `u${i}`));
      s.disconnect();
    }
  } else {
    const socks = [];
    for (let i = 0; i < n; i++) socks.push(await open());
    lat.push(...(await Promise.all(socks.map((s, i) => timedJoin(s, `lat-${tag}-${i % rooms}`, `u${i}`)))));
    socks.forEach((s) => s.disconnect());
  }
  report(lat);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
