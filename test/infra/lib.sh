# Shared helpers for the test-infrastructure install scripts (sourced, not run).
set -euo pipefail

KUSTODIA_CACHE="${KUSTODIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kustodia}"
mkdir -p "$KUSTODIA_CACHE"
KUSTODIA_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[infra] %s\n' "$*" >&2; }

# Installs the Debian packages of these groups (scripts/system/debian-packages.txt) through the
# project's one serialised installer; a no-op when they are installed.
debian_ensure() { bash "$KUSTODIA_REPO/scripts/system/install-debian.sh" "$@"; }

# Holds an exclusive lock named $1 in the cache until the script exits, so that two runs (two
# services, two checkouts) never build or install the same thing into the cache at the same time.
# Re-check what the lock guards after taking it: the other holder may have done the work.
cache_lock() {
  mkdir -p "$KUSTODIA_CACHE/.locks"
  exec 9>>"$KUSTODIA_CACHE/.locks/$1.lock"
  flock -w "${KUSTODIA_CACHE_LOCK_WAIT:-3600}" 9 || { log "waited too long for the cache lock $1"; exit 75; }
}
