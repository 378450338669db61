-- Records campaigns at their first link. KEYS[1] the hash campaign -> created (ms), KEYS[2]
-- the list order; ARGV pairs of campaign id and the created time of a link of it (ms). A
-- campaign already known keeps its time.
for i = 1, #ARGV, 2 do
  local campaign, at = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('HSETNX', KEYS[1], campaign, at) == 1 then
    redis.call('ZADD', KEYS[2], 0, string.format('%013d', at) .. ':' .. campaign)
  end
end
return 1
