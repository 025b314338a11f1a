#!/usr/bin/env bash
# The container runtime of the test node, built from source into the cache, keyed by version:
# containerd (+ its runc shim and ctr), runc (cgo, seccomp), the CNI plugins the node uses, and the
# pause binary (k8s.io/kubernetes build/pause, static). Idempotent. Prints `<name>=<path>` lines:
# containerd, containerd-shim-runc-v2, ctr, runc, cni-bin-dir, pause.
source "$(dirname "$0")/lib.sh"

CONTAINERD_VERSION="${KUSTODIA_CONTAINERD_VERSION:-v2.3.7}"
RUNC_VERSION="${KUSTODIA_RUNC_VERSION:-v1.5.3}"
CNI_PLUGINS_VERSION="${KUSTODIA_CNI_PLUGINS_VERSION:-v1.10.0}"
K8S_VERSION="${KUSTODIA_K8S_VERSION:-v1.36.3}"
export GOTOOLCHAIN=local

debian_ensure node

# go_install <cache dir> <lock name> <env...> -- <go install args...>: installs into <cache dir> once.
go_install() {
  local out="$1" lock="$2"
  shift 2
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  [ -d "$out" ] && return 0
  (
    cache_lock "$lock"
    [ -d "$out" ] && exit 0
    log "building $lock (takes a while the first time)"
    rm -rf "$out.build"
    env "${env[@]}" GOBIN="$out.build" go install -trimpath "$@"
    mv "$out.build" "$out"
  )
}

containerd_dir="$KUSTODIA_CACHE/containerd-$CONTAINERD_VERSION"
# Without cgo: leaves out the btrfs snapshotter, which needs C headers the node does not use.
go_install "$containerd_dir" "containerd-$CONTAINERD_VERSION" CGO_ENABLED=0 -- \
  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"

runc_dir="$KUSTODIA_CACHE/runc-$RUNC_VERSION"
# cgo and the seccomp tag: without them runc cannot apply `seccompProfile: RuntimeDefault`.
go_install "$runc_dir" "runc-$RUNC_VERSION" CGO_ENABLED=1 -- \
  -tags seccomp -ldflags "-s -w -X main.version=${RUNC_VERSION#v}" \
  "github.com/opencontainers/runc@$RUNC_VERSION"

cni_dir="$KUSTODIA_CACHE/cni-plugins-$CNI_PLUGINS_VERSION"
go_install "$cni_dir" "cni-plugins-$CNI_PLUGINS_VERSION" CGO_ENABLED=0 -- \
  -ldflags "-s -w" \
  "github.com/containernetworking/plugins/plugins/main/ptp@$CNI_PLUGINS_VERSION" \
  "github.com/containernetworking/plugins/plugins/main/loopback@$CNI_PLUGINS_VERSION" \
  "github.com/containernetworking/plugins/plugins/ipam/host-local@$CNI_PLUGINS_VERSION"

pause_dir="$KUSTODIA_CACHE/pause-$K8S_VERSION"
if [ ! -x "$pause_dir/pause" ]; then
  (
    cache_lock "pause-$K8S_VERSION"
    [ -x "$pause_dir/pause" ] && exit 0
    src="$(cd "$KUSTODIA_CACHE" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
    [ -f "$src/build/pause/linux/pause.c" ] || { log "no build/pause/linux/pause.c in k8s.io/kubernetes@$K8S_VERSION ($src)"; exit 1; }
    log "building pause from k8s.io/kubernetes@$K8S_VERSION"
    mkdir -p "$pause_dir.build"
    gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-kustodia" -o "$pause_dir.build/pause" "$src/build/pause/linux/pause.c"
    strip "$pause_dir.build/pause"
    rm -rf "$pause_dir" && mv "$pause_dir.build" "$pause_dir"
  )
fi

for binary in "$containerd_dir/containerd" "$containerd_dir/containerd-shim-runc-v2" "$containerd_dir/ctr" "$runc_dir/runc" \
  "$cni_dir/ptp" "$cni_dir/host-local" "$cni_dir/loopback" "$pause_dir/pause"; do
  [ -x "$binary" ] || { log "$binary missing after the build"; exit 1; }
done
echo "containerd=$containerd_dir/containerd"
echo "containerd-shim-runc-v2=$containerd_dir/containerd-shim-runc-v2"
echo "ctr=$containerd_dir/ctr"
echo "runc=$runc_dir/runc"
echo "cni-bin-dir=$cni_dir"
echo "pause=$pause_dir/pause"
