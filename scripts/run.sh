#!/usr/bin/env bash
# Installs what is needed, builds, and starts flowgated in the foreground on the
# bundled policy, with its socket and audit database in ./run (no root needed); the
# first run makes the audit database (flowgated --init-store).
# Stop it with Ctrl-C (SIGTERM/SIGINT); reload with `kill -HUP` or `flowgate reload`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target flowgated flowgate

mkdir -p run
if [ ! -f run/flowgated.toml ]; then
  cat > run/flowgated.toml <<TOML
# A local configuration made by scripts/run.sh; edit freely.
socket = "$root/run/flowgate.sock"
socket_mode = "0660"
policy = "$root/policies"
audit_db = "$root/run/audit.db"
durability = "full"
log_level = "info"

# The local user may reload the policy.
[[service]]
uid = $(id -u)
name = "local-admin"
admin = true
TOML
fi
# flowgated never makes a store by starting (a lost store is refused, not replaced):
# the first run, with no store in ./run yet, makes it; later runs serve that one.
if [ ! -e run/audit.db ]; then
  build/release/daemon/flowgated --config run/flowgated.toml --init-store
fi
echo "flowgated: socket $root/run/flowgate.sock, audit store $root/run/audit.db"
exec build/release/daemon/flowgated --config run/flowgated.toml
