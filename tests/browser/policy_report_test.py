"""`flowgate policy report` opened in a real browser.

Usage: policy_report_test.py FLOWGATE POLICY_DIR [--screenshot PNG]

The page must load with no console error and no network request, draw its charts and
matrices, and say what the command line says: the rule count and hash of `policy
check`, the vocabulary of `policy describe`, and for every matrix cell the answer of
`policy eval` for that request (with no context, and with the context the cell names).
Then a policy whose labels are markup is reported: the markup must show as text.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from page_check import check_page  # noqa: E402

READ_PAGE = r"""JSON.stringify({
  figures: Object.fromEntries([...document.querySelectorAll('[data-figure]')]
      .map(e => [e.dataset.figure, Number(e.textContent)])),
  hash: document.getElementById('policy-hash').textContent,
  files: [...document.querySelectorAll('#policy-files code')].map(e => e.textContent),
  bars: [...document.querySelectorAll('svg.chart rect.bar')].map(r => ({
      label: r.dataset.label, value: Number(r.dataset.value),
      width: r.getBBox().width})),
  cells: [...document.querySelectorAll('table.matrix td.cell')].map(c => ({...c.dataset,
      visible: c.getBoundingClientRect().width > 0})),
  forbids: document.querySelectorAll('tr.forbid').length,
  scripts: document.querySelectorAll('script').length,
  images: document.querySelectorAll('img').length,
  pwned: window.__pwned === undefined ? null : window.__pwned,
  text: document.body.innerText,
})"""

failures = []


def expect(condition, message):
    if not condition:
        failures.append(message)


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def report(flowgate, policy, out):
    done = run(flowgate, "policy", "report", policy, "-o", out)
    if done.returncode != 0:
        raise SystemExit("policy report failed: %s" % done.stderr)


def load(path, screenshot=None):
    page = check_page(path, READ_PAGE, screenshot=screenshot)
    expect(page["errors"] == [], "console errors: %s" % page["errors"])
    expect(page["requests"] == [], "network requests: %s" % page["requests"])
    return json.loads(page["value"])


def cell_cases(cells):
    """`policy test` cases saying what each cell claims the evaluator answers."""
    cases = []
    for cell in cells:
        where = "%(purpose)s/%(recipient)s/%(category)s (%(direction)s)" % cell

        def case(name, context, decision, rule=None):
            request = {"op": "check", "purpose": cell["purpose"], "recipient": cell["recipient"],
                       "data": [cell["category"]], "direction": cell["direction"],
                       "subject": "report-test", "context": context}
            entry = {"name": where + ": " + name, "request": request, "expect": decision}
            if rule:
                entry["rule"] = rule
            cases.append(entry)

        if cell["state"] == "allow":
            case("allow as asked", {}, "allow", cell["rule"])
        elif cell["state"] == "conditional":
            case("deny as asked", {}, "deny")
            context = ({"consent": True} if cell["context"] == "consent"
                       else {"legal_basis": cell["context"]})
            case("allow with " + cell["context"], context, "allow", cell["rule"])
        else:
            case("deny as asked", {}, "deny")
            case("deny with consent", {"consent": True}, "deny")
    return cases


def same_answers(flowgate, policy, workdir, cells):
    """Runs the cells' cases with `flowgate policy test` over a copy of the policy."""
    copy = os.path.join(workdir, "policy-copy")
    os.makedirs(os.path.join(copy, "tests"))
    for name in os.listdir(policy):
        if name.endswith(".policy"):
            shutil.copy(os.path.join(policy, name), copy)
    cases = cell_cases(cells)
    with open(os.path.join(copy, "tests", "cells.jsonl"), "w", encoding="utf-8") as out:
        for entry in cases:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
    done = run(flowgate, "policy", "test", copy)
    expect(done.returncode == 0, "matrix cells the evaluator answers otherwise:\n" + done.stdout)
    expect(("%d passed, 0 failed" % len(cases)) in done.stdout,
           "policy test ran every case: %s" % done.stdout[-200:])


