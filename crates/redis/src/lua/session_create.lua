-- KEYS: hash, pushes, index (ZSET id -> removal time), due (ZSET id -> expiry, unfinished).
-- ARGV: id, base, status, finished, seq, expires, drop_at, max_active, pushes...
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[8]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'base', ARGV[2], 'status', ARGV[3], 'finished', ARGV[4],
  'seq', ARGV[5], 'expires', ARGV[6])
for i = 9, #ARGV do
  redis.call('RPUSH', KEYS[2], ARGV[i])
end
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[1])
else
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[1])
end
return 1
