#!/usr/bin/env bash
# The README's first command: installs what lifeboat needs, starts the embedded stack, a central
# worker and the sample database host's agent, and runs lifeboat's main job on it: preflight, a verified backup in both regions, the
# backup schedules, and a point-in-time restore requested by one person and approved by another.
# Safe to run again: it reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/provision-tools.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent   # a few seconds; keeps lib/ in step with src/ after a pull

lifeboat() { node bin/lifeboat.js "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "the embedded stack, a central worker, and the agent of the sample database's host"
# A deployment's shape: the central worker orchestrates (catalog, DNS, approvals); the agent runs
# what must run on the database host (pgBackRest, pg_dump, restored clusters). The example config
# names the agent of target app from LIFEBOAT_APP_AGENT, and `worker start` starts both.
export LIFEBOAT_APP_AGENT="${LIFEBOAT_APP_AGENT:-app-host}"
lifeboat stack up
lifeboat worker start

step "preflight: can lifeboat back up and restore right now?"
lifeboat preflight

step "a full backup of the sample application, verified and copied to the DR region"
lifeboat backup app --kind full --as dave@example.com

step "backup schedules in Temporal (see Schedules in the Web UI)"
lifeboat schedules apply

step "a point-in-time restore of app to now, into a new instance, approved by a second person"
id="restore-app-quickstart-$(date -u +%Y%m%dT%H%M%SZ | tr 'A-Z' 'a-z')"
lifeboat restore app --to latest --reason "quickstart: prove restores work" --as alice@example.com --id "$id"
# Production decisions are signed. The example config trusts the TEST-ONLY keys of test/fixtures/keys:
# a real deployment lists its own people's public keys in publicKeys (README, "Signed approvals").
# git checks the key out readable by all, and lifeboat refuses such a key file: sign with a private copy.
bob_key="$(mktemp)"
trap 'rm -f "$bob_key"' EXIT
install -m 600 test/fixtures/keys/bob.pem "$bob_key"
lifeboat approve "$id" --gate restore --reason "quickstart approval by a second person" --as bob@example.com --key "$bob_key"
lifeboat watch "$id"

ui_port=${LIFEBOAT_TEMPORAL_UI_PORT:-8233}
cat <<MSG

lifeboat is running on the embedded stack.
  Temporal Web UI:  http://127.0.0.1:${ui_port}   (workflows, schedules, the restore's timeline)
  what ran:         npx lifeboat list
  backups:          npx lifeboat backups list
  the agent:        npx lifeboat worker status --agent ${LIFEBOAT_APP_AGENT}   (pgBackRest, pg_dump and restored clusters run there)
  stop everything:  npx lifeboat stack down        (also stops the workers and restored instances)
MSG
