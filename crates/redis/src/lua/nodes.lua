-- KEYS[1]: the nodes ZSET (incarnation -> last tick, ms of the server's clock).
-- ARGV[1]: 'tick' | 'dead' | 'forget'.
-- tick   ARGV: incarnation, node id, ttl_ms (KEYS[2]: the node's liveness key)
--        -> {previous tick or -1, now}
-- dead   ARGV: stale_ms -> incarnations whose last tick is older than stale_ms
-- forget ARGV: stale_ms, incarnations -> removes those still that old
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
if op == 'tick' then
  local prev = redis.call('ZSCORE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  if not prev then
    return {-1, now}
  end
  return {tonumber(prev), now}
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
  end
end
return n
