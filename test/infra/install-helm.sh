#!/usr/bin/env bash
# Installs helm from the Go module proxy into the cache, keyed by version. Idempotent.
source "$(dirname "$0")/lib.sh"

HELM_VERSION="${KUSTODIA_HELM_VERSION:-v3.22.0}"
out="$KUSTODIA_CACHE/helm-$HELM_VERSION"
if [ ! -x "$out/helm" ]; then
  cache_lock "helm-$HELM_VERSION"
fi
if [ ! -x "$out/helm" ]; then
  log "building helm $HELM_VERSION"
  GOTOOLCHAIN=local GOBIN="$out.build" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$out" && mv "$out.build/helm" "$out/helm" && rm -rf "$out.build"
fi
echo "$out/helm"
