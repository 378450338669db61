-- Writes a message hash unless its id is taken. KEYS[1] the message; ARGV[1] its time to
-- live (ms), then field/value pairs. Answers 1 when written.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
