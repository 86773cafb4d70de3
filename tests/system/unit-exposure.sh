#!/usr/bin/env bash
# The installed units are hardened: systemd-analyze security rates the exposure of
# flowgated.service and of flowgate-ship.service at 1.5 or lower (0 is a fully sandboxed
# service, 10 an unprotected one).
# Usage: unit-exposure.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

for name in flowgated.service flowgate-ship.service; do
  unit="$prefix/lib/systemd/system/$name"
  report=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) ||
    { echo "$report" >&2; fail "systemd-analyze security failed on $name"; }
  score=$(echo "$report" | sed -n "s/.*Overall exposure level for $name: \([0-9.]*\).*/\1/p")
  [ -n "$score" ] || { echo "$report" >&2; fail "no overall exposure level in the report on $name"; }
  echo "$name exposure: $score"
  awk -v score="$score" 'BEGIN { exit !(score <= 1.5) }' ||
    { echo "$report" >&2; fail "$name: exposure $score is above 1.5"; }
done