def bundled_policy(flowgate, policy, workdir, screenshot):
    out = os.path.join(workdir, "policy.html")
    report(flowgate, policy, out)
    page = load(out, screenshot)

    check = run(flowgate, "policy", "check", policy).stdout
    match = re.search(r"ok, (\d+) rules, (sha256:[0-9a-f]+)", check)
    expect(match is not None, "policy check said: %s" % check)
    expect(page["figures"]["rules"] == int(match.group(1)),
           "rules: page %s, policy check %s" % (page["figures"]["rules"], match.group(1)))
    expect(page["hash"] == match.group(2), "hash: page %s, check %s" % (page["hash"],
                                                                       match.group(2)))
    files = sorted(f for f in os.listdir(policy) if f.endswith(".policy"))
    expect([os.path.basename(f) for f in page["files"]] == files,
           "files: page %s, directory %s" % (page["files"], files))

    described = json.loads(run(flowgate, "policy", "describe", "--policy", policy).stdout)
    for name, count in (("purposes", len(described["purposes"])),
                        ("activities", sum(len(p["activities"]) for p in described["purposes"])),
                        ("parties", len(described["parties"])),
                        ("categories", len(described["categories"]))):
        expect(page["figures"][name] == count,
               "%s: page %s, describe %s" % (name, page["figures"][name], count))
    expect(page["figures"]["forbids"] == page["forbids"] > 0, "forbid rules listed")

    bars = page["bars"]
    expect(len(bars) > 0 and all(b["width"] > 0 for b in bars), "charts drawn: %s" % bars[:3])
    kinds = {b["label"]: b["value"] for b in bars if "(" in b["label"]}
    expect(sum(kinds.values()) == page["figures"]["activities"],
           "activities per kind add up: %s" % kinds)

    cells = page["cells"]
    expect(len(cells) > 0 and all(c["visible"] for c in cells), "matrix cells drawn")
    states = {s: sum(c["state"] == s for c in cells) for s in ("allow", "conditional", "deny")}
    for state, count in states.items():
        expect(page["figures"]["cells-" + state] == count, "cells %s counted" % state)
        expect(count > 0, "the bundled policy has %s cells" % state)
    # Every cell is what the evaluator answers for its request.
    same_answers(flowgate, policy, workdir, cells)
    print("bundled policy: %d cells %s, %d bars" % (len(cells), states, len(bars)))


HOSTILE = """
category c_plain "<script>window.__pwned=1</script>" sensitivity ordinary;
party p_plain "<img src=x onerror=window.__pwned=2>" role contractor;
ground g_plain "</td></tr></table><b>ground</b>";
obligation o_plain "<iframe src=https://example.invalid/>";
purpose u_plain "<style>body{display:none}</style>&amp;" {
  activity a_plain "<a href=https://example.invalid/>link</a>" kind outsource
    to [p_plain] data [c_plain];
}
permit r_plain {
  purpose u_plain;
  activity a_plain;
  to p_plain;
  data c_plain;
  basis g_plain;
  oblige o_plain;
  because "'\\"><svg onload=window.__pwned=3>";
}
forbid f_plain {
  data c_plain;
  kind provide;
  because "<script>window.__pwned=4</script>";
}
"""


def hostile_labels(flowgate, workdir):
    policy = os.path.join(workdir, "hostile")
    os.mkdir(policy)
    with open(os.path.join(policy, "hostile.policy"), "w", encoding="utf-8") as out:
        out.write(HOSTILE)
    checked = run(flowgate, "policy", "check", policy)
    if checked.returncode != 0:
        raise SystemExit("the hostile policy does not load: %s" % checked.stderr)
    out = os.path.join(workdir, "hostile.html")
    report(flowgate, policy, out)
    page = load(out)
    expect(page["pwned"] is None, "a label ran as script: %s" % page["pwned"])
    expect(page["scripts"] == 0 and page["images"] == 0, "markup from labels became elements")
    for label in ("<script>window.__pwned=1</script>", "<img src=x onerror=window.__pwned=2>",
                  "</td></tr></table><b>ground</b>", "<style>body{display:none}</style>&amp;",
                  "<script>window.__pwned=4</script>"):
        expect(label in page["text"], "label %r shows as text" % label)
    expect(len(page["cells"]) == 1 and page["cells"][0]["state"] == "allow",
           "the hostile policy's one cell: %s" % page["cells"])
    print("hostile labels: shown as text")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("flowgate")
    parser.add_argument("policy")
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowgate-report-") as workdir:
        bundled_policy(args.flowgate, args.policy, workdir, args.screenshot)
        hostile_labels(args.flowgate, workdir)
    for failure in failures:
        print("FAILED:", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
