#!/usr/bin/env bash
# Installs what is needed, builds, and starts flowgated in the foreground on the
# bundled policy, with its socket, audit database and checkpoint signing key in ./run
# (no root needed); the first run makes the key (flowgate audit keygen) and the audit
# database (flowgated --init-store).
# Stop it with Ctrl-C (SIGTERM/SIGINT); reload with `kill -HUP` or `flowgate reload`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target flowgated flowgate

mkdir -p run
# The key the daemon signs its checkpoints with; the verifier key printed below is what an
# auditor checks them with (`flowgate audit verifier-key run/signing.key` shows it again).
if [ ! -e run/signing.key ]; then
  build/release/cli/flowgate audit keygen "$(hostname)/flowgate" -o run/signing.key >/dev/null
fi
verifier=$(build/release/cli/flowgate audit verifier-key run/signing.key)
if [ ! -f run/flowgated.toml ]; then
  cat > run/flowgated.toml <<TOML
# A local configuration made by scripts/run.sh; edit freely.
socket = "$root/run/flowgate.sock"
socket_mode = "0660"
policy = "$root/policies"
audit_db = "$root/run/audit.db"
# The key checkpoints are signed with (made by flowgate audit keygen on the first run).
signing_key = "$root/run/signing.key"
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
if grep -q '^signing_key *=' run/flowgated.toml; then
  echo "flowgated: checkpoints signed by the key in run/signing.key; its verifier key: $verifier"
else
  echo "flowgated: run/flowgated.toml names no signing_key: checkpoints will be unsigned"
fi
exec build/release/daemon/flowgated --config run/flowgated.toml
