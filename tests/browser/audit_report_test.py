"""`flowgate audit report` on a store the real daemon wrote, opened in a real browser.

Usage: audit_report_test.py FLOWGATE FLOWGATED POLICY_DIR [--screenshot PNG]

flowgated runs on four days (its clock set by libfaketime, Debian's faketime package,
one start per day; the third day has no decision), signing its checkpoints, and answers
checks, explains, refused lines, reloads (a good one, one that changes the policy, a bad
one) and a reload from a caller who is not an admin. Then the report is written for the
whole log and for part of it, and every figure, bar and table row in the page must equal
what `flowgate audit export --all`, `audit records` and `audit verify` say over the same
period; the page must load with no console error and no network request, draw its
charts, and show markup typed by a caller as text. A copy of the store with a row cut out
must be reported as one that does not verify.
"""

import argparse
import collections
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from page_check import check_page  # noqa: E402

READ_PAGE = r"""JSON.stringify({
  figures: Object.fromEntries([...document.querySelectorAll('[data-figure]')]
      .map(e => [e.dataset.figure, Number(e.textContent)])),
  verdict: {...document.getElementById('verification').dataset},
  verdictText: document.getElementById('verification').innerText,
  bars: [...document.querySelectorAll('svg.chart rect.bar')].map(r => ({
      chart: r.closest('svg').id, series: r.dataset.series, key: r.dataset.key,
      value: Number(r.dataset.value), width: r.getBBox().width, height: r.getBBox().height})),
  charts: [...document.querySelectorAll('svg.chart')].map(s => s.id),
  events: [...document.querySelectorAll('#policy-events tr.event')].map(r => ({...r.dataset})),
  policies: [...document.querySelectorAll('#policies-used tr[data-hash]')].map(r => ({...r.dataset})),
  callers: [...document.querySelectorAll('#callers-table tr.caller')].map(r => ({...r.dataset})),
  provisions: [...document.querySelectorAll('#provisions tr[data-recipient]')].map(r => ({...r.dataset})),
  scripts: document.querySelectorAll('script').length,
  images: document.querySelectorAll('img').length,
  pwned: window.__pwned === undefined ? null : window.__pwned,
  text: document.body.innerText,
})"""

HOSTILE_RECIPIENT = "<img src=x onerror=window.__pwned=1>"
DECISION_KINDS = ("check", "explain")
EVENT_KINDS = ("load", "reload", "reload_failed", "admin_refused", "start", "stop", "init")
OTHER_UID = 65534  # a caller who is not an admin ("claims")
UNNAMED_UID = 1    # a caller the configuration does not name

failures = []


def expect(condition, message):
    if not condition:
        failures.append(message)


def run(*args, check=True):
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise SystemExit("%s failed (%d): %s%s" % (" ".join(args[:3]), done.returncode,
                                                  done.stdout, done.stderr))
    return done


def faketime_library():
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        raise SystemExit("libfaketime is missing (scripts/install-deps.sh installs faketime)")
    return found[0]


ASK = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
lines = sys.stdin.buffer.read()
s.sendall(lines)
f = s.makefile("rb")
for _ in range(lines.count(b"\n")):
    sys.stdout.buffer.write(f.readline())
