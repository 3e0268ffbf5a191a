-- KEYS: hash, pushes, due. ARGV: id, status, message, close 0/1, now, max, expired status.
-- Returns {outcome} or {'pushed', seq}.
local f = redis.call('HMGET', KEYS[1], 'status', 'finished', 'expires')
if not f[1] then
  return { 'notfound' }
end
if f[2] == '1' then
  if f[1] == ARGV[7] then
    return { 'expired' }
  end
  return { 'finished' }
end
if tonumber(ARGV[5]) >= tonumber(f[3]) then
  return { 'expired' }
end
local seq = append(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[6])
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return { 'pushed', tostring(seq) }
