-- The expiry claim. KEYS: index, due. ARGV: key prefix (`<prefix>{s}:`), now, message, max,
-- expired status, batch. Removes sessions past their retention, then marks each unfinished
-- session past its expiry expired (removing it from `due` in the same script, so exactly
-- one call on one node ever returns it). Returns id, seq, id, seq, ...
local now = ARGV[2]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[6])) do
  redis.call('DEL', ARGV[1] .. 'h:' .. id, ARGV[1] .. 'p:' .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ARGV[6])) do
  redis.call('ZREM', KEYS[2], id)
  local h = ARGV[1] .. 'h:' .. id
  if redis.call('HGET', h, 'finished') == '0' then
    local seq = append(h, ARGV[1] .. 'p:' .. id, ARGV[5], ARGV[3], '1', ARGV[4])
    out[#out + 1] = id
    out[#out + 1] = tostring(seq)
  end
end
return out
