#!/usr/bin/env bash
# Installs the Debian packages tether needs to build (when missing), builds it,
# and runs `tether agent` in the foreground on this host. Extra arguments are
# passed to the agent, e.g.  ./scripts/run-agent.sh --interval 1 --listen :9338
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
make -j"$(nproc)" >/dev/null
exec ./build/tether agent "$@"
