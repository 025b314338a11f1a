#!/usr/bin/env bash
# etcd and etcdctl from Debian's packages. Idempotent. Prints the two paths.
source "$(dirname "$0")/lib.sh"
debian_ensure kube
command -v etcd
command -v etcdctl
