#!/usr/bin/env python3
# Ask flowgated whether a transfer is allowed, with nothing but the standard library.
# Usage: check.py [SOCKET]  (default: $FLOWGATE_SOCKET, else the system's socket)
# Exit status as `flowgate check`: 0 allow, 1 deny, 2 error.
import json, os, socket, sys

default = os.environ.get("FLOWGATE_SOCKET", "/run/flowgate/flowgate.sock")
path = sys.argv[1] if len(sys.argv) > 1 else default
request = {"op": "check", "id": 1, "purpose": "health_services",
           "activity": "lifestyle_programme", "recipient": "prevent",
           "data": ["checkup_result"], "subject": "p-000123"}
try:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(path)
        conn.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(conn.makefile("rb").readline())
except (OSError, ValueError) as e:  # not running, timeout, closed
    print(f"flowgated at {path}: {e}", file=sys.stderr)
    sys.exit(2)
if "error" in answer:
    print(answer["error"]["code"], answer["error"]["message"], file=sys.stderr)
    sys.exit(2)
print(answer["decision"], answer.get("rule", {}).get("id", ""), answer["reason"])
sys.exit(0 if answer["decision"] == "allow" else 1)
