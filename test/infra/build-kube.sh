#!/usr/bin/env bash
# Builds Kubernetes commands (default: kube-apiserver; `build-kube.sh kubelet kubectl ...` for others)
# from the k8s.io/kubernetes Go module, through a wrapper go.mod that maps every k8s.io/<staging>
# module to its published v0.X.Y, into the cache, keyed by version: $KUSTODIA_CACHE/<cmd>-<version>/<cmd>.
# The missing ones are built in one `go build`. Idempotent. Prints the path of each, in order.
source "$(dirname "$0")/lib.sh"

K8S_VERSION="${KUSTODIA_K8S_VERSION:-v1.36.3}"
[ $# -gt 0 ] || set -- kube-apiserver
binary() { echo "$KUSTODIA_CACHE/$1-$K8S_VERSION/$1"; }
missing() {
  local cmd
  for cmd in "$@"; do [ -x "$(binary "$cmd")" ] || echo "$cmd"; done
}
print_all() {
  local cmd
  for cmd in "$@"; do binary "$cmd"; done
}

[ -z "$(missing "$@")" ] && { print_all "$@"; exit 0; }
cache_lock "kube-$K8S_VERSION"
mapfile -t todo < <(missing "$@")
[ ${#todo[@]} -eq 0 ] && { print_all "$@"; exit 0; }

staging_version="v0.${K8S_VERSION#v1.}"
work="$KUSTODIA_CACHE/kube-$K8S_VERSION.build"
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
packages=()
for cmd in "${todo[@]}"; do packages+=("k8s.io/kubernetes/cmd/$cmd"); done
{
  echo "//go:build tools"
  echo
  echo "package tools"
  echo
  for package in "${packages[@]}"; do echo "import _ \"$package\""; done
} > tools.go
log "resolving k8s.io/kubernetes $K8S_VERSION modules"
go mod tidy >/dev/null 2>&1 || go mod download
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
pkgs="k8s.io/component-base/version k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in $pkgs; do
  ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
log "building ${todo[*]} $K8S_VERSION (takes a while the first time)"
mkdir -p "$work/bin"
go build -trimpath -ldflags "$ldflags" -o "$work/bin/" "${packages[@]}"
for cmd in "${todo[@]}"; do
  mkdir -p "$(dirname "$(binary "$cmd")")" && mv "$work/bin/$cmd" "$(binary "$cmd")"
done
cd / && rm -rf "$work"
print_all "$@"
