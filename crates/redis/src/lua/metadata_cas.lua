-- Compare-and-set of one channel's metadata record (a hash: `major`, `json`).
-- KEYS[1] record; ARGV[1] expected major revision ("0" for an unknown channel);
-- ARGV[2] next major revision; ARGV[3] next record (metadata_record.rs; never read here).
-- Revisions are compared as the decimal strings Rust wrote, so no Lua float is involved.
-- Returns 1 when written, 0 when another write got there first.
local stored = redis.call('HGET', KEYS[1], 'major') or '0'
if stored ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'major', ARGV[2], 'json', ARGV[3])
return 1
