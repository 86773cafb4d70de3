#!/usr/bin/env bash
# `flowgated --config` with nothing else: the installed configuration alone names a
# socket, a policy and an audit store (made once with --init-store, as the install
# guide says) that exist in the installed tree. In a private
# prefix like this one they are all under the prefix, so no root is needed.
# Usage: installed-config-alone.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

# Without a store the daemon refuses to start and says how to make one.
status=0
"$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" 2>"$work/missing.log" ||
  status=$?
[ "$status" -eq 1 ] || fail "flowgated without a store exited $status, not 1"
grep -q -- "--init-store" "$work/missing.log" ||
  { cat "$work/missing.log" >&2; fail "the refusal does not name --init-store"; }
"$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" --init-store \
  2>"$work/init.log" || { cat "$work/init.log" >&2; fail "--init-store failed"; }

"$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" 2>"$work/flowgated.log" &
daemon=$!
started_pids+=("$daemon")
socket="$prefix/run/flowgate/flowgate.sock"
wait_for_socket "$socket"

status=0
FLOWGATE_SOCKET="$socket" "$prefix/bin/flowgate" status >"$work/status.txt" || status=$?
[ "$status" -eq 0 ] || { cat "$work/flowgated.log" >&2; fail "status exited $status"; }
grep -q "path: $prefix/var/lib/flowgate/audit.db" "$work/status.txt" ||
  { cat "$work/status.txt" >&2; fail "the audit store is not the configured one"; }
mode=$(stat -c %a "$socket")
[ "$mode" = 660 ] || fail "the socket's mode is $mode, not 660"

stop_and_expect_clean_exit "$daemon"
[ -s "$prefix/var/lib/flowgate/audit.db" ] || fail "no audit store in $prefix/var/lib/flowgate"
[ ! -e "$socket" ] || fail "the daemon left its own socket behind"
