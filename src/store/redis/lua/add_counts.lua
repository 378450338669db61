-- Adds to many counter hashes in one call, once per call name. ARGV: the call's applied
-- key (a call whose key exists adds nothing and answers what it answered then, so a
-- retried flush is neither counted twice nor told less), how long it is kept (ms), the
-- link and campaign stats prefixes, then how the rest is grouped:
-- 'f': groups of eight: 'l' (a link's counters) or 'c' (a campaign's), the code or campaign
--      id, the link's campaign ('' for a campaign), human clicks, bot clicks, events, latest
--      and earliest human click (ms or 0). A link's first human click adds one to
--      `uniqueClicks` of its campaign's counters in this partition;
-- 'b': pairs of a link's code and its bot clicks, for links with nothing else to add (the
--      most common counter: previews and scanners open every link of a campaign).
-- Answers the links first clicked, space separated, each `code:first click:delivered`
-- (ms; 0 when not delivered), for the campaign series.
local answered = redis.call('GET', ARGV[1])
if answered then return answered end
local prefix = {l = ARGV[3], c = ARGV[4]}
local firsts = {}
if ARGV[5] == 'b' then
  for i = 6, #ARGV, 2 do
    redis.call('HINCRBY', prefix.l .. ARGV[i], 'botClicks', ARGV[i + 1])
  end
else
  for i = 6, #ARGV, 8 do
    local key = prefix[ARGV[i]] .. ARGV[i + 1]
    -- Numbers go to commands as the strings given (a Lua number is formatted by printf).
    local clicks, bots, events = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    if clicks ~= '0' then redis.call('HINCRBY', key, 'clicks', clicks) end
    if bots ~= '0' then redis.call('HINCRBY', key, 'botClicks', bots) end
    if events ~= '0' then redis.call('HINCRBY', key, 'clickEvents', events) end
    local at, first = tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
    local last = tonumber(redis.call('HGET', key, 'lastClickedAt') or '0')
    if at > 0 and at > last then
      redis.call('HSET', key, 'lastClickedAt', ARGV[i + 6])
    end
    -- The first human click: both times are set by the first one, so a hash without
    -- lastClickedAt has never been clicked, and a click not before the latest known cannot
    -- be the first (the usual case, which reads nothing more). The earliest wins, not the
    -- first written: a click buffered in an outage comes late (its campaign's series keeps
    -- the unique click where it was first counted).
    if first > 0 and last == 0 then
      redis.call('HSET', key, 'firstClickedAt', ARGV[i + 7])
      if ARGV[i] == 'l' then
        redis.call('HINCRBY', prefix.c .. ARGV[i + 2], 'uniqueClicks', 1)
        local delivered = redis.call('HGET', key, 'deliveredAt') or '0'
        firsts[#firsts + 1] = ARGV[i + 1] .. ':' .. ARGV[i + 7] .. ':' .. delivered
      end
    elseif first > 0 and first < last then
      local known = tonumber(redis.call('HGET', key, 'firstClickedAt') or '0')
      if known == 0 or first < known then
        redis.call('HSET', key, 'firstClickedAt', ARGV[i + 7])
      end
    end
  end
end
local answer = table.concat(firsts, ' ')
redis.call('SET', ARGV[1], answer, 'PX', ARGV[2])
return answer
