-- Points an identity at a code if it is unset or names a dead link; answers the code the
-- identity names afterwards. KEYS[1] the identity; ARGV[1] our code, ARGV[2] the dead code.
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return current
