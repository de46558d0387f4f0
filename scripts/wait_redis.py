"""Wait until Redis answers PING: `wait_redis.py URL SECONDS` (exit 1 if it never does)."""

import sys
import time

import redis

url, seconds = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + seconds
while True:
    try:
        if redis.Redis.from_url(url, socket_connect_timeout=1).ping():
            sys.exit(0)
    except redis.RedisError:
        pass
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.2)
