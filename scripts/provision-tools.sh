#!/usr/bin/env bash
# Installs what the embedded stack runs, idempotently:
#   - the Temporal CLI (dev server + Web UI) and MinIO, built with `go install` at the versions
#     pinned in package.json ("lifeboatTools"), cached outside the clone and keyed by version;
#   - pgBackRest, PowerDNS, the PostgreSQL server, sqlite3, openssl and zstd from the OS packages.
# A binary named by its environment variable (LIFEBOAT_TEMPORAL_BIN, LIFEBOAT_MINIO_BIN) or
# already on PATH wins. Prints the resolved paths; a second run costs seconds.
set -euo pipefail
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || printf 'provision: %s\n' "$*"; }
fail() { printf 'provision: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
command -v node >/dev/null || fail "Node.js 20 or newer is required: install it (Debian: apt-get install nodejs npm) and run this again."
tool_field() { node -e "process.stdout.write(String(require('$here/package.json').lifeboatTools$1))"; }
tools_dir=${LIFEBOAT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lifeboat/tools}
mkdir -p "$tools_dir"

# --- OS packages -----------------------------------------------------------------------------
missing=()
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
command -v pdns_server >/dev/null || [ -x /usr/sbin/pdns_server ] || missing+=(pdns-server)
[ -e /usr/lib/x86_64-linux-gnu/pdns/libgsqlite3backend.so ] || ls /usr/lib/*/pdns/libgsqlite3backend.so >/dev/null 2>&1 || missing+=(pdns-backend-sqlite3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
# sqlite3: PowerDNS's zone database, and SQLite targets (the online copy is its `.backup`, SQLite's backup API).
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v openssl >/dev/null || missing+=(openssl)
# Logical dumps are compressed by the zstd program (multithreaded; Node's zlib has no zstd).
command -v zstd >/dev/null || missing+=(zstd)
# Reports people read are checked in a real browser (headless, driven by playwright-core).
command -v chromium >/dev/null || missing+=(chromium)
# The Temporal TLS test puts a real mutual-TLS endpoint in front of the dev server.
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# Decisions signed through ssh-agent are tested with a real agent (ssh-agent, ssh-add, ssh-keygen).
{ command -v ssh-agent >/dev/null && command -v ssh-add >/dev/null && command -v ssh-keygen >/dev/null; } || missing+=(openssh-client)
# The shipped alert rules are tested with promtool (Debian's prometheus package carries it).
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing OS packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages may not start services here (no init system); that is fine, lifeboat starts its own.
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/lifeboat-apt.log 2>&1; then
      apt-get update >>/tmp/lifeboat-apt.log 2>&1 || true
      apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/lifeboat-apt.log 2>&1 ||
        fail "could not install ${missing[*]} with apt-get (see /tmp/lifeboat-apt.log): check the package mirror is reachable, then run this again."
    fi
  else
    fail "missing OS packages ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}' (or your distribution's equivalent) and run this again."
  fi
fi

# --- Go-built tools --------------------------------------------------------------------------
build_tool() { # name binary
  local name=$1 binary=$2 module version envvar cached
  module=$(tool_field ".$name.module"); version=$(tool_field ".$name.version"); envvar=$(tool_field ".$name.env")
  if [ -n "${!envvar:-}" ]; then
    [ -x "${!envvar}" ] || fail "$envvar points at ${!envvar}, which is not an executable file: fix the variable or unset it."
    say "$name: ${!envvar} (from $envvar)"; return
  fi
  cached="$tools_dir/$name-$version/$binary"
  if [ -x "$cached" ]; then say "$name: $cached (cached)"; return; fi
  if command -v "$binary" >/dev/null; then say "$name: $(command -v "$binary") (on PATH)"; return; fi
  command -v go >/dev/null || [ -x /usr/local/go/bin/go ] ||
    fail "Go 1.24 or newer is needed to build $name ($module@$version): install Go (https://go.dev/dl) or set $envvar to an existing $binary binary."
  local gobin; gobin=$(command -v go || echo /usr/local/go/bin/go)
  say "$name: building $module@$version with go install (a few minutes, once per machine)"
  mkdir -p "$tools_dir/$name-$version.tmp"
  if ! GOBIN="$tools_dir/$name-$version.tmp" GOFLAGS=-trimpath "$gobin" install "$module@$version" >"$tools_dir/$name-$version.log" 2>&1; then
    tail -n 20 "$tools_dir/$name-$version.log" >&2
    fail "go install $module@$version failed (log: $tools_dir/$name-$version.log): check that the Go module proxy ($("$gobin" env GOPROXY)) is reachable, then run this again."
  fi
  rm -rf "$tools_dir/$name-$version"
  mv "$tools_dir/$name-$version.tmp" "$tools_dir/$name-$version"
  say "$name: $cached (built)"
}
build_tool temporal temporal
build_tool minio minio
