-- Deletes a session (SessionStore::delete_session), atomically, on its slot.
-- KEYS[1] meta hash, KEYS[2] log stream, KEYS[3] fence string, KEYS[4] lease string,
-- KEYS[5] archive stream
-- ARGV[1] the caller's fence token, ARGV[2] archive ttl in ms ('' drops the archive)
-- Returns {'DELETED', project, encoded meta} | {'FENCED'} | {'MISSING'}. The caller
-- then removes the project-level entries (index, key claim): they live in other
-- slots on a Redis Cluster, so no script can reach them.
local meta = redis.call('HMGET', KEYS[1], 'project', 'rec')
if not meta[1] then
  return {'MISSING'}
end
local fence = redis.call('GET', KEYS[3])
local current = 0
if fence then
  current = tonumber(string.match(fence, '^(%d+)')) or 0
end
if current ~= tonumber(ARGV[1]) then
  return {'FENCED'}
end
if ARGV[2] ~= '' then
  archive_upto(KEYS[2], KEYS[5], '+', ARGV[2])
else
  redis.call('DEL', KEYS[5])
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {'DELETED', meta[1], meta[2]}
