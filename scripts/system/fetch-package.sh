#!/usr/bin/env bash
# Fetches package files into kustodia's cache, once, and prints their paths (one a line, in order):
#   fetch-package.sh npm <name> <version>        `npm pack <name>@<version>` (a published version
#                                                never changes)
#   fetch-package.sh debian <name>:<arch>...     `apt-get download` of the candidate versions in this
#                                                machine's apt lists, checked against the SHA256 the
#                                                lists give (one look-up in the lists for all of them)
# Nothing is installed. The cache is $KUSTODIA_CACHE/packages (default ~/.cache/kustodia/packages),
# keyed by file name (name, version, architecture). A lock per package serialises two fetches of
# the same file (two builds, two checkouts); a file appears in the cache only complete.
set -euo pipefail

cache="${KUSTODIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kustodia}"
say() { printf 'fetch-package.sh: %s\n' "$*" >&2; }

lock() {
  mkdir -p "$cache/.locks"
  exec 9>>"$cache/.locks/$1.lock"
  flock -w "${KUSTODIA_CACHE_LOCK_WAIT:-900}" 9 || { say "waited too long for the cache lock $1"; exit 75; }
}

work=""
trap '[ -z "$work" ] || rm -rf "$work"' EXIT
# Runs "$@" in a fresh directory beside $1 and moves the file it leaves there onto $1. Its output
# is shown only when it fails.
fetch_into() {
  local target="$1"
  shift
  mkdir -p "$(dirname "$target")"
  work="$(mktemp -d "$(dirname "$target")/.fetch-XXXXXX")"
  (cd "$work" && "$@" >"$work/.log" 2>&1) || { say "$* failed:"; cat "$work/.log" >&2; exit 1; }
  [ -s "$work/$(basename "$target")" ] || { say "$* left no $(basename "$target")"; exit 1; }
  mv "$work/$(basename "$target")" "$target"
}

sha_ok() { [ -s "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

case "${1:-}" in
  npm)
    [ $# -eq 3 ] || { say "usage: fetch-package.sh npm <name> <version>"; exit 64; }
    file="$cache/packages/npm/$2-$3.tgz"
    if [ ! -s "$file" ]; then
      lock "npm-$2-$3"
      [ -s "$file" ] || fetch_into "$file" npm pack --loglevel=error "$2@$3"
    fi
    echo "$file"
    ;;
  debian)
    shift
    [ $# -gt 0 ] || { say "usage: fetch-package.sh debian <name>:<arch>..."; exit 64; }
    printed="$(apt-get download --print-uris "$@" 2>&1)" || { say "apt-get download --print-uris $*: $printed"; exit 1; }
    for spec in "$@"; do
      # The line of <name>_<version>_<arch>.deb: file name and SHA256 (`.` and `+` of a name matched as such).
      pattern="$(sed 's/[.+]/\\&/g' <<<"${spec%%:*}")_[^_ ]+_${spec##*:}\.deb"
      read -r name sha < <(sed -nE "s/^'[^']+' ($pattern) [0-9]+ SHA256:([0-9a-f]{64})$/\1 \2/p" <<<"$printed" | head -n 1)
      if [ -z "${sha:-}" ]; then
        say "no file with a SHA256 for $spec in what apt printed: $printed"
        say "(are apt's lists missing or stale? scripts/system/install-debian.sh refreshes them)"
        exit 1
      fi
      file="$cache/packages/debian/$name"
      if ! sha_ok "$file" "$sha"; then
        lock "debian-$name"
        sha_ok "$file" "$sha" || fetch_into "$file" apt-get download -qq "$spec"
        sha_ok "$file" "$sha" || { say "$file: not the SHA256 apt's lists give ($sha)"; exit 1; }
      fi
      echo "$file"
      name="" sha=""
    done
    ;;
  *)
    say "usage: fetch-package.sh npm <name> <version> | debian <name>:<arch>..."
    exit 64
    ;;
esac
