-- Online-status records. KEYS: the player's HASH (login, hb, ip, name as "=<name>" when
-- given, online 0/1, logout), the online index (ZSET, all scores 0: id order for cursor
-- pages) and the offline index (ZSET id -> removal time). All under the `{o}` tag.
-- ARGV[1] is the operation, ARGV[2] the player id (or the key prefix for `purge`).
-- A record comes back as 7 strings: id, login, hb, ip, name, online, logout ('' = none).
local h, on_idx, off_idx = KEYS[1], KEYS[2], KEYS[3]
local op, id = ARGV[1], ARGV[2]

local function rec(key, who)
  local f = redis.call('HMGET', key, 'login', 'hb', 'ip', 'name', 'online', 'logout')
  local out = { who }
  for i = 1, 6 do
    out[i + 1] = f[i] or ''
  end
  return out
end

if op == 'login' then
  -- ARGV: ip, name, now, keep 0/1, max online (0 = no limit). Returns {was online 0/1,
  -- record...}, or {'full'} when the player is not online and max players are.
  local on = redis.call('HGET', h, 'online')
  if on == '1' and ARGV[6] == '1' then
    local r = rec(h, id)
    table.insert(r, 1, '1')
    return r
  end
  local max = tonumber(ARGV[7]) or 0
  if on ~= '1' and max > 0 and redis.call('ZCARD', on_idx) >= max then
    return { 'full' }
  end
  redis.call('DEL', h)
  redis.call('HSET', h, 'login', ARGV[5], 'hb', ARGV[5], 'ip', ARGV[3], 'online', '1')
  if ARGV[4] ~= '' then
    redis.call('HSET', h, 'name', ARGV[4])
  end
  redis.call('ZADD', on_idx, 0, id)
  redis.call('ZREM', off_idx, id)
  local r = rec(h, id)
  table.insert(r, 1, on == '1' and '1' or '0')
  return r
elseif op == 'hb' then
  -- ARGV: now. Only an online record; the heartbeat never goes back in time.
  local f = redis.call('HMGET', h, 'online', 'hb')
  if f[1] ~= '1' then
    return false
  end
  if tonumber(ARGV[3]) > tonumber(f[2]) then
    redis.call('HSET', h, 'hb', ARGV[3])
  end
  return rec(h, id)
elseif op == 'off' then
  -- ARGV: now, removal time, heartbeat bound ('' = none), key prefix, offline cap (0 = no
  -- limit). An expiry loses to a heartbeat after the bound. Beyond the cap the oldest
  -- offline records go.
  local f = redis.call('HMGET', h, 'online', 'hb')
  if f[1] ~= '1' then
    return false
  end
  if ARGV[5] ~= '' and tonumber(f[2]) > tonumber(ARGV[5]) then
    return false
  end
  redis.call('HSET', h, 'online', '0', 'logout', ARGV[3], 'until', ARGV[4])
  redis.call('ZREM', on_idx, id)
  redis.call('ZADD', off_idx, ARGV[4], id)
  local r = rec(h, id)
  local cap = tonumber(ARGV[7]) or 0
  local over = cap > 0 and redis.call('ZCARD', off_idx) - cap or 0
  if over > 0 then
    for _, who in ipairs(redis.call('ZRANGE', off_idx, 0, over - 1)) do
      local key = ARGV[6] .. who
      if redis.call('HGET', key, 'online') ~= '1' then
        redis.call('DEL', key)
      end
      redis.call('ZREM', off_idx, who)
    end
  end
  return r
elseif op == 'get' then
  -- ARGV: now. Offline records only within their retention.
  local f = redis.call('HMGET', h, 'online', 'until')
  if not f[1] then
    return false
  end
  if f[1] ~= '1' and f[2] and tonumber(ARGV[3]) >= tonumber(f[2]) then
    return false
  end
  return rec(h, id)
elseif op == 'list' then
  -- ARGV[2]: key prefix; ARGV: after ('' = from the start), limit.
  local from = '-'
  if ARGV[3] ~= '' then
    from = '(' .. string.sub(ARGV[3], 2)
  end
  local out = {}
  for _, who in ipairs(redis.call('ZRANGEBYLEX', on_idx, from, '+', 'LIMIT', 0, ARGV[4])) do
    for _, v in ipairs(rec(id .. who, who)) do
      out[#out + 1] = v
    end
  end
  return out
elseif op == 'purge' then
  -- ARGV[2]: key prefix; ARGV: now, batch.
  for _, who in ipairs(redis.call('ZRANGEBYSCORE', off_idx, '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])) do
    local key = id .. who
    if redis.call('HGET', key, 'online') ~= '1' then
      redis.call('DEL', key)
    end
    redis.call('ZREM', off_idx, who)
  end
  return 1
end
return redis.error_reply('unknown online op ' .. tostring(op))
