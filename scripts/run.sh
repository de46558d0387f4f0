#!/usr/bin/env bash
# `make run`: embedded Redis (unless REDIS_URL is set), a local Ray with its dashboard,
# serve_config.yaml deployed, then the URLs. Stop everything with `make stop`.
#
# Exposure: Redis, the API and the dashboard listen on 127.0.0.1 only. Ray's own processes
# (GCS, raylet, workers, client server) listen on every interface whatever the flags, so
# Ray's token auth is on: without the token (run/ray_auth_token) they refuse every call and
# the dashboard answers 401. Their Prometheus metrics ports still answer without it.
set -euo pipefail
cd "$(dirname "$0")/.."
source .venv/bin/activate
RUN_DIR="${REELSERVE_RUN_DIR:-$PWD/run}"
mkdir -p "$RUN_DIR"
source scripts/ray_env.sh
REDIS_PORT="${REDIS_PORT:-6390}"
RAY_PORT="${RAY_PORT:-6380}"            # Ray's GCS; kept off Redis' 6379
DASHBOARD_PORT="${DASHBOARD_PORT:-8265}"
METRICS_PORT="${METRICS_PORT:-8090}"    # Ray's Prometheus endpoint (reelserve's metrics too)
API_PORT="$(python -c 'import yaml;print(yaml.safe_load(open("serve_config.yaml"))["http_options"]["port"])')"
API_HOST="$(python -c 'import yaml;print(yaml.safe_load(open("serve_config.yaml"))["http_options"]["host"])')"

if [ -z "${REDIS_URL:-}" ]; then
  # the embedded Valkey: user `reelserve`, a password made once in run/redis_password
  PW_FILE="$RUN_DIR/redis_password"
  [ -s "$PW_FILE" ] || (umask 077 && python -c 'import secrets; print(secrets.token_hex(24))' > "$PW_FILE")
  if ! python scripts/wait_redis.py "redis://127.0.0.1:${REDIS_PORT}/0" 0 2>/dev/null; then
    echo "starting embedded Valkey on 127.0.0.1:${REDIS_PORT}"
    nohup python scripts/embedded_redis.py "$REDIS_PORT" "$RUN_DIR/valkey" "$PW_FILE" \
      > "$RUN_DIR/valkey.log" 2>&1 &
    echo $! > "$RUN_DIR/valkey.pid"
  fi
  export REDIS_URL="redis://reelserve:$(cat "$PW_FILE")@127.0.0.1:${REDIS_PORT}/0"
fi
REDIS_SHOWN="$(python -c 'import sys,re; print(re.sub(r"//[^@/]*@", "//***@", sys.argv[1]))' "$REDIS_URL")"
python scripts/wait_redis.py "$REDIS_URL" 20
export REELSERVE_STORAGE_ROOT="${REELSERVE_STORAGE_ROOT:-$RUN_DIR/share}"
mkdir -p "$REELSERVE_STORAGE_ROOT"

# GPUs: the ones nvidia-smi sees (none on a CPU-only machine: the nodes' GPU fractions then
# do not apply and every node runs on the CPU, see graph/resources.py).
GPUS="$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)"
GPUS="${GPUS:-0}"
# Logical CPUs: at least what serve_config.yaml reserves (1.75 CPUs for 23 deployments,
# most of them idle light replicas), so the whole graph fits on a 2-core machine.
NEED="$(python -c 'import math, yaml
a = yaml.safe_load(open("serve_config.yaml"))["applications"][0]
print(math.ceil(sum(d.get("ray_actor_options", {}).get("num_cpus", 0) for d in a["deployments"])
                + sum(r["num_cpus"] for r in a["args"]["resources"].values()) - 1e-6))')"
CPUS="${RAY_NUM_CPUS:-$(( $(nproc) > NEED ? $(nproc) : NEED ))}"

# Serve's HAProxy fast path only when asked for (REELSERVE_HAPROXY=1): Ray's HAProxy
# template binds its stats (8404) and metrics (9101) ports on every interface, without
# auth. Its files (config, sockets, state) stay under run/hap, not /tmp/haproxy-serve.
if [ "${REELSERVE_HAPROXY:-0}" = "1" ]; then
  HAP="$RUN_DIR/hap"
  mkdir -p "$HAP"
  export RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1 \
    RAY_SERVE_HAPROXY_CONFIG_FILE_LOC="$HAP/haproxy.cfg" \
    RAY_SERVE_HAPROXY_SOCKET_PATH="$HAP/admin.sock" \
    RAY_SERVE_HAPROXY_SERVER_STATE_BASE="$HAP" \
    RAY_SERVE_HAPROXY_SERVER_STATE_FILE="$HAP/server-state" \
    RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH="$HAP/metrics.sock"
  PROXY="HAProxy fast path; its stats/metrics ports listen on all interfaces"
else
  PROXY="Serve proxy"
fi

if ! ray status --address "127.0.0.1:${RAY_PORT}" >/dev/null 2>&1; then
  # its own session (setsid), so `make stop` ends these processes and no other Ray
  setsid ray start --head --node-ip-address=127.0.0.1 --port="$RAY_PORT" \
    --num-cpus="$CPUS" --num-gpus="$GPUS" --dashboard-host=127.0.0.1 \
    --dashboard-port="$DASHBOARD_PORT" --metrics-export-port="$METRICS_PORT" \
    --disable-usage-stats \
    > "$RUN_DIR/ray-start.log" 2>&1 < /dev/null &
  wait $!
  ps -o sid= -p "$(pgrep -f -n "gcs_server.*--gcs_server_port=${RAY_PORT}")" | tr -d ' ' \
    > "$RUN_DIR/ray.sid"
else
  # settings are read from the environment Ray's processes started with: this shell's
  # REELSERVE_* / REDIS_URL do not reach a Ray that is already running
  if env | grep -q '^REELSERVE_\|^REDIS_URL='; then
    echo "note: Ray was already running on port ${RAY_PORT}; its replicas keep the settings" \
      "they started with. To apply this shell's REELSERVE_* / REDIS_URL: make stop; make run" >&2
  fi
fi
serve deploy serve_config.yaml --address "http://127.0.0.1:${DASHBOARD_PORT}" >/dev/null
python scripts/wait_ready.py "http://${API_HOST}:${API_PORT}/readyz" 300

cat <<MSG
reelserve is up ($PROXY; Redis at $REDIS_SHOWN; $GPUS GPU(s) for Ray, $CPUS CPUs)
  API:        http://${API_HOST}:${API_PORT}/v1/tasks
  OpenAPI:    http://${API_HOST}:${API_PORT}/docs
  Dashboard:  http://127.0.0.1:${DASHBOARD_PORT}
  Metrics:    http://127.0.0.1:${METRICS_PORT}/metrics (Prometheus; Grafana: cluster/grafana_reelserve.json)
  Storage:    $REELSERVE_STORAGE_ROOT
Stop with: make stop
MSG
