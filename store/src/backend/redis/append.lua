-- Appends one SessionWrite (DESIGN.md §5), atomically, on one session's slot.
-- KEYS[1] meta hash, KEYS[2] log stream, KEYS[3] fence string, KEYS[4] archive
-- stream, KEYS[5] (only with an idempotency record) the session's idempotency key
-- ARGV[1] writer's fence token
-- ARGV[2] session channel (same {sid} tag as the keys, so SPUBLISH stays in the slot)
-- ARGV[3] n, the number of messages; then n pairs: seq, encoded message
-- then: encoded meta ("" for none), Messages prefix, Messages suffix,
--       Status prefix, Status suffix (see payload.rs),
--       archive up to seq ("" for none), archive ttl ms,
--       idempotency answer, idempotency ttl ms (both "" without KEYS[5])
-- Returns {'OK', last_seq} | {'GAP', last_seq} | {'FENCED'} | {'MISSING'}.
-- Nothing is written unless the answer is OK; the checks all come first, and what
-- follows cannot fail (Rust bounds the ttls), so an OK write is whole.
-- Order: messages, archive move, meta, idempotency key.
local last = redis.call('HGET', KEYS[1], 'last_seq')
if not last then
  return {'MISSING'}
end
last = tonumber(last)
local fence = redis.call('GET', KEYS[3])
local current = 0
if fence then
  current = tonumber(string.match(fence, '^(%d+)')) or 0
end
if current ~= tonumber(ARGV[1]) then
  return {'FENCED'}
end

local n = tonumber(ARGV[3])
local rest = 4 + 2 * n
-- Messages already stored (seq <= last_seq) are a retry's: skip them (DUP). The
-- rest must continue the log densely.
local first = n + 1
for i = 1, n do
  if tonumber(ARGV[2 + 2 * i]) > last then
    first = i
    break
  end
end
for i = first, n do
  if tonumber(ARGV[2 + 2 * i]) ~= last + 1 + (i - first) then
    return {'GAP', last}
  end
end

local bodies = {}
for i = first, n do
  local m = ARGV[3 + 2 * i]
  redis.call('XADD', KEYS[2], ARGV[2 + 2 * i] .. '-0', 'm', m)
  -- A bus payload carries the record without its version byte (payload.rs).
  bodies[#bodies + 1] = string.sub(m, 2)
end
local fresh = #bodies
if fresh > 0 then
  last = last + fresh
  redis.call('HSET', KEYS[1], 'last_seq', ARGV[2 + 2 * n])
end

-- Big-endian bytes of a non-negative integer below 2^53.
local function be(v, width)
  local out = {}
  for i = width, 1, -1 do
    out[i] = string.char(v % 256)
    v = math.floor(v / 256)
  end
  return table.concat(out)
end

if fresh > 0 then
  local header
  if fresh < 16 then
    header = string.char(0x90 + fresh)
  elseif fresh < 65536 then
    header = '\220' .. be(fresh, 2)
  else
    header = '\221' .. be(fresh, 4)
  end
  redis.call('SPUBLISH', ARGV[2],
    ARGV[rest + 1] .. header .. table.concat(bodies) .. ARGV[rest + 2])
end

if ARGV[rest + 5] ~= '' then
  archive_upto(KEYS[2], KEYS[4], ARGV[rest + 5], ARGV[rest + 6])
end

local meta = ARGV[rest]
if meta ~= '' then
  redis.call('HSET', KEYS[1], 'rec', meta)
  -- last_seq as the shortest MessagePack uint, as rmp encodes it.
  local seq
  if last < 128 then
    seq = string.char(last)
  elseif last < 256 then
    seq = '\204' .. be(last, 1)
  elseif last < 65536 then
    seq = '\205' .. be(last, 2)
  elseif last < 4294967296 then
    seq = '\206' .. be(last, 4)
  else
    seq = '\207' .. be(last, 8)
  end
  redis.call('SPUBLISH', ARGV[2], ARGV[rest + 3] .. seq .. ARGV[rest + 4])
end

-- NX: a key already remembered keeps its first answer.
if KEYS[5] then
  redis.call('SET', KEYS[5], ARGV[rest + 7], 'NX', 'PX', ARGV[rest + 8])
end
return {'OK', last}
