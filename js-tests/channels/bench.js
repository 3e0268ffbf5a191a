// Channel fan-out figure (not a test): SUBS subscribers on one channel, one publisher sends
// MSGS publications as fast as the socket takes them; reports the time until every
// subscriber has every message, and the server's resident memory before and after.
//
//   ACTIVENOW_BIN=target/release/activenow SUBS=50 MSGS=2000 node js-tests/channels/bench.js
'use strict';

const fs = require('node:fs');
const jwt = require('jsonwebtoken');
const { startServer, connect } = require('./helpers');

const SECRET = 'bench-secret-0123456789abcdef0123456789';
const SUBS = Number(process.env.SUBS || 50);
const MSGS = Number(process.env.MSGS || 2000);

function rssKiB(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) : NaN;
}

async function main() {
  const server = await startServer({
    JWT_SECRET: SECRET,
    CHANNEL_MAX_USERS: '0',
    CHANNEL_PUBLISH_RATE: '1000000',
    MAX_MESSAGES_PER_SECOND: '1000000',
    SEND_QUEUE_CAPACITY: String(MSGS + 16),
    RUST_LOG: 'warn,activenow=info',
  });
  const open = (u) => connect(server.url(`/ws?token=${jwt.sign({ sub: u }, SECRET)}`));
  try {
    const rss0 = rssKiB(server.pid);
    const subs = [];
    for (let i = 0; i < SUBS; i++) {
      const c = await open(`s${i}`);
      await c.subscribe('bench');
      subs.push(c);
    }
    const rss1 = rssKiB(server.pid);
    const publisher = await open('pub');
    await publisher.subscribe('bench');
    const done = subs.map(
      (c) =>
        new Promise((resolve) => {
          let n = 0;
          c.ws.on('message', () => {
            if (++n === MSGS) resolve();
          });
        }),
    );
    const started = process.hrtime.bigint();
    const payload = { type: 'signal', sdp: 'x'.repeat(200) };
    for (let i = 0; i < MSGS; i++) publisher.send({ type: 'publish', channel: 'bench', data: { ...payload, i } });
    await Promise.all(done);
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(
      JSON.stringify({
        subscribers: SUBS,
        publications: MSGS,
        seconds: Number(secs.toFixed(3)),
        publications_per_s: Math.round(MSGS / secs),
        deliveries_per_s: Math.round((MSGS * SUBS) / secs),
        rss_kib_idle_server: rss0,
        rss_kib_per_subscribed_socket: Math.round((rss1 - rss0) / SUBS),
      }),
    );
    await Promise.all([...subs, publisher].map((c) => c.close()));
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
