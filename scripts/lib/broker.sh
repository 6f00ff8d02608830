# Shared by scripts/test, scripts/check-deploy and scripts/bench: Apache Kafka on loopback,
# through the harness in scripts/kafka (jars from Maven Central, plain `java`).
# shellcheck shell=bash
# BROKER, BROKER_PID and REGISTRY_URL are set here for the scripts that source this file.
# shellcheck disable=SC2034

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf '\n==> [%4d s] %s\n' "$SECONDS" "$*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_port PORT PID: until something listens on PORT; fails if PID exits or 10 s pass.
wait_for_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Starts a single Apache Kafka node (broker and controller) in DIR with fresh data; sets BROKER
# (host:port) and BROKER_PID, and stops it when the calling script exits.
start_kafka() {
  local dir=$1 summary
  "$(dirname "${BASH_SOURCE[0]}")/../kafka" stop --kill --dir "$dir"
  log "starting Apache Kafka (one node) in $dir"
  summary=$("$(dirname "${BASH_SOURCE[0]}")/../kafka" start --json --dir "$dir")
  BROKER=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["bootstrap"])' <<<"$summary")
  BROKER_PID=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["nodes"][0]["pid"])' <<<"$summary")
  KAFKA_DIRS+=("$dir")
  trap stop_started EXIT
}
KAFKA_DIRS=()
STARTED_PIDS=()

# Stops what start_kafka and start_schema_registry started. A script with an EXIT trap of its
# own calls it from there.
stop_started() {
  local dir pid
  for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for dir in "${KAFKA_DIRS[@]}"; do
    "$(dirname "${BASH_SOURCE[0]}")/../kafka" stop --kill --keep --dir "$dir" || true
  done
}

# Starts a schema registry with the Confluent-compatible API on loopback, in memory (rivven-schema,
# built from crates.io by ensure_schema_registry in scripts/lib/tools.sh); sets REGISTRY_URL and
# stops it when the calling script exits.
start_schema_registry() {
  local log_file=$1 port pid
  port=$(free_port)
  log "starting a schema registry (rivven-schema $RIVVEN_SCHEMA_VERSION) on 127.0.0.1:$port"
  "$SCHEMA_REGISTRY_BIN" serve --host 127.0.0.1 --port "$port" --log-level warn >"$log_file" 2>&1 &
  pid=$!
  STARTED_PIDS+=("$pid")
  trap stop_started EXIT
  wait_for_port "$port" "$pid" || { cat "$log_file" >&2; return 1; }
  REGISTRY_URL="http://127.0.0.1:$port"
}
