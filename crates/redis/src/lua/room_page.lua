-- ARGV: after (an identity; '' = from the start), limit (identities, >= 1).
-- {conn, record, ...}: every connection of the first `limit` identities after `after`, in
-- byte order of identity then connection. `after .. "\1"` sorts after every entry of
-- `after` (identities hold no control characters) and before the next identity's.
ensure_order()
local after, limit = ARGV[1], tonumber(ARGV[2])
local start = after == '' and '-' or ('[' .. after .. '\1')
local conns, ids, last, done = {}, 0, nil, false
while not done do
  local chunk = redis.call('ZRANGEBYLEX', O, start, '+', 'LIMIT', 0, 512)
  if #chunk == 0 then
    break
  end
  for _, e in ipairs(chunk) do
    local sep = string.find(e, '\0', 1, true)
    local id = string.sub(e, 1, sep - 1)
    if id ~= last then
      if ids == limit then
        done = true
        break
      end
      ids = ids + 1
      last = id
    end
    conns[#conns + 1] = string.sub(e, sep + 1)
  end
  start = '(' .. chunk[#chunk]
end
return records(conns)
