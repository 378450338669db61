-- Moves due retries into the ready stream. KEYS[1] the retry set; ARGV: the ready stream,
-- now (ms), most to move.
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  local sub, event = string.match(member, '^([^|]+)|(.+)$')
  redis.call('XADD', ARGV[1], '*', 's', sub, 'e', event)
  redis.call('ZREM', KEYS[1], member)
end
return #due