"""


class Rig:
    """flowgated in a directory others can reach, started once per day of a fake clock."""

    def __init__(self, flowgate, flowgated, policy, root):
        self.flowgate, self.flowgated, self.root = flowgate, flowgated, root
        self.socket = os.path.join(root, "flowgated.sock")
        self.db = os.path.join(root, "audit.db")
        self.policy = os.path.join(root, "policy")
        self.config = os.path.join(root, "flowgated.toml")
        self.log = os.path.join(root, "flowgated.log")
        self.faketime = faketime_library()
        self.process = None
        os.chmod(root, 0o755)
        os.mkdir(self.policy)
        for name in os.listdir(policy):
            if name.endswith(".policy"):
                shutil.copy(os.path.join(policy, name), self.policy)
        key = os.path.join(root, "signing.key")
        self.vkey = run(flowgate, "audit", "keygen", "report-test.flowgate.example/flowgate",
                        "-o", key).stdout.strip()
        text = ("socket = %s\npolicy = %s\naudit_db = %s\nsigning_key = %s\n"
                'durability = "full"\nsocket_mode = "0666"\nlog_level = "info"\n\n[limits]\n'
                % tuple(json.dumps(p) for p in (self.socket, self.policy, self.db, key)))
        text += '\n[[service]]\nuid = %d\nname = "privacy-office"\nadmin = true\n' % os.getuid()
        if os.getuid() == 0:
            text += '\n[[service]]\nuid = %d\nname = "claims"\nadmin = false\n' % OTHER_UID
        with open(self.config, "w") as out:
            out.write(text)
        self.daemon("2026-11-01 08:00:00", ["--init-store"]).wait(timeout=30)

    def daemon(self, when, extra=()):
        env = dict(os.environ, LD_PRELOAD=self.faketime, FAKETIME="@" + when,
                   FAKETIME_DONT_FAKE_MONOTONIC="1")
        # A sanitizer build (scripts/test.sh's second pass) would refuse to start with
        # libfaketime loaded before its runtime; the clock is all that library changes.
        env["ASAN_OPTIONS"] = ":".join(
            part for part in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if part)
        with open(self.log, "ab") as log:
            return subprocess.Popen([self.flowgated, "--config", self.config, *extra],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)

    def start(self, when):
        self.process = self.daemon(when)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("flowgated exited:\n" + open(self.log).read())
            try:
                self.ask([{"op": "status", "id": 0}])
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("flowgated did not answer:\n" + open(self.log).read())

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.process = None

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def ask(self, requests, uid=None):
        """The answers to `requests` (objects, or raw lines as str), sent by `uid`."""
        lines = b"".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
                         .encode() + b"\n" for r in requests)
        if uid is None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(self.socket)
                s.sendall(lines)
                reader = s.makefile("rb")
                return [json.loads(reader.readline()) for _ in requests]
        done = subprocess.run([sys.executable, "-c", ASK, self.socket], input=lines,
                              capture_output=True, user=uid, timeout=30)
        if done.returncode != 0:
            raise SystemExit("a client as uid %d failed: %s" % (uid, done.stderr))
        return [json.loads(line) for line in done.stdout.splitlines()]

    def reload(self, uid=None):
        return self.ask([{"op": "reload", "id": "r"}], uid)[0]


def check(purpose, recipient, data, subject, activity=None, context=None, op="check"):
    request = {"op": op, "id": subject, "purpose": purpose, "recipient": recipient,
               "data": data, "subject": subject, "context": context or {}}
    if activity:
        request["activity"] = activity
    return request


def day_one(rig):
    rig.start("2026-11-01 09:00:00")
    answers = rig.ask([
        check("health_services", "hu_wellness", ["status"], "p-000201", "sports_promotion"),
        check("health_services", "hu_wellness", ["status"], "p-000202", "sports_promotion"),
        check("health_services", "employer", ["checkup_result"], "p-000301", "collabo_health",
              {"consent": True}),
        check("health_services", "employer", ["checkup_result"], "p-000302", "collabo_health",
              {"consent": True}),
        check("health_services", "employer", ["checkup_result"], "p-000301", "collabo_health",
              {"consent": True}),
        check("health_services", "employer", ["checkup_result"], "p-000303", "collabo_health"),
        check("insurance_benefits", "other_agencies",
              ["specific_status", "specific_dependant", "specific_benefit"], "p-000304",
              "information_linkage"),
        check("insurance_benefits", "nonlife_insurers", ["status", "benefit", "medical_claim"],
              "p-000305", "subrogation_claim", {"legal_basis": "appi_27_1_1"}),
        check("health_services", "hu_wellness", ["status"], "p-000203", "sports_promotion",
              op="explain"),
        check("premium_collection", "prevent", ["status"], "p-000306"),
        "this is not json",
        '{"op":"check"}',
    ])
    expect([a.get("decision") for a in answers[:10]] ==
           ["allow"] * 5 + ["deny", "allow", "allow", "allow", "deny"],
           "day one's decisions: %s" % answers)
    if os.getuid() == 0:
        rig.ask([check("health_services", "employer", ["checkup_result"], "p-000307",
                       "collabo_health"),
                 check("health_services", "hu_wellness", ["status"], "p-000308",
                       "sports_promotion")], uid=OTHER_UID)
        expect(rig.reload(OTHER_UID).get("error", {}).get("code") == "forbidden",
               "a reload by a caller who is not an admin is refused")
    expect("policy" in rig.reload(), "a reload of the same policy succeeds")
    broken = os.path.join(rig.policy, "zz-broken.policy")
    with open(broken, "w") as out:
        out.write("permit broken {\n")
    expect("error" in rig.reload(), "a broken policy's reload fails")
    os.remove(broken)
    rig.stop()


def day_two(rig):
    rig.start("2026-11-02 10:00:00")
    with open(os.path.join(rig.policy, "zz-note.policy"), "w") as out:
        out.write("// reviewed 2026-11-02\n")
    expect("policy" in rig.reload(), "a reload of a changed policy succeeds")
    answers = rig.ask([
        check("health_services", "employer", ["checkup_result"], "p-000401", "collabo_health",
              {"consent": True}),
        check("health_services", "（株）ＰＲＥＶＥＮＴ", ["健診結果"], "p-000402",
              "生活習慣改善 プログラムの実施"),
        check("health_services", HOSTILE_RECIPIENT, ["status"], "<script>1</script>"),
        check("insurance_benefits", "society",
              ["individual_number", "specific_status", "specific_dependant", "specific_benefit"],
              "p-000403", "mynumber_affairs"),
    ])
    expect([a.get("decision") for a in answers] == ["allow", "allow", "deny", "allow"],
           "day two's decisions: %s" % answers)
    rig.stop()


def day_four(rig):
    rig.start("2026-11-04 11:00:00")
    rig.ask([check("health_services", "employer", ["checkup_result"], "p-000501",
                   "collabo_health", {"consent": True}),
             check("health_services", "state", ["checkup_result"], "p-000502",
                   "specific_checkup_report"),
             "[1, 2"])
    if os.getuid() == 0:
        rig.ask([check("health_services", "hu_wellness", ["status"], "p-000503",
                       "sports_promotion")], uid=UNNAMED_UID)
    rig.stop()


def sensitivities(flowgate, policy):
    described = json.loads(run(flowgate, "policy", "describe", "--policy", policy).stdout)
    return {c["id"]: c["sensitivity"] for c in described["categories"]}


def expected_from_commands(flowgate, db, period, sensitivity):
    """What export --all and records say of the period, in the page's terms."""
    rows = [json.loads(line) for line in
            run(flowgate, "audit", "export", db, "--all", "--format", "jsonl", *period)
            .stdout.splitlines()]
    records = [json.loads(line) for line in
               run(flowgate, "audit", "records", db, "--format", "jsonl", *period)
               .stdout.splitlines()]
    decisions = [r for r in rows if r["kind"] in DECISION_KINDS]
    figures = {
        "rows": len(rows),
        "decisions": len(decisions),
        "allowed": sum(r["decision"] == "allow" for r in decisions),
        "denied": sum(r["decision"] == "deny" for r in decisions),
        "refused": sum(r["kind"] == "refused" for r in rows),
        "audit-unavailable": sum(r["reason"] == "audit_unavailable" for r in rows),
        "provision-records": len(records),
        "policy-events": sum(r["kind"] in EVENT_KINDS for r in rows),
    }
    bars = collections.Counter()
    for r in decisions:
        series = "allowed" if r["decision"] == "allow" else "denied"
        bars[("chart-per-day", r["time"][:10], series)] += 1
        bars[("chart-by-purpose", r["purpose"], series)] += 1
        bars[("chart-by-recipient", r["recipient"], series)] += 1
        if series == "denied":
            bars[("chart-deny-reasons", r["reason"], "denied")] += 1
        elif r["direction"] == "send":
            levels = {sensitivity.get(c) for c in json.loads(r["data"])}
            for level, name in (("special_care", "special-care"), ("specific", "specific")):
                if level in levels:
                    bars[("chart-sensitive", r["recipient"], name)] += 1
    callers = collections.defaultdict(collections.Counter)
    for r in rows:
        who = (str(r["uid"]), r["service"])
        if r["kind"] in DECISION_KINDS:
            callers[who]["allowed" if r["decision"] == "allow" else "denied"] += 1
        elif r["kind"] == "refused":
            callers[who]["refused"] += 1
            bars[("chart-deny-reasons", r["reason"].split(":")[0], "refused")] += 1
        elif r["kind"] == "admin_refused":
            callers[who]["admin-refused"] += 1
    for (uid, service), counts in callers.items():
        for series in ("allowed", "denied", "refused"):
            if counts[series]:
                bars[("chart-callers", uid + "/" + service, series)] += counts[series]
    provisions = collections.defaultdict(lambda: [0, set()])
    for record in records:
        provisions[record["recipient"]][0] += 1
        provisions[record["recipient"]][1].add(record["subject"])
        bars[("chart-provisions", record["recipient"], "records")] += 1
    figures["callers"] = len(callers)
    return {
        "rows": rows,
        "figures": figures,
        "bars": dict(bars),
        "events": [{"seq": str(r["seq"]), "kind": r["kind"], "hash": r["policy_hash"],
                    "uid": str(r["uid"]), "service": r["service"]}
                   for r in rows if r["kind"] in EVENT_KINDS],
        "policies": dict(collections.Counter(r["policy_hash"] for r in decisions)),
        "callers": {who: {k: counts[k] for k in ("allowed", "denied", "refused", "admin-refused")}
                    for who, counts in callers.items()},
        "provisions": {k: (v[0], len(v[1])) for k, v in provisions.items()},
    }


