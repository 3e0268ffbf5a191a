-- Releases a named lock if the caller holds it.
-- KEYS[1] lock; ARGV[1] owner.
-- Returns {1} released, {0} nobody holds it, {2, holder} someone else holds it.
local holder = redis.call('GET', KEYS[1])
if not holder then
  return {0}
end
if holder ~= ARGV[1] then
  return {2, holder}
end
redis.call('DEL', KEYS[1])
return {1}
