// Channels (seed 2, SPEC §6) end to end: the real `ws` client against the activenow binary,
// with tokens signed by the `jsonwebtoken` package (an independent JWT implementation) and
// by `activenow token`.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const jwt = require('jsonwebtoken');
const { startServer, connect, runBin, FIXTURES } = require('./helpers');

const SECRET = 'js-tests-channels-secret-0123456789abcdef';

function token(user, extra = {}, options = {}) {
  return jwt.sign({ sub: user, user_type: 'desktop', room_id: 'r1', ...extra }, SECRET, {
    expiresIn: '1h',
    ...options,
  });
}

async function refusal(server, query, protocols, options) {
  try {
    const c = await connect(server.url(`/ws${query}`), protocols, options);
    await c.close();
  } catch (e) {
    if (e && e.status) return e;
    throw e;
  }
  assert.fail(`the upgrade with ${query} was accepted`);
}

describe('channels on the default settings', () => {
  let server;
  before(async () => {
    server = await startServer({ JWT_SECRET: SECRET });
  });
  after(async () => {
    await server.stop();
  });

  const open = (user) => connect(server.url(`/ws?token=${token(user)}`));

  test('subscribe, publish, unsubscribe exactly as the spec lists', async () => {
    const a = await open('alice');
    const b = await open('bob');
    assert.deepEqual(await a.subscribe('lobby'), {
      type: 'subscribed',
      channel: 'lobby',
      data: { status: 'success', room: 'lobby', event: 'signal:all' },
    });
    assert.equal((await b.subscribe('lobby')).type, 'subscribed');

    a.send({
      type: 'publish',
      channel: 'lobby',
      event: 'signal:all',
      data: { type: 'discover', from: 'forged', userType: 'desktop' },
    });
    const msg = await b.expectType('message');
    assert.equal(typeof msg.timestamp, 'number');
    assert.ok(Math.abs(msg.timestamp - Date.now()) < 60_000, 'timestamp is in ms');
    assert.deepEqual(msg, {
      type: 'message',
      channel: 'lobby',
      event: 'signal:all',
      data: { type: 'discover', from: 'alice', userType: 'desktop' },
      timestamp: msg.timestamp,
    });
    // The publisher does not receive its own message: its next frame answers its next request.
    assert.equal((await a.subscribe('second')).type, 'subscribed');

    b.send({ type: 'unsubscribe', channel: 'lobby' });
    assert.deepEqual(await b.next(), {
      type: 'unsubscribed',
      channel: 'lobby',
      data: { status: 'success', room: 'lobby', event: 'signal:all' },
    });
    a.send({ type: 'publish', channel: 'lobby', event: 'x', data: {} });
    b.send({ type: 'publish', channel: 'lobby', data: {} });
    assert.equal(await b.errorCode(), 'NOT_SUBSCRIBED');
    await a.close();
    await b.close();
  });

  test('every refusal is a 401 with a JSON reason before the upgrade', async () => {
    const cases = [
      ['', 'token_missing'],
      ['?token=not-a-jwt', 'token_invalid'],
      [`?token=${jwt.sign({ sub: 'u' }, 'another-secret')}`, 'token_invalid'],
      [`?token=${jwt.sign({ sub: 'u', exp: Math.floor(Date.now() / 1000) - 3600 }, SECRET)}`, 'token_expired'],
      [`?token=${jwt.sign({ sub: 'u' }, SECRET, { algorithm: 'HS512' })}`, 'token_algorithm'],
      [`?token=${jwt.sign({ sub: 'u' }, null, { algorithm: 'none' })}`, 'token_algorithm'],
      [`?token=${jwt.sign({ user_type: 'desktop' }, SECRET)}`, 'token_missing_subject'],
    ];
    for (const [query, code] of cases) {
      const e = await refusal(server, query);
      assert.equal(e.status, 401, query);
      assert.equal(e.body.error, code, query);
      assert.equal(typeof e.body.message, 'string');
      assert.match(e.headers['www-authenticate'], /^Bearer/);
    }
  });

  test('seed 2 tokens (user_id, no exp) are accepted', async () => {
    const c = await connect(server.url(`/ws?token=${jwt.sign({ user_id: 'u7', user_type: 'mobile' }, SECRET)}`));
    assert.equal((await c.subscribe('ab')).type, 'subscribed');
    await c.close();
  });

  test('a token in Authorization: Bearer or Sec-WebSocket-Protocol', async () => {
    const t = token('carol');
    const viaHeader = await connect(server.url('/ws'), undefined, { headers: { Authorization: `Bearer ${t}` } });
    assert.equal((await viaHeader.subscribe('ab')).type, 'subscribed');
    await viaHeader.close();

    const alone = await connect(server.url('/ws'), [t]);
    assert.equal(alone.ws.protocol, t, 'the offered protocol is echoed');
    assert.equal((await alone.subscribe('ab')).type, 'subscribed');
    await alone.close();

    const marked = await connect(server.url('/ws'), ['jwt', t]);
    assert.equal(marked.ws.protocol, 'jwt');
    await marked.close();
  });

  test('the 51st subscriber gets ROOM_FULL', async () => {
    const members = [];
    for (let i = 0; i < 50; i++) {
      const c = await open(`member${i}`);
      assert.equal((await c.subscribe('full')).type, 'subscribed');
      members.push(c);
    }
    const late = await open('member50');
    late.send({ type: 'subscribe', channel: 'full', event: 'signal:all' });
    const err = await late.expectType('error');
    assert.equal(err.error.code, 'ROOM_FULL');
    assert.equal(typeof err.error.message, 'string');

    // Channel rooms are internal (no unauthenticated endpoint can join them): not listed.
    const rooms = await (await fetch(server.http('/v1/activity/rooms'))).json();
    assert.equal(rooms.room_count.full, undefined);
    await members.pop().close();
    assert.equal((await late.subscribe('full')).type, 'subscribed');
    await Promise.all([...members, late].map((c) => c.close()));
  });

  test('channel names: 2-12 of CJK, letters, digits, space, _ and -', async () => {
    const c = await open('namer');
    for (const ok of ['中文房间', 'Room 42', 'a_b-c', '123456789012', '一丁']) {
      assert.equal((await c.subscribe(ok)).type, 'subscribed', ok);
      c.send({ type: 'unsubscribe', channel: ok });
      assert.equal((await c.next()).type, 'unsubscribed');
    }
    for (const bad of ['a', '1234567890123', 'bad!name', 'a/b', 'emoji😀', '\u9fa6\u9fa6', '']) {
      c.send({ type: 'subscribe', channel: bad });
      assert.equal(await c.errorCode(), 'INVALID_CHANNEL', bad);
    }
    await c.close();
  });

  test('bad messages get BAD_MESSAGE and the socket stays', async () => {
    const c = await open('sloppy');
    for (const bad of ['not json', '[1]', '{"type":"dance"}', '{"type":"subscribe"}']) {
      c.send(bad);
      assert.equal(await c.errorCode(), 'BAD_MESSAGE', bad);
    }
    c.send({ type: 'publish', channel: 'ab', data: {} });
    assert.equal(await c.errorCode(), 'NOT_SUBSCRIBED');
    assert.equal((await c.subscribe('ab')).type, 'subscribed');
    c.send({ type: 'publish', channel: 'ab', data: [1, 2] });
    assert.equal(await c.errorCode(), 'BAD_MESSAGE');
    await c.close();
  });

  test('a token minted by `activenow token` is accepted', async () => {
    const out = await runBin(['token', '--user', 'u1', '--type', 'desktop', '--room', 'r1', '--ttl', '720h'], {
      JWT_SECRET: SECRET,
    });
    assert.equal(out.code, 0, out.stderr);
    const t = out.stdout.trim();
    // The independent implementation reads it as seed 2's claims with a 30-day lifetime.
    const claims = jwt.verify(t, SECRET, { algorithms: ['HS256'] });
    assert.equal(claims.sub, 'u1');
    assert.equal(claims.user_id, 'u1');
    assert.equal(claims.user_type, 'desktop');
    assert.equal(claims.room_id, 'r1');
    assert.ok(Math.abs(claims.exp - (Date.now() / 1000 + 720 * 3600)) < 120);

    const minted = await connect(server.url(`/ws?token=${t}`));
    const other = await open('u2');
    assert.equal((await minted.subscribe('r1')).type, 'subscribed');
    assert.equal((await other.subscribe('r1')).type, 'subscribed');
    minted.send({ type: 'publish', channel: 'r1', event: 'signal:all', data: { hello: true } });
    const msg = await other.expectType('message');
    assert.deepEqual(msg.data, { hello: true, from: 'u1' });
    await minted.close();
    await other.close();
  });

  test('`activenow token` without JWT_SECRET fails clearly', async () => {
    const out = await runBin(['token', '--user', 'u1'], {});
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /JWT_SECRET is not set/);
  });
});

