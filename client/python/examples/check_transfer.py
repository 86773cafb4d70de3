#!/usr/bin/env python3
# A service asking flowgated before it sends check-up results to a contractor, as the
# README shows it: connect, check, act on the decision and its obligations.
# Usage: check_transfer.py [SOCKET]   (default: FLOWGATE_SOCKET)
import sys

import flowgate

try:
    with flowgate.Client.connect(sys.argv[1] if len(sys.argv) > 1 else None) as client:
        decision = client.check(
            "health_services",  # or the table's label: "保健事業に必要な利用目的"
            "prevent",  # (株)PREVENT
            ["checkup_result"],
            activity="lifestyle_programme",
            subject="p-000123",  # a pseudonymous reference, never a name
        )
except flowgate.FlowgateError as error:  # not running, timeout, daemon_error (error.code), ...
    print(error, file=sys.stderr)
    sys.exit(2)
if not decision.allowed:
    print(f"deny: {decision.reason}")
    sys.exit(1)
print(f"allow by {decision.rule} (audit seq {decision.audit_seq})")
for obligation in decision.obligations:
    print(f"  obligation: {obligation}")
