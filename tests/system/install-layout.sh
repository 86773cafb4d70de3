#!/usr/bin/env bash
# `cmake --install` lays flowgate out the Debian way and keeps what the admin owns:
# binaries, units and entries under the prefix; the configuration, pointing at the
# installed policy and state, and the policy, checking clean and passing its own tests,
# under PREFIX/etc/flowgate; a reinstall leaves an edited configuration and policy
# alone. With the prefix /usr the configuration goes to /etc and the store to /var/lib.
# Usage: install-layout.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
install_into_temp_prefix "$1"

for file in sbin/flowgated bin/flowgate; do
  [ -x "$prefix/$file" ] || fail "no executable $file"
done
for file in lib/systemd/system/flowgated.service lib/systemd/system/flowgated.socket \
  lib/sysusers.d/flowgate.conf lib/tmpfiles.d/flowgate.conf etc/flowgate/flowgated.toml \
  etc/flowgate/policy/kenpo-table.csv etc/flowgate/policy/kenpo.policy \
  share/flowgate/flowgated.toml share/flowgate/policy/kenpo-table.csv \
  share/doc/flowgate/README.md; do
  [ -f "$prefix/$file" ] || fail "no $file"
done

config="$prefix/etc/flowgate/flowgated.toml"
grep -qx "policy = \"$prefix/etc/flowgate/policy\"" "$config" || fail "policy is not the installed one"
grep -qx "audit_db = \"$prefix/var/lib/flowgate/audit.db\"" "$config" ||
  fail "audit_db is not under the prefix's var/lib/flowgate"
"$prefix/bin/flowgate" policy check "$prefix/etc/flowgate/policy" ||
  fail "the installed policy does not check clean"
"$prefix/bin/flowgate" policy test "$prefix/etc/flowgate/policy" >/dev/null ||
  fail "the installed policy's test cases fail"

echo "# edited by the admin" >>"$config"
echo "# edited by the admin" >>"$prefix/etc/flowgate/policy/base.policy"
rm "$prefix/etc/flowgate/policy/members.policy"
install_into_temp_prefix "$1"
grep -q "edited by the admin" "$config" || fail "a reinstall overwrote the configuration"
grep -q "edited by the admin" "$prefix/etc/flowgate/policy/base.policy" ||
  fail "a reinstall overwrote the policy"
[ ! -e "$prefix/etc/flowgate/policy/members.policy" ] ||
  fail "a reinstall added a file to the live policy"
grep -q "edited by the admin" "$prefix/share/flowgate/flowgated.toml" &&
  fail "the shipped configuration was changed"

# A package build: prefix /usr, staged under DESTDIR.
stage="$work/stage"
DESTDIR="$stage" cmake --install "$1" --prefix /usr >"$work/stage.log" 2>&1 ||
  { cat "$work/stage.log" >&2; fail "the DESTDIR install failed"; }
[ -x "$stage/usr/sbin/flowgated" ] || fail "no /usr/sbin/flowgated"
[ -f "$stage/usr/lib/systemd/system/flowgated.service" ] || fail "no unit in /usr/lib/systemd/system"
config="$stage/etc/flowgate/flowgated.toml"
grep -qx 'policy = "/etc/flowgate/policy"' "$config" || fail "policy is not /etc/flowgate/policy"
grep -qx 'audit_db = "/var/lib/flowgate/audit.db"' "$config" || fail "audit_db is not in /var/lib/flowgate"
grep -qx 'socket = "/run/flowgate/flowgate.sock"' "$config" || fail "socket is not in /run/flowgate"
grep -qx "ExecStart=/usr/sbin/flowgated --config /etc/flowgate/flowgated.toml" \
  "$stage/usr/lib/systemd/system/flowgated.service" || fail "ExecStart is not the /usr one"
# systemd/flowgated.{service,socket} are these units for the Debian layout, committed so
# they can be read and analysed in the source tree: they must not go stale.
source_dir="$(cd "$(dirname "$0")/../.." && pwd)"
for unit in flowgated.service flowgated.socket; do
  diff -u "$source_dir/systemd/$unit" "$stage/usr/lib/systemd/system/$unit" >&2 ||
    fail "systemd/$unit differs from what the install makes of systemd/$unit.in"
done
[ ! -e "$stage/var" ] || fail "a system install made /var itself (tmpfiles.d's job)"
