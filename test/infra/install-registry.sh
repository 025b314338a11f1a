#!/usr/bin/env bash
# Installs the OCI registry (Debian's docker-registry: distribution v2) and the image tools (umoci to
# build, skopeo to push) from Debian's packages. Idempotent. Prints the paths of the registry binary,
# skopeo and umoci, one per line.
# htpasswd entries are bcrypt-hashed with perl's crypt() (perl-base is Essential; Debian's libcrypt
# knows bcrypt), so apache2-utils is not needed; checked here so that a start fails early and clearly.
source "$(dirname "$0")/lib.sh"

debian_ensure registry

for tool in docker-registry skopeo umoci openssl perl tar; do
  command -v "$tool" >/dev/null || { log "$tool not found on PATH after install"; exit 1; }
done

hash="$(perl -e 'print crypt("probe", "\$2b\$05\$abcdefghijklmnopqrstuv")')"
if [[ "$hash" != '$2b$05$'* ]]; then
  log "perl's crypt() cannot make bcrypt hashes (got '$hash'): the registry's htpasswd auth needs them"
  exit 1
fi

command -v docker-registry
command -v skopeo
command -v umoci
