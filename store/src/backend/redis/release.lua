-- Drops a lease if it is still the caller's with the same fence.
-- KEYS[1] lease string; ARGV[1] expected value "<node>|<fence>"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
