#!/usr/bin/env bash
# Builds the cluster's programs into the cache, once per pinned version: Kubernetes from the
# Go module proxy (k8s.io/kubernetes has no usable go.mod for a plain `go install`: its staging
# modules are `v0.0.0` requirements with a `replace` block; they are pinned to the published
# v0.N.M releases instead), Helm and crictl with `go install`, and the pause program every pod's
# sandbox runs. The Go caches it needs (~8 GB) are deleted once the binaries are in place.
# Usage: build.sh BIN_DIR
# shellcheck shell=bash
set -euo pipefail
BIN=$1
KUBERNETES_VERSION=${KUBERNETES_VERSION:?}
HELM_VERSION=${HELM_VERSION:?}
CRICTL_VERSION=${CRICTL_VERSION:?}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$BIN.build"
mkdir -p "$BUILD" "$BIN"
export GOPATH="$BUILD/gopath" GOMODCACHE="$BUILD/gopath/pkg/mod" GOCACHE="$BUILD/gocache"
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
say() { printf 'kubernetes: %s\n' "$*" >&2; }

commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
missing=()
for command in "${commands[@]}"; do [[ -x "$BIN/$command" ]] || missing+=("$command"); done
if ((${#missing[@]})); then
  src="$BUILD/src/kubernetes"
  if [[ ! -f "$src/.prepared" ]]; then
    say "downloading k8s.io/kubernetes@$KUBERNETES_VERSION from the Go module proxy"
    go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" > /dev/null
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -r "$GOMODCACHE/k8s.io/kubernetes@$KUBERNETES_VERSION" "$src"
    chmod -R u+w "$src"
    rm -rf "$src/go.work" "$src/go.work.sum" "$src/vendor"
    staging="v0.${KUBERNETES_VERSION#v1.}"
    sed -i -E "s#^(\s+k8s\.io/[a-z-]+) v0\.0\.0\$#\1 $staging#" "$src/go.mod"
    sed -i '/^replace (/,/^)/d' "$src/go.mod"
    touch "$src/.prepared"
  fi
  minor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")
  ldflags="-s -w"
  # Without these the server reports v0.0.0 and Helm's kubeVersion checks fail.
  for package in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X '$package.gitVersion=$KUBERNETES_VERSION' -X '$package.gitMajor=1' -X '$package.gitMinor=$minor'"
    ldflags+=" -X '$package.gitTreeState=clean' -X '$package.buildDate=2026-01-01T00:00:00Z'"
  done
  for command in "${missing[@]}"; do
    say "building $command $KUBERNETES_VERSION (the API server takes 5-12 minutes on 2 cores)"
    started=$SECONDS
    (cd "$src" && go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" \
      -o "$BIN/$command.partial" "./cmd/$command")
    mv "$BIN/$command.partial" "$BIN/$command"
    say "built $command in $((SECONDS - started)) s"
  done
fi
if [[ ! -x "$BIN/helm" ]]; then
  say "building helm $HELM_VERSION"
  GOBIN="$BUILD/gobin" go install -trimpath -ldflags '-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$BUILD/gobin/helm" "$BIN/helm"
fi
if [[ ! -x "$BIN/crictl" ]]; then
  say "building crictl $CRICTL_VERSION"
  GOBIN="$BUILD/gobin" go install -trimpath -ldflags '-s -w' "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
  mv "$BUILD/gobin/crictl" "$BIN/crictl"
fi
if [[ ! -x "$BIN/pause" ]]; then
  say "building the pause program"
  (cd "$HERE/pause" && GOFLAGS= go build -trimpath -ldflags '-s -w' -o "$BIN/pause" .)
fi
chmod -R u+w "$BUILD" 2>/dev/null || true
rm -rf "$BUILD"
