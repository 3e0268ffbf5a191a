-- KEYS[1]: the nodes ZSET (incarnation -> last tick, ms of the server's clock).
-- KEYS[2]: the node's liveness key. KEYS[3]: the data epoch (STRING, written once into an
-- empty Redis). KEYS[4]: the ready ZSET (incarnation -> last tick on which it was ready).
-- ARGV[1]: 'tick' | 'dead' | 'forget' | 'epoch'.
-- epoch  ARGV: fresh epoch -> the data epoch (fresh when Redis had none: it lost its data)
-- tick   ARGV: incarnation, node id, ttl_ms, known epoch ('' = none yet), fresh epoch,
--        ready (1: re-asserted and listening), since (ms; '+inf' = not asked)
--        -> {previous tick or -1, now, epoch, {live incarnations}, {ready since `since`}}
--        The node is marked ready only when its view is current: same epoch, entry not lapsed.
-- dead   ARGV: stale_ms -> incarnations whose last tick is older than stale_ms
-- forget ARGV: stale_ms, incarnations -> removes those still that old
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local function epoch(fresh)
  local e = redis.call('GET', KEYS[3])
  if not e then
    redis.call('SET', KEYS[3], fresh)
    e = fresh
  end
  return e
end
if op == 'epoch' then
  return epoch(ARGV[2])
end
if op == 'tick' then
  local ttl = tonumber(ARGV[4])
  local prev = redis.call('ZSCORE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
  local e = epoch(ARGV[6])
  if ARGV[7] == '1' and e == ARGV[5] and prev and now - tonumber(prev) <= ttl then
    redis.call('ZADD', KEYS[4], now, ARGV[2])
  end
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], now - ttl, '+inf')
  local ready = redis.call('ZRANGEBYSCORE', KEYS[4], ARGV[8], '+inf')
  return {prev and tonumber(prev) or -1, now, e, live, ready}
end
local cutoff = now - tonumber(ARGV[2])
if op == 'dead' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff)
end
local n = 0
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) < cutoff then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[4], ARGV[i])
  end
end
return n
