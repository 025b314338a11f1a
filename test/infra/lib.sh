# Shared helpers for the test-infrastructure install scripts (sourced, not run).
set -euo pipefail

KUSTODIA_CACHE="${KUSTODIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kustodia}"
mkdir -p "$KUSTODIA_CACHE"

log() { printf '[infra] %s\n' "$*" >&2; }

# Runs apt-get install for the packages that are not yet installed; `apt-get update` only once per cache.
apt_ensure() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ ! -e "$KUSTODIA_CACHE/.apt-updated" ] || ! $sudo apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    log "apt-get update"
    $sudo apt-get update -qq
    touch "$KUSTODIA_CACHE/.apt-updated"
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
