# Shared by scripts/test and scripts/bench: install (pinned) and start a Kafka-compatible broker.
# shellcheck shell=bash

TANSU_VERSION=0.6.0
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf '\n==> %s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

ensure_tansu() {
  if ! tansu --version 2>/dev/null | grep -qx "tansu $TANSU_VERSION"; then
    log "installing tansu $TANSU_VERSION (a Kafka-compatible broker; about 10 minutes on 2 cores, once)"
    cargo install "tansu@$TANSU_VERSION" --locked --features dynostore,libsql
  fi
}

# Starts tansu (in memory) on a free loopback port; sets BROKER (host:port) and BROKER_PID,
# and stops it when the calling script exits.
start_tansu() {
  local port log_file=$1
  ensure_tansu
  port=$(free_port)
  mkdir -p "$(dirname "$log_file")"
  log "starting tansu on 127.0.0.1:$port (log: $log_file)"
  tansu broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "memory://tansu/" >"$log_file" 2>&1 &
  BROKER_PID=$!
  trap 'kill "$BROKER_PID" 2>/dev/null || true' EXIT
  if ! wait_for_port "$port" "$BROKER_PID"; then
    echo "tansu did not start; its log:" >&2
    cat "$log_file" >&2
    exit 1
  fi
  BROKER="127.0.0.1:$port"
}
