-- Read a whole job in one round trip: meta, stages and callback records (not payloads).
-- KEYS: meta hash, stages hash, callbacks hash
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('HGETALL', KEYS[3])}
