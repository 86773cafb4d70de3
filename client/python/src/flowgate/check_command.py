"""``flowgate-check``: ``flowgate check`` for machines where only Python is installed, for
shell gates. The same flags, the same request, the same output and the same exit status:
0 allow, 1 deny, 2 error (the daemon down or slow, a request it refused, a usage error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from flowgate import wire
from flowgate.client import Client
from flowgate.errors import FlowgateError

EXIT_ALLOW = 0
EXIT_DENY = 1
EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage errors: exit 2, as flowgate's
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="flowgate-check",
        description="Ask flowgated whether a data flow is allowed (exit 0 allow, 1 deny, 2 error)",
    )
    p.add_argument("--socket", default=wire.default_socket_path(),
                   help="flowgated's socket (or FLOWGATE_SOCKET)")
    p.add_argument("--timeout-ms", type=int, default=5000, help="How long to wait for an answer")
    p.add_argument("--request", help="The whole request as JSON")
    p.add_argument("--purpose", default="", help="Purpose: identifier or the table's label")
    p.add_argument("--activity", default="", help="Activity (optional)")
    p.add_argument("--to", "--recipient", dest="recipient", default="",
                   help="Recipient (the sender with --receive)")
    p.add_argument("--data", nargs="+", action="extend", default=[],
                   help="Data categories (several, or comma-separated)")
    p.add_argument("--subject", default="", help="Pseudonymous reference to the person")
    p.add_argument("--legal-basis", default="", help="Legal ground relied on")
    p.add_argument("--consent", action="store_true", help="Consent is on record")
    p.add_argument("--objection", action="store_true", help="An objection is on file")
    p.add_argument("--receive", action="store_true", help="An inbound flow")
    p.add_argument("--json", action="store_true", help="Print the daemon's JSON answer")
    return p


def build_request(options: argparse.Namespace) -> dict[str, Any] | None:
    """The request `flowgate check` sends for the same flags; None (said why) if none."""
    if options.request is not None:
        try:
            request = json.loads(options.request)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            print("flowgate: --request is not a JSON object", file=sys.stderr)
            return None
        request["op"] = "check"
        return request
    data = [name for item in options.data for name in item.split(",")]
    if not options.purpose or not options.recipient or not data:
        print("flowgate: give --purpose, --to and --data (or --request JSON)", file=sys.stderr)
        return None
    context: dict[str, Any] = {"consent": options.consent, "objection": options.objection}
    if options.legal_basis:
        context["legal_basis"] = options.legal_basis
    return wire.check_request(
        options.purpose,
        options.recipient,
        data,
        activity=options.activity or None,
        subject=options.subject or None,
        direction="receive" if options.receive else "send",
        context=context,
    )


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return serialize(value)


def serialize(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def describe_rule(rule: Any) -> str:
    """"kenpo.policy:118 r3_j (table row 3, case j)"."""
    if not isinstance(rule, dict):
        return ""
    out = text_of(rule.get("file"))
    if "line" in rule:
        out += ":" + text_of(rule["line"])
    out += " " + text_of(rule.get("id"))
    table = rule.get("table")
    if isinstance(table, dict):
        out += f" (table row {text_of(table.get('row'))}, case {text_of(table.get('case'))})"
    return out


def label_list(items: Any) -> str:
    if not isinstance(items, list):
        return ""
    shown = []
    for item in items:
        if isinstance(item, dict):
            label = text_of(item.get("label"))
            shown.append(text_of(item.get("id")) + (f" ({label})" if label else ""))
        else:
            shown.append(text_of(item))
    return ", ".join(shown)


def print_decision(answer: dict[str, Any]) -> None:
    print(f"{text_of(answer.get('decision'))}: {text_of(answer.get('reason'))}")
    rule = describe_rule(answer.get("rule"))
    if rule:
        print(f"  rule:        {rule}")
    basis = answer.get("legal_basis")
    if isinstance(basis, dict):
        print(f"  legal basis: {text_of(basis.get('id'))} ({text_of(basis.get('label'))})")
    obligations = label_list(answer.get("obligations"))
    if obligations:
        print(f"  obligations: {obligations}")
    print(f"  policy:      {text_of(answer.get('policy'))}")
    if "audit_seq" in answer:
        print(f"  audit seq:   {text_of(answer['audit_seq'])}")
    # What a deny says would do instead: names in place of the one that failed, and the
    # context that would allow.
    suggestions = answer.get("suggestions")
    if isinstance(suggestions, list) and suggestions:
        first = suggestions[0]
        field = text_of(first.get("field")) if isinstance(first, dict) else ""
        print(f"  suggestions: {field}: {label_list(suggestions)}")
    context = answer.get("satisfying_context")
    if isinstance(context, dict):
        changes = ", ".join(
            f"{key}: {'none' if value is None else text_of(value)}"
            for key, value in context.items()
        )
        print(f"  allowed with context: {changes}")


def run(arguments: Sequence[str] | None = None) -> int:
    options = parser().parse_args(arguments)
    request = build_request(options)
    if request is None:
        return EXIT_ERROR
    try:
        with Client.connect(options.socket, timeout=options.timeout_ms / 1000) as client:
            answer = client.request(request)
    except FlowgateError as failure:
        # Not the daemon's answer: on stderr, and with --json as {"error":…} on stdout
        # too, so a script reads one shape whoever failed.
        print(f"flowgate: {failure.message}", file=sys.stderr)
        if options.json:
            print(serialize({"error": {"code": failure.kind, "message": failure.message}}))
        return EXIT_ERROR
    if "error" in answer:
        error = answer["error"]
        if options.json:
            print(serialize(answer))
        elif isinstance(error, dict):
            print(f"flowgate: {text_of(error.get('code'))}: {text_of(error.get('message'))}",
                  file=sys.stderr)
        else:
            print(f"flowgate: {serialize(answer)}", file=sys.stderr)
        return EXIT_ERROR
    if options.json:
        print(serialize(answer))
    else:
        print_decision(answer)
    return EXIT_ALLOW if answer.get("decision") == "allow" else EXIT_DENY


def main() -> int:
    try:
        status = run()
        sys.stdout.flush()
    except BrokenPipeError:  # a reader that went away (| head): the status still counts
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = EXIT_ERROR
    return status


if __name__ == "__main__":
    sys.exit(main())
