#!/usr/bin/env bash
# The one installer of Debian packages: `install-debian.sh <group>...` (groups from
# debian-packages.txt beside it), `--all` for every group, `--list [group...]` to print the packages,
# `--purge-list` to print what the fresh-machine rehearsal purges (the packages not marked `base`).
# Installs what is missing in one apt-get transaction while holding a machine-wide lock, so that two
# installs (two services starting at once, the build, a second checkout's tests) never meet at apt's
# lock; waits a bounded time for apt/dpkg locks held by anything else. Idempotent; quiet when
# nothing is missing. On failure prints apt's own output and exits non-zero.
# A package written <name>:<arch> for another architecture than the machine's (libc6:arm64) is
# installed through multiarch: the installer adds that architecture to dpkg and refreshes apt's
# lists first, under the same lock. apt-get download <name>:<arch> works from then on too.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
list="${KUSTODIA_DEBIAN_LIST:-$here/debian-packages.txt}"
lock="${KUSTODIA_APT_LOCK:-/run/lock/kustodia-apt.lock}"
wait_seconds="${KUSTODIA_APT_WAIT:-900}"

packages_of() { # groups... -> packages (each once, file order)
  awk -v want=" $* " '
    /^[[:space:]]*(#|$)/ { next }
    { n = split($2, groups, ","); for (i = 1; i <= n; i++) if (want == " --all " || index(want, " " groups[i] " ")) { print $1; break } }
  ' "$list"
}

if [ "${1:-}" = "--purge-list" ]; then
  awk '/^[[:space:]]*(#|$)/ { next } $3 == "base" { next } { p = $1; if ($3 ~ /^purge=/) p = substr($3, 7); print p }' "$list"
  exit 0
fi
list_only=0
if [ "${1:-}" = "--list" ]; then list_only=1; shift; fi
[ $# -gt 0 ] || set -- --all
for group in "$@"; do
  [ "$group" = "--all" ] && continue
  grep -Eq "^[a-z0-9.+:-]+[[:space:]]+([a-z0-9-]+,)*$group(,|[[:space:]]|$)" "$list" ||
    { echo "install-debian.sh: unknown group '$group' (see $list)" >&2; exit 64; }
done
mapfile -t wanted < <(packages_of "$@")
if [ "$list_only" = 1 ]; then printf '%s\n' "${wanted[@]}"; exit 0; fi

missing() {
  local pkg
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}
# Architectures the wanted packages name that dpkg does not know yet.
new_architectures() {
  local pkg arch native known
  native="$(dpkg --print-architecture)"
  known=" $(dpkg --print-foreign-architectures | tr '\n' ' ') "
  for pkg in "${wanted[@]}"; do
    [[ "$pkg" == *:* ]] || continue
    arch="${pkg##*:}"
    [ "$arch" = "$native" ] || [[ "$known" == *" $arch "* ]] || echo "$arch"
  done | sort -u
}
mapfile -t todo < <(missing)
[ ${#todo[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
exec 8>>"$lock"
if ! flock -w "$wait_seconds" 8; then
  echo "install-debian.sh: waited ${wait_seconds}s for $lock (another kustodia install holds it)" >&2
  exit 75
fi
mapfile -t todo < <(missing) # another holder of the lock may have installed them meanwhile
[ ${#todo[@]} -eq 0 ] && exit 0

apt_opts=(-o "DPkg::Lock::Timeout=$wait_seconds" -o "Acquire::Retries=3" -qq)
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
mapfile -t architectures < <(new_architectures)
if [ ${#architectures[@]} -gt 0 ]; then
  for arch in "${architectures[@]}"; do
    echo "[install-debian] dpkg --add-architecture $arch" >&2
    $sudo dpkg --add-architecture "$arch"
  done
  echo "[install-debian] apt-get update (for ${architectures[*]})" >&2
  if ! $sudo apt-get "${apt_opts[@]}" update >"$out" 2>&1; then
    echo "install-debian.sh: apt-get update for the architecture(s) ${architectures[*]} failed:" >&2
    tail -n 30 "$out" >&2
    exit 1
  fi
fi
echo "[install-debian] apt-get install ${todo[*]}" >&2
apt_install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get "${apt_opts[@]}" install -y --no-install-recommends "${todo[@]}" >"$out" 2>&1; }
if ! apt_install; then
  echo "[install-debian] apt-get update" >&2
  if ! $sudo apt-get "${apt_opts[@]}" update >"$out" 2>&1 || ! apt_install; then
    echo "install-debian.sh: apt-get install ${todo[*]} failed:" >&2
    tail -n 30 "$out" >&2
    exit 1
  fi
fi
