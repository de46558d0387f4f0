"""Wait until the API's /readyz says ready: `wait_ready.py URL SECONDS`."""

import sys
import time

import httpx

url, seconds = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + seconds
last = "no answer"
while time.monotonic() < deadline:
    try:
        resp = httpx.get(url, timeout=5)
        if resp.status_code == 200:
            sys.exit(0)
        last = resp.text
    except httpx.HTTPError as exc:
        last = repr(exc)
    time.sleep(1)
print(f"not ready after {seconds:.0f}s: {last}", file=sys.stderr)
sys.exit(1)
