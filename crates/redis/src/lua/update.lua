-- ARGV: mode ('c' one connection | 'i' every connection of an identity), target,
-- patch (JSON object: key -> the value's JSON text), ts_ms.
-- {transition...}; the first one carries identity_changed.
local mode, target, patch, ts = ARGV[1], ARGV[2], cjson.decode(ARGV[3]), tonumber(ARGV[4])
local conns = {}
if mode == 'c' then
  if redis.call('HEXISTS', M, target) == 1 then
    conns[1] = target
  end
else
  local all = redis.call('HGETALL', M)
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).id == target then
      conns[#conns + 1] = all[i]
    end
  end
end
local now = now_ms()
local out = {}
for i, conn in ipairs(conns) do
  local m = cjson.decode(redis.call('HGET', M, conn))
  if type(m.st) ~= 'table' then
    m.st = {}
  end
  for k, v in pairs(patch) do
    m.st[k] = v
  end
  m.u = ts
  local rec = cjson.encode(m)
  redis.call('HSET', M, conn, rec)
  redis.call('ZADD', S, 'XX', now, conn)
  out[#out + 1] = {'u', i == 1 and 1 or 0, count(), bump(), rec, conn}
end
return out
