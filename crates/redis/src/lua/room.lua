-- Shared by every per-room script. KEYS (all with the room's hash tag, so one slot):
-- KEYS[1] members   HASH conn -> member record (JSON: id, st, j, u, e)
-- KEYS[2] identities HASH identity -> connections of it in the room (its length is the count)
-- KEYS[3] seen      ZSET conn -> last sign of life, ms of the server's clock
-- KEYS[4] version   STRING the room's transition counter
local M, I, S, V = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Versions start at the server's clock in microseconds, so a room that empties (its version
-- key then expires) or is lost with a restarted server never goes back to an older version.
local function bump()
  if redis.call('EXISTS', V) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', V, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCR', V)
end

local function count()
  return redis.call('HLEN', I)
end

-- A transition: {kind, identity_changed, count, version, record, conn}.
local function add(conn, id, rec, now)
  local n = redis.call('HINCRBY', I, id, 1)
  redis.call('HSET', M, conn, rec)
  redis.call('ZADD', S, now, conn)
  redis.call('PERSIST', V)
  return {'j', n == 1 and 1 or 0, count(), bump(), rec, conn}
end

local function remove(conn)
  redis.call('ZREM', S, conn)
  local rec = redis.call('HGET', M, conn)
  if not rec then
    return nil
  end
  local id = cjson.decode(rec).id
  redis.call('HDEL', M, conn)
  local last = 0
  if redis.call('HINCRBY', I, id, -1) <= 0 then
    redis.call('HDEL', I, id)
    last = 1
  end
  return {'l', last, count(), bump(), rec, conn}
end

-- After removals: 1 when the room is now empty (its version lingers an hour, then goes).
local function settle()
  if redis.call('EXISTS', M) == 0 then
    redis.call('PEXPIRE', V, 3600000)
    return 1
  end
  return 0
end
