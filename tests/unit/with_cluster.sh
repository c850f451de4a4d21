#!/usr/bin/env bash
# with_cluster.sh PROGRAM [ARGS...]: runs PROGRAM with a local Redis Cluster
# (three masters, three replicas; scripts/services.sh) up, its first node's
# port in PARLEY_TEST_CLUSTER_PORT, and stops the cluster afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../scripts/services.sh
. "$here/../../scripts/services.sh"
state=$(mktemp -d /tmp/parley-cluster.XXXXXX)
cleanup() { svc_redis_cluster_stop "$state"; rm -rf "$state"; }
trap cleanup EXIT
base=$(svc_cluster_base)
svc_redis_cluster_start "$state" "$base"
PARLEY_TEST_CLUSTER_PORT=$base "$@"