describe('channels limits', () => {
  let server;
  before(async () => {
    server = await startServer({
      JWT_SECRET: SECRET,
      CHANNEL_MAX_PAYLOAD_BYTES: '256',
      CHANNEL_PUBLISH_RATE: '1',
      MAX_MESSAGES_PER_SECOND: '1000',
    });
  });
  after(async () => {
    await server.stop();
  });

  test('payload over CHANNEL_MAX_PAYLOAD_BYTES gets TOO_LARGE; a flood gets RATE_LIMITED', async () => {
    const a = await connect(server.url(`/ws?token=${token('alice')}`));
    const b = await connect(server.url(`/ws?token=${token('bob')}`));
    assert.equal((await a.subscribe('ab')).type, 'subscribed');
    assert.equal((await b.subscribe('ab')).type, 'subscribed');
    a.send({ type: 'publish', channel: 'ab', data: { blob: 'x'.repeat(300) } });
    assert.equal(await a.errorCode(), 'TOO_LARGE');
    a.send({ type: 'publish', channel: 'ab', data: { n: 1 } });
    assert.equal((await b.expectType('message')).data.n, 1);
    for (let n = 0; n < 5; n++) a.send({ type: 'publish', channel: 'ab', data: { n } });
    assert.equal((await a.until('error')).error.code, 'RATE_LIMITED');
    await a.close();
    await b.close();
  });
});

