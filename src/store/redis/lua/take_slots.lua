-- Send slots of a rate-limited subscription (rules::take_slots, on Redis' clock, so that
-- every instance counts the same window). KEYS[1] the subscription's taken slots (a sorted
-- set, member: a unique name, score: when taken, ms); ARGV[1] the rate, ARGV[2] how many
-- are wanted, ARGV[3] the window (ms), ARGV[4] a prefix unique to this call for members.
-- Answers {granted, ms until the oldest slot frees (0 when all were granted)}.
local rate, wanted, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local granted = math.max(0, math.min(wanted, rate - redis.call('ZCARD', KEYS[1])))
for i = 1, granted do redis.call('ZADD', KEYS[1], now, ARGV[4] .. i) end
redis.call('PEXPIRE', KEYS[1], window * 2)
local wait = 0
if granted < wanted then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[2] then wait = tonumber(oldest[2]) + window - now end
end
return {granted, wait}
