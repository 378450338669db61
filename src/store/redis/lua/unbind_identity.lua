-- Deletes an identity only if it still names this code. KEYS[1] the identity; ARGV[1] the
-- code.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
