-- ARGV: conn, identity, record, limit (0 = none).
-- {1, transition..., was_empty} | {0} when the room is full.
local conn, id, rec, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = now_ms()
local was_empty = redis.call('EXISTS', M) == 0 and 1 or 0
local prev = redis.call('HGET', M, conn)
if prev then
  if cjson.decode(prev).id == id then
    -- A rejoin of the same connection: new record and epoch, same identity.
    redis.call('HSET', M, conn, rec)
    redis.call('ZADD', S, now, conn)
    return {1, {'j', 0, count(), bump(), rec, conn}, 0}
  end
  remove(conn)
end
if limit > 0 and redis.call('HEXISTS', I, id) == 0 and count() >= limit then
  settle()
  return {0}
end
return {1, add(conn, id, rec, now), was_empty}
