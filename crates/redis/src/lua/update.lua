-- Many updates in one call (presence/update_batch.rs): ARGV[1] is their number n; update i
-- works on the room whose seven keys are KEYS[7(i-1)+1 ..] and takes the eight arguments
-- after ARGV[1 + 8(i-1)]: mode ('c' one connection | 'i' every connection of an identity),
-- target, patch (JSON object: key -> the value's JSON text), ts_ms, then, to publish each
-- transition's room message (broker.rs) from here: the command ('SPUBLISH' | 'PUBLISH' | ''
-- for none), the room's channel, and the message's JSON text before the member's conn and
-- after its version (both built by the caller, see presence/store.rs). The member's part
-- is put together from the record, whose state values already are JSON text: no JSON is
-- encoded here but for strings.
-- Returns one list per update: {transition...}; the first one carries identity_changed.
-- With a publish command, each transition has a seventh field: 1 when it was published, 0
-- when the publish failed.
local function state_json(st)
  local parts = {}
  for k, v in pairs(st) do
    parts[#parts + 1] = cjson.encode(k) .. ':' .. v
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local function update(a)
  local mode, target, patch = ARGV[a + 1], ARGV[a + 2], cjson.decode(ARGV[a + 3])
  local ts_text = ARGV[a + 4]
  local ts = tonumber(ts_text)
  local publish, channel, head, tail = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a + 8]
  local conns = {}
  if mode == 'c' then
    if redis.call('HEXISTS', M, target) == 1 then
      conns[1] = target
    end
  else
    local all = redis.call('HGETALL', M)
    for i = 1, #all, 2 do
      if cjson.decode(all[i + 1]).id == target then
        conns[#conns + 1] = all[i]
      end
    end
  end
  local now = now_ms()
  local out = {}
  for i, conn in ipairs(conns) do
    local m = cjson.decode(redis.call('HGET', M, conn))
    if type(m.st) ~= 'table' then
      m.st = {}
    end
    for k, v in pairs(patch) do
      m.st[k] = v
    end
    m.u = ts
    local rec = cjson.encode(m)
    redis.call('HSET', M, conn, rec)
    redis.call('ZADD', S, 'XX', now, conn)
    local t = {'u', i == 1 and 1 or 0, count(), bump(), rec, conn}
    if publish ~= '' then
      local body = head .. cjson.encode(conn) .. ',"identity":' .. cjson.encode(m.id)
        .. ',"state":' .. state_json(m.st) .. ',"joined_at_ms":' .. string.format('%.0f', m.j)
        .. ',"updated_at_ms":' .. ts_text .. ',"epoch":' .. string.format('%.0f', m.e)
        .. '},"identity_changed":' .. (i == 1 and 'true' or 'false')
        .. ',"count":' .. string.format('%.0f', t[3]) .. ',"version":'
        .. string.format('%.0f', t[4]) .. tail
      local r = redis.pcall(publish, channel, body)
      t[7] = (type(r) == 'table' and r.err) and 0 or 1
    end
    out[#out + 1] = t
  end
  return out
end

local results = {}
for i = 1, tonumber(ARGV[1]) do
  use_room(7 * (i - 1))
  results[i] = update(1 + 8 * (i - 1))
end
return results
