-- Compare-and-set one stage of a job; never touches other stages.
-- KEYS: stages hash, meta hash, callbacks hash, payloads hash (all of one job, same slot),
--       then the lease index zset
-- ARGV[1] task_name, ARGV[2] expected rev (0 = absent), ARGV[3] new stage JSON,
-- ARGV[4] TTL in ms, ARGV[5] lease expiry ('' = not in flight: drop from the index),
-- ARGV[6] lease index member, ARGV[7] number of HSETNX meta pairs, then pairs: HSETNX
-- ones, then HSET ones.
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local rev = 0
if cur then rev = tonumber(cjson.decode(cur)['rev']) or 0 end
if rev ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[5], ARGV[6])
else
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[6])
end
local nx = tonumber(ARGV[7])
local i = 8
for _ = 1, nx do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for k = 1, 4 do redis.call('PEXPIRE', KEYS[k], ARGV[4]) end
return 1
