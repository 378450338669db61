-- A mix of admin API requests for bench/soak.sh: reads, writes, bad input and unknown
-- routes, over the codes in bench/results/soak-codes.txt (one per line).
local token = os.getenv("SOAK_TOKEN") or "soak-token"
local codes = {}
local n = 0

function init(args)
  for line in io.lines(args[1]) do
    codes[#codes + 1] = line
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

local headers = {
  ["Authorization"] = "Bearer " .. token,
  ["Content-Type"] = "application/json",
}

local function code()
  return codes[math.random(#codes)]
end

function request()
  n = n + 1
  local r = math.random(100)
  if r <= 30 then
    return wrk.format("GET", "/v1/links/" .. code(), headers)
  elseif r <= 45 then
    return wrk.format("GET", "/v1/links?campaignId=soak&limit=20", headers)
  elseif r <= 55 then
    return wrk.format("GET", "/v1/links/" .. code() .. "/stats", headers)
  elseif r <= 65 then
    local body = string.format('{"campaignId":"soak-new","url":"https://soak.test/%d/%d"}', math.random(1e9), n)
    return wrk.format("POST", "/v1/links", headers, body)
  elseif r <= 75 then
    return wrk.format("POST", "/v1/links", headers, '{"nope": 1, "campaignId": ')
  elseif r <= 80 then
    return wrk.format("PATCH", "/v1/links/" .. code(), headers, '{"disabled": false}')
  elseif r <= 85 then
    return wrk.format("GET", "/v1/webhooks?limit=5", headers)
  elseif r <= 90 then
    return wrk.format("GET", "/v1/nowhere/" .. n, headers)
  elseif r <= 95 then
    local body = string.format(
      '{"campaignId":"soak-msg","phone":"+1415%07d","body":"Hi https://soak.test/m/%d"}',
      math.random(9999999), math.random(1e6))
    return wrk.format("POST", "/v1/messages", headers, body)
  else
    return wrk.format("GET", "/v1/campaigns/soak/stats", headers)
  end
end
