#!/usr/bin/env bash
# systemd-analyze verify accepts the installed units without a word: every key known,
# every command executable, the socket and the service naming each other correctly.
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

status=0
output=$(systemd-analyze verify "$units/flowgated.service" "$units/flowgated.socket" 2>&1) ||
  status=$?
[ "$status" -eq 0 ] || { echo "$output" >&2; fail "systemd-analyze verify exited $status"; }
[ -z "$output" ] || { echo "$output" >&2; fail "systemd-analyze verify had something to say"; }
