-- Adds to buckets of campaign series, once per call name. ARGV: the call's applied key,
-- how long it is kept (ms), then groups of four: the block's key, the bucket's field,
-- when the block expires (unix ms), and what to add as comma-separated base-36 numbers.
-- A bucket holds the same form; adding is number by number (a shorter form has zeros for
-- the numbers it leaves out).
if not redis.call('SET', ARGV[1], 1, 'NX', 'PX', ARGV[2]) then return 0 end
local digits = '0123456789abcdefghijklmnopqrstuvwxyz'
local function base36(n)
  local text = ''
  repeat
    local d = n % 36
    text = string.sub(digits, d + 1, d + 1) .. text
    n = (n - d) / 36
  until n == 0
  return text
end
for i = 3, #ARGV, 4 do
  local key, field = ARGV[i], ARGV[i + 1]
  local sum = {}
  for n in string.gmatch(redis.call('HGET', key, field) or '', '[^,]+') do
    sum[#sum + 1] = tonumber(n, 36)
  end
  local j = 1
  for n in string.gmatch(ARGV[i + 3], '[^,]+') do
    sum[j] = (sum[j] or 0) + tonumber(n, 36)
    j = j + 1
  end
  for k = 1, #sum do sum[k] = base36(sum[k]) end
  redis.call('HSET', key, field, table.concat(sum, ','))
  redis.call('PEXPIREAT', key, ARGV[i + 2])
end
return 1
