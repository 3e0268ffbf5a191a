-- The holder of a named lock and its remaining TTL, read together.
-- KEYS[1] lock. Returns {} when free, {holder, pttl} otherwise.
local holder = redis.call('GET', KEYS[1])
if not holder then
  return {}
end
return {holder, redis.call('PTTL', KEYS[1])}
