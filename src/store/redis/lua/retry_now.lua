-- Makes a delivery due now. KEYS[1] the delivery; ARGV: the retry set, the ready stream,
-- sub id, event id, now (ms). Answers 0 when there is no such delivery.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'next', ARGV[5])
redis.call('ZREM', ARGV[1], ARGV[3] .. '|' .. ARGV[4])
redis.call('XADD', ARGV[2], '*', 's', ARGV[3], 'e', ARGV[4])
return 1