describe('channels with a public key', () => {
  for (const [alg, priv, pub] of [
    ['RS256', 'jwt-test-rsa.key.pem', 'jwt-test-rsa.pub.pem'],
    ['ES256', 'jwt-test-ec.key.pem', 'jwt-test-ec.pub.pem'],
  ]) {
    test(`${alg} tokens verify with JWT_PUBLIC_KEY_FILE; HS256 is the wrong algorithm`, async () => {
      const server = await startServer({ JWT_PUBLIC_KEY_FILE: path.join(FIXTURES, pub) });
      try {
        const key = fs.readFileSync(path.join(FIXTURES, priv));
        const t = jwt.sign({ sub: 'dana' }, key, { algorithm: alg, expiresIn: '5m' });
        const c = await connect(server.url(`/ws?token=${t}`));
        assert.equal((await c.subscribe('ab')).type, 'subscribed');
        await c.close();
        const e = await refusal(server, `?token=${token('dana')}`);
        assert.equal(e.status, 401);
        assert.equal(e.body.error, 'token_algorithm');
      } finally {
        await server.stop();
      }
    });
  }

  test('no secret and no key: every token is refused', async () => {
    const server = await startServer({});
    try {
      const e = await refusal(server, `?token=${token('erin')}`);
      assert.equal(e.status, 401);
      assert.equal(e.body.error, 'auth_not_configured');
    } finally {
      await server.stop();
    }
  });
});
