-- Updates an existing link hash. KEYS[1] the link; ARGV[1] '1' to clear the expiry, then
-- field/value pairs. Answers 0 when there is no such link.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then redis.call('HDEL', KEYS[1], 'e') end
if #ARGV > 1 then redis.call('HSET', KEYS[1], unpack(ARGV, 2)) end
return 1
