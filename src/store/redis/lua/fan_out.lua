-- Shared by the scripts that create events (lead_clicks, enqueue, message_status).
-- ARGV[1..5] name the keys (keys.rs FAN_OUT): event prefix, delivery prefix, log prefix,
-- ready stream, subscription filters hash.
local K = {event = ARGV[1], delivery = ARGV[2], log = ARGV[3], ready = ARGV[4], filters = ARGV[5]}

-- The subscriptions' filters, read once per script call: a call stores up to 64 events,
-- and nothing changes them while it runs.
local filters_read
local function subscription_filters()
  filters_read = filters_read or redis.call('HGETALL', K.filters)
  return filters_read
end

-- Stores an event and fans it out to one delivery per enabled subscription whose filter
-- (SubscriptionFilter::encode: '<0|1>|<,types,>|<,campaigns,>', empty lists for all)
-- takes it. `created_ms` and `retention_ms` are the decimal strings the caller was given:
-- a Lua number passed to a command is formatted with printf, which took a tenth of
-- Redis' time when every click stores an event. Answers how many deliveries it queued.
local function enqueue(event_id, event_type, campaign, body, created_ms, retention_ms)
  local queued = 0
  local ekey = K.event .. event_id
  redis.call('HSET', ekey, 't', event_type, 'b', body, 'at', created_ms)
  redis.call('PEXPIRE', ekey, retention_ms)
  local filters = subscription_filters()
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
      queued = queued + 1
    end
  end
  return queued
end
