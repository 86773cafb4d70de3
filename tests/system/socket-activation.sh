#!/usr/bin/env bash
# Socket activation as flowgated.socket does it: systemd-socket-activate listens, and
# the first connection starts the installed daemon with the socket as descriptor 3
# (LISTEN_FDS=1). The daemon serves that socket, not the one in its configuration,
# and leaves the socket file to whoever made it when it stops.
# Usage: socket-activation.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

socket="$work/activated.sock"
"$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" --audit-db "$work/a.db" \
  --init-store 2>"$work/init.log" || { cat "$work/init.log" >&2; fail "--init-store failed"; }
systemd-socket-activate --listen="$socket" \
  "$prefix/sbin/flowgated" --config "$prefix/etc/flowgate/flowgated.toml" \
  --audit-db "$work/a.db" 2>"$work/flowgated.log" &
daemon=$!
started_pids+=("$daemon")
wait_for_socket "$socket"

status=0
"$prefix/bin/flowgate" --socket "$socket" check --purpose health_services \
  --activity lifestyle_programme --to prevent --data checkup_result || status=$?
[ "$status" -eq 0 ] || { cat "$work/flowgated.log" >&2; fail "the check exited $status, not 0"; }
grep -q "socket=(socket activation)" "$work/flowgated.log" ||
  { cat "$work/flowgated.log" >&2; fail "the daemon did not serve the inherited socket"; }
[ ! -e "$prefix/run/flowgate/flowgate.sock" ] ||
  fail "the daemon also bound the socket of its configuration"

stop_and_expect_clean_exit "$daemon"
[ -S "$socket" ] || fail "the daemon removed the socket file it was handed"