def report(flowgate, db, out, *arguments, status=0):
    done = run(flowgate, "audit", "report", db, "-o", out, *arguments, check=False)
    expect(done.returncode == status, "audit report %s: exit %d, wanted %d: %s" %
           (" ".join(arguments), done.returncode, status, done.stderr))
    return done.stdout


def load(path, screenshot=None):
    page = check_page(path, READ_PAGE, screenshot=screenshot)
    expect(page["errors"] == [], "console errors: %s" % page["errors"])
    expect(page["requests"] == [], "network requests: %s" % page["requests"])
    return json.loads(page["value"])


def compare(name, page, wanted, printed):
    for key, value in wanted["figures"].items():
        expect(page["figures"].get(key) == value,
               "%s: figure %s: page %s, commands %s" % (name, key, page["figures"].get(key),
                                                        value))
    line = re.search(r"(\d+) rows in the period: (\d+) decisions \((\d+) allowed, (\d+) denied\), "
                     r"(\d+) refused, (\d+) audit_unavailable; (\d+) third-party", printed)
    expect(line is not None, "%s: the command printed %r" % (name, printed))
    if line:
        said = [int(n) for n in line.groups()]
        shown = [page["figures"][k] for k in ("rows", "decisions", "allowed", "denied",
                                              "refused", "audit-unavailable",
                                              "provision-records")]
        expect(said == shown, "%s: printed %s, page %s" % (name, said, shown))
    drawn = {(b["chart"], b["key"], b["series"]): b["value"] for b in page["bars"]}
    expect(drawn == wanted["bars"], "%s: bars differ:\n page only %s\n commands only %s" % (
        name, sorted(set(drawn.items()) - set(wanted["bars"].items())),
        sorted(set(wanted["bars"].items()) - set(drawn.items()))))
    expect(all(b["width"] > 0 and b["height"] > 0 for b in page["bars"]),
           "%s: every bar is drawn with a size" % name)
    expect(page["events"] == wanted["events"], "%s: policy events: page %s, export %s" % (
        name, page["events"], wanted["events"]))
    expect({p["hash"]: int(p["decisions"]) for p in page["policies"]} == wanted["policies"],
           "%s: policies in force: %s, export %s" % (name, page["policies"], wanted["policies"]))
    callers = {(c["uid"], c["service"]): {k: int(c[k]) for k in
                                          ("allowed", "denied", "refused", "adminRefused")}
               for c in page["callers"]}
    wanted_callers = {who: {("adminRefused" if k == "admin-refused" else k): v
                            for k, v in counts.items()}
                      for who, counts in wanted["callers"].items()}
    expect(callers == wanted_callers, "%s: callers: page %s, export %s" % (name, callers,
                                                                          wanted_callers))
    provisions = {p["recipient"]: (int(p["records"]), int(p["persons"]))
                  for p in page["provisions"]}
    expect(provisions == wanted["provisions"], "%s: provisions: page %s, records %s" % (
        name, provisions, wanted["provisions"]))


