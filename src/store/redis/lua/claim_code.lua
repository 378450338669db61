-- Writes a link hash only if its code is free, marked 'unfinished' and expiring unless
-- creation finishes (binds the identity, indexes and persists it). KEYS[1] the link;
-- ARGV[1] the expiry (ms), then field/value pairs. Answers 1 when claimed.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'unfinished', 1, unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
