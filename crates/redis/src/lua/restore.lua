-- ARGV: triples conn, identity, record. Re-adds what is missing; a membership still present
-- is only marked seen. When nothing was missing, one no-op update (identity_changed 0, state
-- untouched) still carries the room's count under a fresh version: a node that missed
-- messages while it was disconnected re-asserts after re-subscribing, and its sockets learn
-- the current count from it.
-- {was_empty, {transition...}}
local now = now_ms()
local was_empty = redis.call('EXISTS', M) == 0 and 1 or 0
local out = {}
for i = 1, #ARGV, 3 do
  local conn, id, rec = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local prev = redis.call('HGET', M, conn)
  if prev and cjson.decode(prev).id == id then
    redis.call('ZADD', S, now, conn)
  else
    if prev then
      out[#out + 1] = remove(conn)
    end
    out[#out + 1] = add(conn, id, rec, now)
  end
end
if #out == 0 then
  local conn = ARGV[1]
  out[1] = {'u', 0, count(), bump(), redis.call('HGET', M, conn), conn}
end
return {was_empty, out}