def whole_log(rig, workdir, sensitivity, screenshot):
    out = os.path.join(workdir, "audit.html")
    printed = report(rig.flowgate, rig.db, out, "--key", rig.vkey)
    page = load(out, screenshot)
    wanted = expected_from_commands(rig.flowgate, rig.db, [], sensitivity)
    compare("whole log", page, wanted, printed)

    verified = run(rig.flowgate, "audit", "verify", "--key", rig.vkey, rig.db).stdout
    chain = re.search(r"ok, (\d+) rows chain from seq 1 to seq (\d+)", verified)
    tree = re.search(r"tree ok, (\d+) stored nodes and (\d+) stored checkpoints match its rows, "
                     r"each signed by (\S+);", verified)
    expect(chain and tree, "verify said: %s" % verified)
    verdict = page["verdict"]
    if chain and tree:
        expect(verdict["verdict"] == "ok", "the verdict: %s" % verdict)
        expect([verdict["rows"], verdict["lastSeq"]] == [chain.group(1), chain.group(2)],
               "rows verified: page %s, verify %s" % (verdict, chain.groups()))
        expect([verdict["treeNodes"], verdict["checkpoints"], verdict["key"]] ==
               list(tree.groups()), "tree: page %s, verify %s" % (verdict, tree.groups()))
        expect(int(tree.group(2)) > 0, "the daemon stored signed checkpoints")
        expect("each signed by " + tree.group(3) in page["verdictText"],
               "the verdict names the key: %s" % page["verdictText"])
    expect(int(verdict["rows"]) == wanted["figures"]["rows"], "the whole log is the period")

    # What the scenario made is there: four days, the third empty; every kind of event.
    days = sorted({b["key"] for b in page["bars"] if b["chart"] == "chart-per-day"})
    expect(days == ["2026-11-01", "2026-11-02", "2026-11-04"], "days with decisions: %s" % days)
    expect("2026-11-03" in page["text"], "the quiet day has its place on the axis")
    kinds = {e["kind"] for e in page["events"]}
    want_kinds = {"init", "start", "load", "reload", "reload_failed", "stop"}
    if os.getuid() == 0:
        want_kinds.add("admin_refused")
    expect(want_kinds <= kinds, "policy events shown: %s" % kinds)
    expect(len(page["policies"]) == 2, "two policies decided: %s" % page["policies"])
    expect(wanted["figures"]["provision-records"] >= 4 and page["figures"]["refused"] == 3,
           "the scenario's records and refusals")
    special = {k for (c, k, s) in wanted["bars"] if c == "chart-sensitive" and s == "specific"}
    expect({"other_agencies", "society"} <= special, "specific data sent: %s" % special)
    if os.getuid() == 0:
        marked = {(c["uid"], c["service"]) for c in page["callers"] if c["standsOut"] == "yes"}
        expect((str(OTHER_UID), "claims") in marked and (str(UNNAMED_UID), "uid:%d" %
                                                         UNNAMED_UID) in marked,
               "the misconfigured callers stand out: %s" % marked)
    # A caller's markup is text in the page.
    expect(page["pwned"] is None and page["scripts"] == 0 and page["images"] == 0,
           "markup from the log became elements")
    # (cut short in the chart's label; whole in its data-key, compared above)
    expect(HOSTILE_RECIPIENT[:20] in page["text"], "the typed recipient shows as text")
    print("whole log: %s; %d bars" % (page["figures"], len(page["bars"])))


