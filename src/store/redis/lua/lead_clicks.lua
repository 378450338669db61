-- Lead clicks, in order (rules::window decides each; tests/api/rules.rs holds this script
-- to its cases). After the fan-out's keys, ARGV: window prefix, retention (ms), window
-- (ms), how long a window key lives at least (ms), then groups of six: code, campaign,
-- click time (ms), event id, event type, body. Answers one number per click: its click
-- time when it opened the window (now or in an earlier write of the same click), or minus
-- the time the window it fell in was opened; then how many deliveries it queued (the
-- dispatcher is woken only for those).
-- Times go to commands as the strings given (see `enqueue`); numbers only compare.
local windows, retention = ARGV[6], ARGV[7]
local window = tonumber(ARGV[8])
local window_lives = tostring(math.max(window, tonumber(ARGV[9])))
local answers, queued = {}, 0
for i = 10, #ARGV, 6 do
  local code, campaign, at_ms, event = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local at = tonumber(at_ms)
  local wkey = windows .. code
  local held = redis.call('GET', wkey) or ''
  local opened, by = string.match(held, '^(%d+)|(.*)$')
  opened = tonumber(opened)
  if by == event then
    answers[#answers + 1] = at
  elseif opened and at < opened + window then
    answers[#answers + 1] = -opened
  else
    redis.call('SET', wkey, at_ms .. '|' .. event, 'PX', window_lives)
    queued = queued + enqueue(event, ARGV[i + 4], campaign, ARGV[i + 5], at_ms, retention)
    answers[#answers + 1] = at
  end
end
answers[#answers + 1] = queued
return answers
