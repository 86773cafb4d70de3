#!/usr/bin/env bash
# systemd-analyze verify accepts the installed units without a word: every key known,
# every command executable, the socket and the service naming each other correctly;
# and the service may open a descriptor for each client max_connections allows; and the
# signing key's LoadCredential= line the unit documents, put in a drop-in as the README
# says, is one systemd takes.
# verify needs ExecStart='s binary to exist, so it runs on a temporary-prefix install,
# whose units name the binaries installed next to them.
# Usage: unit-verify.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

units="$prefix/lib/systemd/system"
grep -qx "ExecStart=$prefix/sbin/flowgated --config $prefix/etc/flowgate/flowgated.toml" \
  "$units/flowgated.service" || fail "ExecStart does not name the installed daemon and configuration"
grep -qx "ListenStream=$prefix/run/flowgate/flowgate.sock" "$units/flowgated.socket" ||
  fail "the socket unit does not listen where the configuration says"

verify_units() {
  local status=0 output
  output=$(systemd-analyze verify "$units/flowgated.service" "$units/flowgated.socket" \
    "$units/flowgate-ship.service" 2>&1) ||
    status=$?
  [ "$status" -eq 0 ] || { echo "$output" >&2; fail "systemd-analyze verify exited $status$1"; }
  [ -z "$output" ] || { echo "$output" >&2; fail "systemd-analyze verify had something to say$1"; }
}
verify_units ""

credential="LoadCredential=signing_key:$prefix/etc/flowgate/signing.key"
grep -qx "#$credential" "$units/flowgated.service" ||
  fail "the unit does not document $credential"
mkdir "$units/flowgated.service.d"
printf '[Service]\n%s\n' "$credential" >"$units/flowgated.service.d/signing-key.conf"
verify_units " with the signing key's drop-in"

# Room for every client the daemon serves (max_connections, 1024 unless the installed
# configuration says otherwise) and its own descriptors (the store, its WAL, the locks,
# a reload's policy files): else accept() fails with EMFILE before the daemon can say
# too_many_connections.
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$units/flowgated.service")
[ -n "$nofile" ] || fail "flowgated.service sets no LimitNOFILE="
connections=$(sed -n 's/^max_connections *= *\([0-9]*\).*/\1/p' "$prefix/etc/flowgate/flowgated.toml")
connections=${connections:-1024}
[ "$nofile" -ge $((connections + 64)) ] ||
  fail "LimitNOFILE=$nofile leaves no room above max_connections ($connections) + 64"
