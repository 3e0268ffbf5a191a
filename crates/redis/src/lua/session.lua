-- Shared by the session scripts. A session is a HASH (base: the creator's JSON without the
-- pushes, status, finished 0/1, seq, expires) and a LIST of its latest pushes, each
-- "<seq>|<close 0/1>|<message JSON>". All session keys share the `{s}` tag (one slot).
local function append(h, p, status, msg, close, max)
  local seq = redis.call('HINCRBY', h, 'seq', 1)
  redis.call('HSET', h, 'status', status)
  if close == '1' then
    redis.call('HSET', h, 'finished', '1')
  end
  redis.call('RPUSH', p, seq .. '|' .. close .. '|' .. msg)
  redis.call('LTRIM', p, -tonumber(max), -1)
  return seq
end
