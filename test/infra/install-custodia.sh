#!/usr/bin/env bash
# Installs Custodia from Debian (package `custodia`, 0.6.0). Idempotent. Prints the server's path.
source "$(dirname "$0")/lib.sh"

debian_ensure custodia
custodia=/usr/sbin/custodia
[ -x "$custodia" ] || { log "custodia is installed but $custodia is missing"; exit 1; }
echo "$custodia"
