-- Records when a link was first delivered. KEYS[1] the link's stats hash; ARGV[1] the
-- report's time (ms). Answers the link's first human click (ms) when this report is the
-- first and the link was clicked before it (its time to click is counted now), else 0.
if redis.call('HSETNX', KEYS[1], 'deliveredAt', ARGV[1]) == 0 then return 0 end
return tonumber(redis.call('HGET', KEYS[1], 'firstClickedAt') or '0')
