-- Takes or extends a named lock on Redis' clock.
-- KEYS[1] lock; ARGV[1] owner; ARGV[2] ttl (ms, >= 1).
-- Returns {1} when the caller holds it for ttl from now, {0, holder, pttl} otherwise.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
if not holder then
  -- Free or expired (Redis dropped it): the same as SET NX PX, inside the script.
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, holder, redis.call('PTTL', KEYS[1])}
