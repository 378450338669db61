-- wrk script: each connection walks the codes file from a random start, one code per
-- request, with the User-Agent named by the UA environment variable.
local codes = {}
for line in io.lines(os.getenv("CODES")) do codes[#codes + 1] = line end
local agent = os.getenv("UA")
local i = 0

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#codes)
end

request = function()
  i = i % #codes + 1
  return wrk.format("GET", "/" .. codes[i], { ["User-Agent"] = agent })
end
