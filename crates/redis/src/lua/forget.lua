-- After Redis lost its data: the leaves of connections that closed while it was unreachable.
-- KEYS[5]: the room's tombstones (HASH identity -> 1), so that an identity whose last
-- connections closed on several nodes is announced gone once.
-- ARGV: tombstone_ttl_ms, then triples conn, identity, record. A connection still present
-- is removed as by a leave. One that is gone (the restart forgot it, and no node announced
-- its leave) still yields its leave, computed against the re-asserted room: the identity's
-- last connection when no other one of it is present and no tombstone says it was already
-- announced.
-- {room_now_empty, {transition...}}
local G = KEYS[5]
local out = {}
for i = 2, #ARGV, 3 do
  local conn, id, rec = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local t = remove(conn)
  if not t then
    local last = 0
    if redis.call('HEXISTS', I, id) == 0 and redis.call('HSETNX', G, id, 1) == 1 then
      last = 1
    end
    t = {'l', last, count(), bump(), rec, conn}
  end
  out[#out + 1] = t
end
redis.call('PEXPIRE', G, tonumber(ARGV[1]))
return {settle(), out}
