-- Settles leased deliveries as rules::settle decided and acknowledges their entries.
-- ARGV (keys.rs FINISH): the ready stream, its group, the retry set, the delivery prefix,
-- the filters hash; then groups of eight: stream entry, new status ('' to keep it),
-- attempt JSON ('' for none), due again (ms, '' for not), '1' to apply only to a pending
-- delivery, '1' to disable the subscription, sub id, event id.
--
-- An outcome applies only if its entry was still unacknowledged: a call retried after a
-- timeout (whose first run may have gone through), or a lease another dispatcher took over
-- and settled first, changes nothing.
local ready, group, retry, deliveries, filters = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local entries = {}
for i = 6, #ARGV, 8 do
  local entry, status, attempt, next_ms = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local only_pending, disable, sub, event = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7]
  local key = deliveries .. sub .. ':' .. event
  entries[#entries + 1] = entry
  -- Delivery hashes are created with `attempts`: that field says the hash still exists.
  local held = redis.call('HMGET', key, 'attempts', 'status')
  local attempts = held[1]
  local applies = redis.call('XACK', ready, group, entry) == 1 and attempts
  if applies and only_pending == '1' then
    applies = held[2] == 'pending'
  end
  if applies then
    -- One HSET of every field that changes.
    local fields = {}
    if attempt ~= '' then
      if attempts == '[]' then
        attempts = '[' .. attempt .. ']'
      else
        attempts = string.sub(attempts, 1, -2) .. ',' .. attempt .. ']'
      end
      fields[#fields + 1] = 'attempts'
      fields[#fields + 1] = attempts
    end
    if status ~= '' then
      fields[#fields + 1] = 'status'
      fields[#fields + 1] = status
    end
    if next_ms ~= '' then
      fields[#fields + 1] = 'next'
      fields[#fields + 1] = next_ms
      redis.call('ZADD', retry, next_ms, sub .. '|' .. event)
    elseif status ~= '' then
      fields[#fields + 1] = 'next'
      fields[#fields + 1] = ''
    end
    if #fields > 0 then redis.call('HSET', key, unpack(fields)) end
    if disable == '1' then
      local f = redis.call('HGET', filters, sub)
      if f then redis.call('HSET', filters, sub, '1' .. string.sub(f, 2)) end
    end
  end
end
if #entries > 0 then redis.call('XDEL', ready, unpack(entries)) end
return 1
