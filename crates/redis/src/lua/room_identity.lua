-- ARGV: identity. {conn, record, ...} of its connections in the room.
ensure_order()
local id = ARGV[1]
local entries = redis.call('ZRANGEBYLEX', O, '[' .. id .. '\0', '(' .. id .. '\1')
local conns = {}
for i, e in ipairs(entries) do
  conns[i] = string.sub(e, #id + 2)
end
return records(conns)
