-- KEYS: hash, pushes, index, due. ARGV: id. Returns 1 when it was there.
local was = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return was
