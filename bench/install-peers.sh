#!/usr/bin/env bash
# Builds the peers of the side-by-side benchmarks, Bank-Vaults' vault-secrets-webhook and vault-env,
# into $KUSTODIA_CACHE/bank-vaults/<name>-<version>/<name> (static, CGO off, stripped — as their
# release images ship them) and prints the two paths. Idempotent: a binary already built is reused.
#
#   bench/install-peers.sh            # vault-secrets-webhook v1.23.1, vault-env v1.23.0
#
# First `go install <module>@<version>` through the Go module proxy. Where the proxy refuses the
# module (it does for github.com/bank-vaults/* on some networks), the tagged source is built instead:
# from a git mirror in $KUSTODIA_PEER_SOURCES (directories named <owner>+<name>, bare or with a
# repo/ git dir inside) or else cloned from GitHub, with `replace` lines pointing every dependency the
# proxy refuses at the same version's source from the same place.
set -euo pipefail

KUSTODIA_CACHE="${KUSTODIA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kustodia}"
WEBHOOK_VERSION="${BANK_VAULTS_WEBHOOK_VERSION:-v1.23.1}"
VAULT_ENV_VERSION="${BANK_VAULTS_VAULT_ENV_VERSION:-v1.23.0}"
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
LDFLAGS="-s -w"

log() { printf '[install-peers] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "needs Go (https://go.dev/dl/) on PATH"; exit 1; }
command -v git >/dev/null || { log "needs git on PATH"; exit 1; }

# A git directory holding github.com/<owner>/<name>: a mirror from $KUSTODIA_PEER_SOURCES, or a clone.
git_dir() {
  local owner="$1" name="$2" work="$3"
  for candidate in "${KUSTODIA_PEER_SOURCES:-}/$owner+$name/repo" "${KUSTODIA_PEER_SOURCES:-}/$owner+$name"; do
    if [ -n "${KUSTODIA_PEER_SOURCES:-}" ] && git --git-dir="$candidate" rev-parse --git-dir >/dev/null 2>&1; then
      echo "$candidate"
      return
    fi
  done
  local clone="$work/git/$owner+$name"
  if [ ! -d "$clone" ]; then
    log "git clone https://github.com/$owner/$name"
    git clone --quiet --bare "https://github.com/$owner/$name" "$clone" >&2
  fi
  echo "$clone"
}

# Extracts <owner>/<name> at <ref> (optionally only <subdir>) into <dest>.
extract() {
  local owner="$1" name="$2" ref="$3" dest="$4" work="$5" subdir="${6:-}"
  mkdir -p "$dest"
  git --git-dir="$(git_dir "$owner" "$name" "$work")" archive "$ref" ${subdir:+"$subdir"} | tar -x -C "$dest"
}

proxy_has() { go mod download -json "$1@$2" >/dev/null 2>&1; }

# Builds github.com/bank-vaults/<name> at <version> from source into <out>.
build_from_source() {
  local name="$1" version="$2" out="$3" work="$4"
  local src="$work/src/$name"
  extract bank-vaults "$name" "$version" "$src" "$work"
  (
    cd "$src"
    # Dependencies the proxy refuses: other bank-vaults modules (tagged), and go-containerregistry
    # submodules at a pseudo-version (the commit is its last 12 hex digits).
    while read -r module required; do
      case "$module" in
        github.com/bank-vaults/*)
          proxy_has "$module" "$required" && continue
          local dep="${module#github.com/bank-vaults/}"
          log "the proxy refuses $module@$required: building it from source"
          extract bank-vaults "$dep" "$required" "$work/dep/$dep-$required" "$work"
          go mod edit -replace "$module=$work/dep/$dep-$required"
          ;;
        github.com/google/go-containerregistry/pkg/authn/*)
          proxy_has "$module" "$required" && continue
          local commit="${required##*-}" sub="${module#github.com/google/go-containerregistry/}"
          log "the proxy refuses $module@$required: building it from source ($commit)"
          extract google go-containerregistry "$commit" "$work/dep/ggcr-$commit" "$work" pkg/authn
          go mod edit -replace "$module=$work/dep/ggcr-$commit/$sub"
          # k8schain needs its sibling at the same commit.
          if [ "$sub" = pkg/authn/k8schain ]; then
            go mod edit -replace "github.com/google/go-containerregistry/pkg/authn/kubernetes=$work/dep/ggcr-$commit/pkg/authn/kubernetes"
          fi
          ;;
      esac
    done < <(awk '/^require \(/{inside=1; next} inside && /^\)/{inside=0} inside && !/indirect/{print $1, $2} /^require [^(]/{print $2, $3}' go.mod)
    log "go build github.com/bank-vaults/$name@$version (from source)"
    go build -trimpath -ldflags "$LDFLAGS" -o "$out" .
  )
}

install_peer() {
  local name="$1" version="$2"
  local dir="$KUSTODIA_CACHE/bank-vaults/$name-$version"
  local binary="$dir/$name"
  if [ -x "$binary" ]; then
    echo "$binary"
    return
  fi
  # One build of a peer at a time on this machine (a second run waits, then finds the binary).
  mkdir -p "$KUSTODIA_CACHE/.locks"
  exec 9>>"$KUSTODIA_CACHE/.locks/bank-vaults-$name-$version.lock"
  flock -w 3600 9 || { log "waited too long for another build of $name"; exit 75; }
  if [ -x "$binary" ]; then
    exec 9>&-
    echo "$binary"
    return
  fi
  local work
  work="$(mktemp -d "${TMPDIR:-/tmp}/kustodia-peers-XXXXXX")"
  mkdir -p "$dir"
  log "go install github.com/bank-vaults/$name@$version"
  if GOBIN="$work/bin" go install -trimpath -ldflags "$LDFLAGS" "github.com/bank-vaults/$name@$version" 2>"$work/install.log"; then
    mv "$work/bin/$name" "$binary"
  else
    log "go install failed: $(grep -m1 -E 'refused|Forbidden|not available|error' "$work/install.log" || tail -n1 "$work/install.log")"
    if ! build_from_source "$name" "$version" "$work/$name" "$work"; then
      rm -rf "$work"
      exit 1
    fi
    mv "$work/$name" "$binary"
  fi
  rm -rf "$work"
  exec 9>&-
  echo "$binary"
}

install_peer vault-secrets-webhook "$WEBHOOK_VERSION"
install_peer vault-env "$VAULT_ENV_VERSION"
