-- Write a callback delivery record, optionally only if it is absent or in a given state,
-- and optionally schedule it in the outbox. Refreshes the job's TTL.
-- KEYS: callbacks hash, outbox zset, stages hash, meta hash, payloads hash
-- ARGV[1] delivery id, ARGV[2] record JSON, ARGV[3] guard: '' (always) | 'absent' | a state,
-- ARGV[4] outbox score ('' = do not schedule; '-' = remove from outbox), ARGV[5] outbox member,
-- ARGV[6] TTL in ms, ARGV[7] payload JSON ('' = leave as is)
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local guard = ARGV[3]
if guard == 'absent' then
  if cur then return 0 end
elseif guard ~= '' then
  if not cur then return 0 end
  if cjson.decode(cur)['state'] ~= guard then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], ARGV[7]) end
if ARGV[4] == '-' then
  redis.call('ZREM', KEYS[2], ARGV[5])
elseif ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
end
for _, k in ipairs({KEYS[1], KEYS[3], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', k, ARGV[6]) end
return 1
