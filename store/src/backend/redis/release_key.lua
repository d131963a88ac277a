-- Gives a session key back, if this session holds it.
-- KEYS[1] project keys hash; ARGV[1] session key, ARGV[2] session id
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