def part_of_log(rig, workdir, sensitivity):
    period = ["--since", "2026-11-02", "--until", "2026-11-04T11:00:01Z"]
    out = os.path.join(workdir, "period.html")
    printed = report(rig.flowgate, rig.db, out, *period)
    page = load(out)
    wanted = expected_from_commands(rig.flowgate, rig.db, period, sensitivity)
    compare("period", page, wanted, printed)
    expect(0 < page["figures"]["rows"] < int(page["verdict"]["rows"]),
           "the period is part of the log: %s" % page["figures"])
    expect("no --key was given" in page["verdictText"] and "no --key was given" in printed,
           "without --key the report says the signatures were not checked")
    expect(not any(b["key"] == "2026-11-01" for b in page["bars"]), "day one is outside")
    print("period: %s" % page["figures"])


def cut_log(rig, workdir):
    copy = os.path.join(workdir, "cut.db")
    subprocess.run(["sqlite3", rig.db, ".backup " + copy], check=True)
    triggers = subprocess.run(["sqlite3", copy, "SELECT name FROM sqlite_master WHERE type = "
                               "'trigger'"], capture_output=True, text=True, check=True).stdout
    script = "".join('DROP TRIGGER "%s";\n' % t for t in triggers.split())
    subprocess.run(["sqlite3", copy], input=script + "DELETE FROM audit_log WHERE seq = 5;\n",
                   text=True, check=True)
    out = os.path.join(workdir, "cut.html")
    printed = report(rig.flowgate, copy, out, "--key", rig.vkey, status=1)
    page = load(out)
    expect(page["verdict"]["verdict"] == "failed"
           and "The log does NOT verify: at seq 5" in page["verdictText"]
           and "The log does NOT verify: at seq 5" in printed,
           "a cut log: %s / %s" % (page["verdictText"], printed))
    print("cut log: %s" % page["verdictText"].splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("flowgate")
    parser.add_argument("flowgated")
    parser.add_argument("policy")
    parser.add_argument("--screenshot")
    args = parser.parse_args()
    if os.getuid() != 0:
        print("warning: not root: the callers of other uids are left out")
    workdir = tempfile.mkdtemp(prefix="flowgate-audit-report-")
    rig = Rig(args.flowgate, args.flowgated, args.policy, workdir)
    try:
        day_one(rig)
        day_two(rig)
        day_four(rig)
        sensitivity = sensitivities(args.flowgate, args.policy)
        whole_log(rig, workdir, sensitivity, args.screenshot)
        part_of_log(rig, workdir, sensitivity)
        cut_log(rig, workdir)
    finally:
        rig.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    for failure in failures:
        print("FAILED:", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
