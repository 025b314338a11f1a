#!/usr/bin/env bash
# The fresh-machine rehearsal: what a new user's first `npm ci && npm test` meets.
#   1. purges the Debian packages the project installs (scripts/system/install-debian.sh --purge-list:
#      every package of debian-packages.txt not marked `base`),
#   2. points every cache the build and tests use (KUSTODIA_CACHE, GOCACHE, GOMODCACHE, npm's, pip's)
#      at empty directories,
#   3. clones this repository's committed HEAD and runs `.ci/run` in the clone with CI=true,
# then prints `fresh-machine rehearsal: <summary line> in <wall time>` last, and fails when the run
# failed or apt's lock was contended anywhere in its output.
# Usage: scripts/system/fresh-machine.sh [--keep]   (--keep leaves the clone and caches for a look)
# It changes this machine (packages are reinstalled by the run itself): do not run it beside other
# kustodia runs you care about.
set -uo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
keep=0
[ "${1:-}" = "--keep" ] && keep=1
work="$(mktemp -d "${TMPDIR:-/var/tmp}/kustodia-fresh-XXXXXX")"
say() { printf '[fresh-machine] %s\n' "$*" >&2; }

mapfile -t purge < <(bash "$repo/scripts/system/install-debian.sh" --purge-list)
installed=()
for pkg in "${purge[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && installed+=("$pkg")
done
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ${#installed[@]} -gt 0 ]; then
  say "purging ${installed[*]} (and what only they needed)"
  exec 8>>"${KUSTODIA_APT_LOCK:-/run/lock/kustodia-apt.lock}"
  flock -w 900 8 || { say "the kustodia apt lock is held by another run"; exit 1; }
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=900 -qq purge -y --autoremove "${installed[@]}" >"$work/purge.log" 2>&1 ||
    { say "apt-get purge failed:"; tail -n 20 "$work/purge.log" >&2; exit 1; }
  exec 8>&-
fi
still=()
for pkg in "${purge[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && still+=("$pkg")
done
[ ${#still[@]} -eq 0 ] || { say "still installed after the purge: ${still[*]}"; exit 1; }

export XDG_CACHE_HOME="$work/cache"
export KUSTODIA_CACHE="$work/cache/kustodia" GOCACHE="$work/cache/go-build" GOMODCACHE="$work/cache/go-mod"
export npm_config_cache="$work/cache/npm" PIP_CACHE_DIR="$work/cache/pip"
mkdir -p "$KUSTODIA_CACHE" "$GOCACHE" "$GOMODCACHE" "$npm_config_cache" "$PIP_CACHE_DIR"
unset KUSTODIA_INFRA_STATE

git clone -q "$repo" "$work/repo" || { say "git clone failed"; exit 1; }
say "clone of $(git -C "$work/repo" rev-parse --short HEAD) in $work/repo; running CI=true .ci/run (log: $work/ci.log)"
began=$(date +%s)
(cd "$work/repo" && CI=true bash .ci/run) >"$work/ci.log" 2>&1
status=$?
wall=$(($(date +%s) - began))
summary="$(tail -n 1 "$work/ci.log")"
if grep -q "Could not get lock" "$work/ci.log"; then
  say "apt's lock was contended during the run:"
  grep -m 5 "Could not get lock" "$work/ci.log" >&2
  status=1
fi
if [ "$status" -eq 0 ] && [ "$keep" -eq 0 ]; then rm -rf "$work"; else say "kept: $work"; fi
echo "fresh-machine rehearsal: $summary in $((wall / 60)) m $((wall % 60)) s"
exit "$status"
