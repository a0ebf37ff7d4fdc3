#!/bin/sh
# The container's entry point: wait for the database, apply the migrations (and the first
# start's built-in lists and policy), then run the command given: `verify serve` by default,
# `verify worker` beside it. Containers that start together are safe: on PostgreSQL the
# migrations run under an advisory lock, so one applies them and the others find them done.
set -eu

python -m verify.database_wait
verify db upgrade >&2
exec "$@"
