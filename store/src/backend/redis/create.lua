-- Stores a new session's meta, on its slot.
-- KEYS[1] meta hash, KEYS[2] log stream, KEYS[3] archive stream; ARGV[1] encoded
-- meta, ARGV[2] project
-- Returns 1 when created, 0 when the session already exists (a retried create:
-- it is left as it is, its log included).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- A log without meta is a leftover; the log must start empty so that its top id
-- stays last_seq (append.lua relies on it).
redis.call('DEL', KEYS[2])
-- Likewise a leftover archive (a deleted session's id created again): archive_upto
-- could not add ids at or below its top.
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'last_seq', '0', 'project', ARGV[2])
return 1
