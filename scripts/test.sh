#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, checks format and
# lints, then runs every test (unit, conformance against memory/sqlite/redis/redis
# cluster, end-to-end with real processes). The tests start their own redis-server
# processes on free loopback ports; nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "==> installing redis-server (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi

# Test agents for the ACP driver are Node.js programs on the official SDK.
for fixture in drivers/tests/fixtures/*/; do
  if [ -f "$fixture/package-lock.json" ]; then
    echo "==> npm ci in $fixture"
    (cd "$fixture" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

echo "==> sessiond-client depends on no server crate"
forbidden='^(axum|redis|rusqlite|ractor|sessiond-store|sessiond-actors|sessiond-runtime) v'
client_deps=$(cargo tree --locked -p sessiond-client --edges normal --prefix none)
if echo "$client_deps" | grep -Eq "$forbidden"; then
  echo "sessiond-client must not depend on these (found):" >&2
  echo "$client_deps" | grep -E "$forbidden" | sort -u >&2
  exit 1
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
