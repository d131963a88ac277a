-- Takes a session's lease unless another node holds a live one; every grant bumps
-- the fence, a re-acquire by the holder too.
-- KEYS[1] fence string "<n>|<node>" (never expires), KEYS[2] lease string
-- "<node>|<n>" (PX ttl); ARGV[1] node, ARGV[2] ttl in ms
-- Returns {'GRANTED', n} | {'HELD', owner}.
local lease = redis.call('GET', KEYS[2])
if lease then
  local owner = string.match(lease, '^(.*)|%d+$') or lease
  if owner ~= ARGV[1] then
    return {'HELD', owner}
  end
end
local fence = redis.call('GET', KEYS[1])
local n = 0
if fence then
  n = tonumber(string.match(fence, '^(%d+)')) or 0
end
n = string.format('%d', n + 1)
redis.call('SET', KEYS[1], n .. '|' .. ARGV[1])
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. n, 'PX', ARGV[2])
return {'GRANTED', tonumber(n)}
