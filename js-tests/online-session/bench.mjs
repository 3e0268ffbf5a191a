// Figures for the README (not a test): memory per online player and per waiting socket, and
// HTTP login/heartbeat throughput, against the binary in ACTIVENOW_BIN (use a release build):
//   ACTIVENOW_BIN=target/release/activenow node js-tests/online-session/bench.mjs
// Loopback only; bounded counts; it stops by itself.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';

const PLAYERS = Number(process.env.PLAYERS || 10000);
const SOCKETS = Number(process.env.SOCKETS || 2000);
const CONCURRENCY = 64;

const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

async function pool(n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < n; i = next++) await fn(i);
  }));
}

const port = await freePort();
const child = spawn(process.env.ACTIVENOW_BIN, ['serve'], {
  env: { ...process.env, PORT: String(port), BIND: '127.0.0.1', RUST_LOG: 'warn', API_KEY: 'k', ONLINE_TTL: '600',
    // One client logs in every player: the per-IP rates (docs/limits-http.md) are for strangers.
    ONLINE_LOGINS_PER_IP_PER_SECOND: '0', SESSION_CREATES_PER_IP_PER_SECOND: '0' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 200; i++) {
  try { if ((await fetch(`${base}/healthz`)).ok) break; } catch {}
  await new Promise((r) => setTimeout(r, 25));
}
const post = (path, body) => fetch(`${base}${path}`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
}).then(async (r) => { await r.arrayBuffer(); if (!r.ok) throw new Error(`${path}: ${r.status}`); });

const idle = rssKiB(child.pid);
let t = performance.now();
await pool(PLAYERS, (i) => post('/api/online/login', { playerId: `p${i}` }));
const loginRate = PLAYERS / ((performance.now() - t) / 1000);
t = performance.now();
await pool(PLAYERS, (i) => post('/api/online/heartbeat', { playerId: `p${i}` }));
const hbRate = PLAYERS / ((performance.now() - t) / 1000);
const afterPlayers = rssKiB(child.pid);

const sockets = [];
await pool(SOCKETS, (i) => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/online/ws?playerId=s${i}`);
  ws.once('open', () => { sockets.push(ws); resolve(); });
  ws.once('error', reject);
}));
const afterPing = rssKiB(child.pid);
const ids = [];
await pool(SOCKETS, async () => {
  const r = await fetch(`${base}/v1/sessions`, { method: 'POST' });
  ids.push((await r.json()).session_id);
});
await pool(SOCKETS, (i) => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws/session/${ids[i]}`);
  ws.once('message', () => { sockets.push(ws); resolve(); });
  ws.once('error', reject);
}));
const afterSessions = rssKiB(child.pid);

const kib = (a, b, n) => Math.round(((b - a) * 1024) / n);
console.log(JSON.stringify({
  players: PLAYERS,
  login_per_s: Math.round(loginRate),
  heartbeat_per_s: Math.round(hbRate),
  rss_idle_mib: +(idle / 1024).toFixed(1),
  bytes_per_http_player: kib(idle, afterPlayers, PLAYERS),
  ping_sockets: SOCKETS,
  bytes_per_ping_socket: kib(afterPlayers, afterPing, SOCKETS),
  session_sockets: SOCKETS,
  bytes_per_session_and_socket: kib(afterPing, afterSessions, SOCKETS),
}, null, 1));
for (const ws of sockets) ws.terminate();
child.kill('SIGTERM');
