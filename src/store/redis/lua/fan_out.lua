-- Shared by the scripts that create events (lead_clicks, enqueue, message_status).
-- ARGV[1..5] name the keys (keys.rs FAN_OUT): event prefix, delivery prefix, log prefix,
-- ready stream, subscription filters hash.
local K = {event = ARGV[1], delivery = ARGV[2], log = ARGV[3], ready = ARGV[4], filters = ARGV[5]}

-- Stores an event and fans it out to one delivery per enabled subscription whose filter
-- (SubscriptionFilter::encode: '<0|1>|<,types,>|<,campaigns,>', empty lists for all)
-- takes it.
local function enqueue(event_id, event_type, campaign, body, created_ms, retention_ms)
  local ekey = K.event .. event_id
  redis.call('HSET', ekey, 't', event_type, 'b', body, 'at', created_ms)
  redis.call('PEXPIRE', ekey, retention_ms)
  local filters = redis.call('HGETALL', K.filters)
  for i = 1, #filters, 2 do
    local sub, f = filters[i], filters[i + 1]
    local disabled, types, campaigns = string.match(f, '^(%d)|([^|]*)|(.*)$')
    if disabled == '0'
      and (types == '' or string.find(types, ',' .. event_type .. ',', 1, true))
      and (campaigns == '' or string.find(campaigns, ',' .. campaign .. ',', 1, true)) then
      local dkey = K.delivery .. sub .. ':' .. event_id
      redis.call('HSET', dkey, 'status', 'pending', 't', event_type, 'at', created_ms,
        'attempts', '[]', 'next', created_ms)
      redis.call('PEXPIRE', dkey, retention_ms)
      local log = K.log .. sub
      redis.call('ZADD', log, created_ms, event_id)
      redis.call('ZREMRANGEBYSCORE', log, '-inf', created_ms - retention_ms)
      redis.call('XADD', K.ready, '*', 's', sub, 'e', event_id)
    end
  end
end
