-- ARGV: conns. Idempotent: absent connections yield nothing.
-- {room_now_empty, {transition...}}
local out = {}
for i = 1, #ARGV do
  local t = remove(ARGV[i])
  if t then
    out[#out + 1] = t
  end
end
return {settle(), out}
