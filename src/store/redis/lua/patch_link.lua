-- Updates an existing link hash. KEYS[1] the link; ARGV[1] how many field names follow that
-- are removed, then those names, then field/value pairs to set. Answers 0 when there is no
-- such link.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local removed = tonumber(ARGV[1])
if removed > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 2, removed + 1)) end
if #ARGV > removed + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, removed + 2)) end
return 1
