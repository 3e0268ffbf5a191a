-- ARGV: stale_ms, max. Removes connections not seen for stale_ms by the server's clock; the
-- caller that removes one is the only one that gets its transition.
-- {room_now_empty, {transition...}, stale_found}
local cutoff = now_ms() - tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', S, '-inf', '(' .. cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, conn in ipairs(stale) do
  local t = remove(conn)
  if t then
    out[#out + 1] = t
  end
end
return {settle(), out, #stale}
