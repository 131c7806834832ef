#!/usr/bin/env bash
# Set up (idempotent) and run the main job on the embedded defaults: backfill the
# sample analyses into local Qdrant and print retrieval, liver analysis,
# top-performer comparison and the prompt block. `scripts/run.sh serve` instead
# starts the local API + queue worker + dashboard (/ui) against a project-started Azurite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${1:-}" = "serve" ]; then
  shift
  mkdir -p .data/azurite
  node_modules/.bin/azurite --silent --disableTelemetry --skipApiVersionCheck --loose \
    --location .data/azurite --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 &
  trap 'kill $! 2>/dev/null' EXIT
  port=7071 host=127.0.0.1 prev=""
  for arg in "$@"; do
    case "$prev" in --port) port=$arg ;; --host) host=$arg ;; esac
    prev=$arg
  done
  echo "dashboard: http://$host:$port/ui/   (API docs: http://$host:$port/api/docs)"
  exec_cmd=(.venv/bin/python -m functions.local_host "$@")
  "${exec_cmd[@]}"
else
  exec .venv/bin/python -m rag_core.operations.demo "$@"
fi
