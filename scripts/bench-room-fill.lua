-- Fills one room with ARGV[1] members in the Redis backend's layout (keys: members, identities,
-- order, since of one room), for the server API bench in docs/server-api.md.
local M, I, O, T = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n = tonumber(ARGV[1])
for i = 1, n do
  local id = string.format('user-%06d', i)
  local conn = 'bench.' .. i
  redis.call('HSET', M, conn, cjson.encode({id = id, st = {}, j = 1700000000000 + i, u = 1700000000000 + i, e = i}))
  redis.call('HSET', I, id, 1)
  redis.call('ZADD', O, 0, id .. '\0' .. conn)
end
redis.call('SET', T, 1700000000000)
return n
