#!/usr/bin/env bash
# `make stop`: shut down what `make run` started, and nothing else: Serve, the Ray
# processes of run/ray.sid's session, the embedded Valkey if we started it.
set -uo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
RUN_DIR="${REELSERVE_RUN_DIR:-$PWD/run}"
source scripts/ray_env.sh
serve shutdown -y --address "http://127.0.0.1:${DASHBOARD_PORT:-8265}" >/dev/null 2>&1 || true
if [ -s "$RUN_DIR/ray.sid" ]; then
  sid="$(cat "$RUN_DIR/ray.sid")"
  pkill -TERM -s "$sid" 2>/dev/null || true
  for _ in $(seq 1 50); do pgrep -s "$sid" >/dev/null || break; sleep 0.2; done
  pkill -KILL -s "$sid" 2>/dev/null || true
  rm -f "$RUN_DIR/ray.sid"
fi
if [ -f "$RUN_DIR/valkey.pid" ]; then
  # the launcher stops the server on SIGTERM (which flushes its append-only file)
  pid="$(cat "$RUN_DIR/valkey.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  rm -f "$RUN_DIR/valkey.pid"
fi
echo "stopped"
