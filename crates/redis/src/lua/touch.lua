-- KEYS[1]: a room's seen ZSET. ARGV: conns. Marks them seen now (server clock), only if they
-- are still there (XX: a departed connection is not brought back).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local args = {}
for i = 1, #ARGV do
  args[#args + 1] = now
  args[#args + 1] = ARGV[i]
end
return redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(args))
