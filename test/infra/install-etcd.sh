#!/usr/bin/env bash
# etcd and etcdctl from Debian's packages. Idempotent. Prints the two paths.
source "$(dirname "$0")/lib.sh"
apt_ensure etcd-server etcd-client openssl
command -v etcd
command -v etcdctl
