#!/usr/bin/env bash
# Builds kube-apiserver from the k8s.io/kubernetes Go module (through a wrapper go.mod that maps every
# k8s.io/<staging> module to its published v0.X.Y) into the cache, keyed by version. Idempotent.
source "$(dirname "$0")/lib.sh"

K8S_VERSION="${KUSTODIA_K8S_VERSION:-v1.36.3}"
out="$KUSTODIA_CACHE/kube-apiserver-$K8S_VERSION"
[ -x "$out/kube-apiserver" ] && { echo "$out/kube-apiserver"; exit 0; }
cache_lock "kube-$K8S_VERSION"
[ -x "$out/kube-apiserver" ] && { echo "$out/kube-apiserver"; exit 0; }

staging_version="v0.${K8S_VERSION#v1.}"
work="$out.build"
rm -rf "$work" && mkdir -p "$work"
cd "$work"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
curl -fsSL "https://proxy.golang.org/k8s.io/kubernetes/@v/$K8S_VERSION.mod" -o upstream.mod
{
  echo "module kustodia.test/kube"
  echo "go $(go env GOVERSION | sed 's/^go//' | cut -d. -f1,2)"
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo "replace ("
  grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' upstream.mod | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
log "resolving k8s.io/kubernetes $K8S_VERSION modules"
go mod tidy >/dev/null 2>&1 || go mod download
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $pkgs; do
  ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
log "building kube-apiserver $K8S_VERSION (takes a while the first time)"
go build -trimpath -ldflags "$ldflags" -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
mkdir -p "$out" && mv "$work/kube-apiserver" "$out/kube-apiserver"
rm -rf "$work"
echo "$out/kube-apiserver"
