-- Shared by every per-room script. KEYS (all with the room's hash tag, so one slot):
-- KEYS[1] members   HASH conn -> member record (JSON: id, st, j, u, e)
-- KEYS[2] identities HASH identity -> connections of it in the room (its length is the count)
-- KEYS[3] seen      ZSET conn -> last sign of life, ms of the server's clock
-- KEYS[4] version   STRING the room's transition counter
-- KEYS[5] gone      HASH identity -> 1 (forget.lua's tombstones)
-- KEYS[6] order     ZSET identity .. "\0" .. conn, all scores 0: member pages in byte order,
--                   and one identity's connections, by ZRANGEBYLEX
-- KEYS[7] since     STRING ms of the server's clock of the first join since it was empty
local M, I, S, V, O, T = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]

-- For a script over several rooms (update.lua): the functions below then work on the room
-- whose seven keys start after KEYS[base].
local function use_room(base)
  M, I, S, V, O, T = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4],
    KEYS[base + 6], KEYS[base + 7]
end

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
  redis.call('ZADD', O, 0, id .. '\0' .. conn)
  redis.call('SET', T, now, 'NX')
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
  redis.call('ZREM', O, id .. '\0' .. conn)
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
    redis.call('DEL', O, T)
    redis.call('PEXPIRE', V, 3600000)
    return 1
  end
  return 0
end

-- Rooms filled before the order index existed get it (and their since) on first read.
local function ensure_order()
  if redis.call('ZCARD', O) == redis.call('HLEN', M) then
    return
  end
  redis.call('DEL', O)
  local all = redis.call('HGETALL', M)
  local first = nil
  for i = 1, #all, 2 do
    local r = cjson.decode(all[i + 1])
    redis.call('ZADD', O, 0, r.id .. '\0' .. all[i])
    if r.j and (not first or r.j < first) then
      first = r.j
    end
  end
  if first then
    redis.call('SET', T, string.format('%d', first), 'NX')
  end
end

-- {conn, record, ...} of these connections that are still members, HMGET in chunks (Lua's
-- unpack takes a few thousand values).
local function records(conns)
  local out = {}
  for i = 1, #conns, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #conns) do
      chunk[#chunk + 1] = conns[j]
    end
    local recs = redis.call('HMGET', M, unpack(chunk))
    for j, c in ipairs(chunk) do
      if recs[j] then
        out[#out + 1] = c
        out[#out + 1] = recs[j]
      end
    end
  end
  return out
end
