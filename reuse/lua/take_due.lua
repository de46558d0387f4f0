-- Take up to ARGV[2] outbox members due by ARGV[1] and push them ARGV[3] seconds ahead,
-- so a sender that dies while delivering does not lose them.
-- KEYS: outbox zset
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), m)
end
return due
