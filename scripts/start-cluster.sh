#!/usr/bin/env bash
# Starts the loopback NATS JetStream and etcd clusters (whatever node does not answer), idempotently.
# Everything else (status, stop/kill/start/pause one node, down) is scripts/cluster.sh.
exec bash "$(dirname "$0")/cluster.sh" up
