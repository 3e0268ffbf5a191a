-- KEYS: hash, pushes. Returns nil, or base, status, finished, seq, then the pushes.
local f = redis.call('HMGET', KEYS[1], 'base', 'status', 'finished', 'seq')
if not f[1] then
  return false
end
local out = { f[1], f[2], f[3], f[4] }
for _, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  out[#out + 1] = v
end
return out
