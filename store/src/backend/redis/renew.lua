-- Extends a lease if it is still the caller's with the same fence.
-- KEYS[1] lease string; ARGV[1] expected value "<node>|<fence>", ARGV[2] ttl in ms
-- Returns 1 when extended, 0 when the lease is gone or someone else's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
