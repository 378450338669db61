-- wrk script: the thread's connections walk the codes file together from a random start,
-- one code per request, with the User-Agent named by the UA environment variable. The requests are
-- formatted once, in init, so that wrk's per-request work is a table read: formatting
-- each one in `request` costs wrk more CPU than some servers spend answering it.
local requests = {}
local i = 0

init = function(args)
  local agent = os.getenv("UA")
  for line in io.lines(os.getenv("CODES")) do
    requests[#requests + 1] = wrk.format("GET", "/" .. line, { ["User-Agent"] = agent })
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#requests)
end

request = function()
  i = i % #requests + 1
  return requests[i]
end
