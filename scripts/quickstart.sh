#!/usr/bin/env bash
# The README's first command: installs what lifeboat needs, starts the embedded stack and a
# worker, and runs lifeboat's main job against it. Safe to run again: it reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/provision-tools.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent   # a few seconds; keeps lib/ in step with src/ after a pull

lifeboat() { node bin/lifeboat.js "$@"; }
lifeboat stack up
lifeboat worker start
lifeboat preflight

ui_port=${LIFEBOAT_TEMPORAL_UI_PORT:-8233}
cat <<MSG

lifeboat is running on the embedded stack.
  Temporal Web UI:  http://127.0.0.1:${ui_port}
  status:           npx lifeboat stack status
  stop everything:  npx lifeboat stack down
MSG
