-- Delete a job: its keys, its members in its slot's outbox and lease shards.
-- KEYS: stages, meta, callbacks, payloads (the job's), outbox shard, lease shard (same slot)
-- ARGV: outbox members..., '|', lease members...
local i = 1
while ARGV[i] ~= '|' do
  redis.call('ZREM', KEYS[5], ARGV[i])
  i = i + 1
end
for j = i + 1, #ARGV do redis.call('ZREM', KEYS[6], ARGV[j]) end
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
