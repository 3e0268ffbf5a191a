-- KEYS: the day's peak STRING and distinct-visitors HyperLogLog (one day tag, one slot).
-- ARGV: identity, concurrent count, expiry in seconds. The peak is an atomic max.
redis.call('PFADD', KEYS[2], ARGV[1])
local n = tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > cur then
  redis.call('SET', KEYS[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
