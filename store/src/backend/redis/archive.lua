-- Prepended to append.lua and delete.lua (conn.rs): the archive move they share.
-- Moves every live message with seq <= upto (a decimal string; '+' for all) from the
-- log stream to the archive stream, same ids, then sets the archive to expire in
-- ttl ms. Copy and trim run in one script, so a message is never in both nor in
-- neither. An expired archive is already gone (Redis dropped the key), so it counts
-- as empty. XTRIM keeps the log's last id: the next XADD continues at last_seq + 1,
-- and XRANGE from after_seq + 1 reads what is left.
local function archive_upto(log, arch, upto, ttl)
  local moved = redis.call('XRANGE', log, '-', upto)
  for _, entry in ipairs(moved) do
    redis.call('XADD', arch, entry[1], unpack(entry[2]))
  end
  if #moved > 0 then
    -- MINID evicts ids below the threshold: "<s>-1" takes "<s>-0" along, with no
    -- arithmetic on seqs Lua numbers could round.
    local top = string.match(moved[#moved][1], '^(%d+)')
    redis.call('XTRIM', log, 'MINID', top .. '-1')
  end
  redis.call('PEXPIRE', arch, ttl)
end

