-- Records a message status once. KEYS[1] the message. After the fan-out's keys, ARGV:
-- campaign stats prefix, status, time (ms), retention (ms), the campaign counter to add to
-- ('' for none; rules::first_report decides), then groups of three: event id, type, body.
-- Answers -1 unknown message, 0 reported before, 1 recorded.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local stats, status, at = ARGV[6], ARGV[7], tonumber(ARGV[8])
local retention, counter = ARGV[9], ARGV[10]
if redis.call('HSETNX', KEYS[1], 's:' .. status, at) == 0 then return 0 end
local campaign = redis.call('HGET', KEYS[1], 'c')
if counter ~= '' then redis.call('HINCRBY', stats .. campaign, counter, 1) end
for i = 11, #ARGV, 3 do
  enqueue(ARGV[i], ARGV[i + 1], campaign, ARGV[i + 2], ARGV[8], retention)
end
return 1
