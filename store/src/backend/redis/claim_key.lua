-- Claims a session key in its project, unless another session holds it.
-- KEYS[1] project keys hash; ARGV[1] session key, ARGV[2] session id
-- Returns {1} when claimed now, {0, holder} when already held (maybe by ARGV[2]).
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder then
  return {0, holder}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {1}
