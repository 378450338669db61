-- Adds a message to its lead's index. KEYS[1] the lead's message index; ARGV[1] the message
-- id, ARGV[2] its time to live (ms): the index lives as long as its last message.
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
