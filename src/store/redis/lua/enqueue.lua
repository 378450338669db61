-- Events. After the fan-out's keys, ARGV: retention (ms), then groups of five: event id,
-- type, campaign, body, created (ms).
local retention = ARGV[6]
for i = 7, #ARGV, 5 do
  enqueue(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], retention)
end
return 1
