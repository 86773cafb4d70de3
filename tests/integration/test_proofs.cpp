// Proofs against the real daemon's log: a daemon signing its checkpoints with a key made
// by `flowgate audit keygen` answers decisions through the client; then, on the file
// alone, `flowgate audit prove`, `consistency` and `records --proofs` write documents
// that `flowgate audit verify-proof` and an independent verifier in Python
// (tests/unit/audit/proof_check.py, and the short one docs/audit-store.md gives
// auditors) accept, and refuse once altered; and `verify --key` and `verify
// --checkpoint` catch a store truncated, or altered with its chain recomputed, that the
// chain alone lets through.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

std::string python3() {
    return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

json::object consent_provision(const std::string& subject) {
    json::object request = check_request("health_services", "employer", {"checkup_result"});
    request["activity"] = "collabo_health";
    request["subject"] = subject;
    request["context"] = json::object{{"consent", true}};
    return request;
}

// A daemon that signed its log's checkpoints, stopped: its directory holds the store,
// the private key, the verifier key (vkey) and the journal's checkpoint lines (kept.txt).
struct SignedLog {
    Daemon daemon;
    fs::path vkey;
    std::string verifier;
    std::vector<std::int64_t> provisions; // p-1's consent provisions

    SignedLog() {
        const fs::path key = daemon.dir() / "signing.key";
        const CommandResult made =
            run_flowgate(daemon.dir(), {"audit", "keygen", "test.example/flowgate", "-o", key});
        REQUIRE(made.status == 0);
        verifier = made.out.substr(0, made.out.find('\n'));
        vkey = daemon.dir() / "vkey";
        write_file(vkey, made.out);
        Launch launch;
        launch.extra_arguments = {"--signing-key", key.string()};
        REQUIRE(daemon.start(launch));
        flowgate::client::Client client = daemon.connect();
        auto decide = [&client](const json::object& request) {
            auto answer = client.request(request);
            REQUIRE(answer);
            return answer.value->at("audit_seq").as_int64();
        };
        for (int round = 0; round < 2; ++round) {
            provisions.push_back(decide(consent_provision("p-1")));
            decide(consent_provision("p-2"));
            decide(allowed_check());
            decide(denied_check());
            // A checkpoint of the rows so far at least once a second while it writes.
            std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        }
        provisions.push_back(decide(consent_provision("p-1")));
        daemon.signal(SIGTERM);
        REQUIRE(daemon.wait_exit() == 0);
        std::string kept;
        std::istringstream lines(daemon.log());
        for (std::string line; std::getline(lines, line);) {
            if (line.find("audit checkpoint:") != std::string::npos) {
                kept += line + "\n";
            }
        }
        REQUIRE_FALSE(kept.empty());
        write_file(daemon.dir() / "kept.txt", kept);
    }

    CommandResult flowgate(const std::vector<std::string>& arguments) const {
        return run_flowgate(daemon.dir(), arguments);
    }
    std::int64_t rows() const {
        return sqlite_rows(daemon.db(), "SELECT MAX(seq) AS n FROM audit_log")[0]
            .as_object()
            .at("n")
            .as_int64();
    }
    // Each file checked by a Python verifier: its output.
    CommandResult python(const std::string& script, const std::vector<fs::path>& files) const {
        std::string line = python3() + " " + shell_quoted(script) + " " + shell_quoted(vkey);
        for (const fs::path& file : files) {
            line += " " + shell_quoted(file.string());
        }
        return run_command(daemon.dir(), line);
    }
    // The short verifier of docs/audit-store.md, as it is there.
    std::string doc_checker() const {
        std::ifstream doc(FLOWGATE_SOURCE_DIR "/docs/audit-store.md");
        std::string line, script;
        while (std::getline(doc, line) && line != "### Checking a proof without flowgate") {
        }
        while (std::getline(doc, line) && line != "```python") {
        }
        while (std::getline(doc, line) && line != "```") {
            script += line + "\n";
        }
        const fs::path path = daemon.dir() / "doc_check.py";
        write_file(path, script);
        return path.string();
    }
};

const std::string proof_check = FLOWGATE_SOURCE_DIR "/tests/unit/audit/proof_check.py";

std::string flipped_base64_hash(const json::value& value) {
    // Flipping a bit of a base64 hash's first character changes its first byte.
    std::string text(value.as_string());
    text[0] = text[0] == 'A' ? 'B' : 'A';
    return text;
}

} // namespace

TEST_CASE("proofs: every decision of a signed log is proved by `audit prove`, checked by "
          "verify-proof and by Python, and an altered proof fails",
          "[integration][audit][proof]") {
    SignedLog log;
    const std::int64_t rows = log.rows();
    std::vector<fs::path> proofs;
    for (std::int64_t seq = 1; seq <= rows; ++seq) {
        const CommandResult proved =
            log.flowgate({"audit", "prove", std::to_string(seq), log.daemon.db()});
        INFO(proved.err);
        REQUIRE(proved.status == 0);
        proofs.push_back(log.daemon.dir() / ("proof-" + std::to_string(seq) + ".json"));
        write_file(proofs.back(), proved.out);
        const CommandResult checked =
            log.flowgate({"audit", "verify-proof", proofs.back(), "--key", log.vkey});
        INFO(checked.out << checked.err);
        CHECK(checked.status == 0);
        CHECK_THAT(checked.out,
                   Catch::Contains(": valid: seq " + std::to_string(seq) + " is in the log "));
    }
    const CommandResult independent = log.python(proof_check, proofs);
    INFO(independent.out << independent.err);
    CHECK(independent.status == 0);
    CHECK(std::count(independent.out.begin(), independent.out.end(), '\n') == rows);
    const CommandResult brief = log.python(log.doc_checker(), {proofs[2]});
    INFO(brief.out << brief.err);
    CHECK(brief.status == 0);
    CHECK_THAT(brief.out, Catch::StartsWith("ok: seq 3 is in "));

    SECTION("from the standard input, and with the key given as its text") {
        const CommandResult checked =
            run_command(log.daemon.dir(),
                        "(" + shell_quoted(FLOWGATE_PATH) + " audit verify-proof - --key " +
                            shell_quoted(log.verifier) + " < " + shell_quoted(proofs[0]) + ")");
        INFO(checked.err);
        CHECK(checked.status == 0);
        CHECK_THAT(checked.out, Catch::StartsWith("-: valid: seq 1 is in the log "));
    }
    SECTION("altered copies fail verify-proof (exit 1, naming the check) and Python") {
        const json::object good = json::parse(read_text(proofs[rows - 3])).as_object();
        REQUIRE_FALSE(good.at("inclusion_path").as_array().empty());
        struct Case {
            const char* what;
            std::function<void(json::object&)> change;
            const char* reason;
        };
        const std::string note(good.at("checkpoint").as_string());
        const std::vector<Case> cases = {
            {"a path element",
             [](json::object& d) {
                 json::value& element = d["inclusion_path"].as_array()[0];
                 element = flipped_base64_hash(element);
             },
             "the inclusion path does not lead from the leaf to the checkpoint's root"},
            {"the size", [](json::object& d) { d["tree_size"] = d["tree_size"].as_int64() + 1; },
             "tree_size"},
            {"the root",
             [&note](json::object& d) {
                 const std::size_t root = note.find('\n', note.find('\n') + 1) + 1;
                 std::string altered = note;
                 altered[root] = altered[root] == 'A' ? 'B' : 'A';
                 d["checkpoint"] = altered;
             },
             "checkpoint: the signature by test.example/flowgate+"},
            {"the signature",
             [&note](json::object& d) {
                 std::string altered = note;
                 const std::size_t at = altered.rfind(' ') + 12;
                 altered[at] = altered[at] == 'A' ? 'B' : 'A';
                 d["checkpoint"] = altered;
             },
             "checkpoint: the signature by test.example/flowgate+"},
            {"a row's column",
             [](json::object& d) {
                 json::value& detail = d["row"].as_object()["detail"];
                 detail = std::string(detail.as_string()) + " (forged)";
             },
             "the row does not hash to leaf_hash"},
        };
        std::vector<fs::path> altered;
        for (const Case& c : cases) {
            INFO(c.what);
            json::object copy = good;
            c.change(copy);
            altered.push_back(log.daemon.dir() /
                              ("altered-" + std::to_string(altered.size()) + ".json"));
            write_file(altered.back(), json::serialize(copy));
            const CommandResult checked =
                log.flowgate({"audit", "verify-proof", altered.back(), "--key", log.vkey});
            INFO(checked.out << checked.err);
            CHECK(checked.status == 1);
            CHECK_THAT(checked.out, Catch::Contains(": INVALID: " + std::string(c.reason)));
            const CommandResult brief_refused = log.python(log.doc_checker(), {altered.back()});
            INFO(brief_refused.out << brief_refused.err);
            CHECK(brief_refused.status == 1);
            CHECK_THAT(brief_refused.err, Catch::StartsWith("refused: "));
        }
        const CommandResult refused = log.python(proof_check, altered);
        INFO(refused.out << refused.err);
        CHECK(refused.status == 1);
        CHECK(std::count(refused.out.begin(), refused.out.end(), '\n') ==
              static_cast<long>(cases.size()));
        CHECK_THAT(refused.out, !Catch::Contains("ok:"));
    }
    SECTION("another key, a missing key file and a document that is not one") {
        const CommandResult other = log.flowgate(
            {"audit", "keygen", "other.example/flowgate", "-o", log.daemon.dir() / "other.key"});
        REQUIRE(other.status == 0);
        write_file(log.daemon.dir() / "other.vkey", other.out);
        CommandResult checked = log.flowgate(
            {"audit", "verify-proof", proofs[0], "--key", log.daemon.dir() / "other.vkey"});
        CHECK(checked.status == 1);
        CHECK_THAT(
            checked.out,
            Catch::Contains("INVALID: checkpoint: the note is signed by none of the keys given"));
        checked = log.flowgate(
            {"audit", "verify-proof", proofs[0], "--key", log.daemon.dir() / "deleted.vkey"});
        CHECK(checked.status == 2);
        CHECK_THAT(checked.err, Catch::Contains("--key: "));
        CHECK_THAT(checked.err,
                   Catch::Contains("deleted.vkey: cannot open: No such file or directory"));
        write_file(log.daemon.dir() / "junk.json", "{\"proof\": \"inclusion\",");
        checked = log.flowgate(
            {"audit", "verify-proof", log.daemon.dir() / "junk.json", "--key", log.vkey});
        CHECK(checked.status == 2);
        CHECK_THAT(checked.err, Catch::Contains("not JSON"));
    }
}

TEST_CASE("proofs: a person's records, a consistency proof and kept checkpoints, against the "
          "signed log and copies of it truncated or altered",
          "[integration][audit][proof]") {
    SignedLog log;
    const fs::path db = log.daemon.db();
    const fs::path dir = log.daemon.dir();

    SECTION("a person's records, each with its proof against one checkpoint") {
        const CommandResult records =
            log.flowgate({"audit", "records", "--subject", "p-1", "--proofs", db});
        INFO(records.err);
        REQUIRE(records.status == 0);
        const json::object document = json::parse(records.out).as_object();
        std::vector<std::int64_t> seqs;
        for (const json::value& record : document.at("records").as_array()) {
            seqs.push_back(record.at("row").at("seq").as_int64());
        }
        CHECK(seqs == log.provisions);
        write_file(dir / "p-1.json", records.out);
        const CommandResult checked =
            log.flowgate({"audit", "verify-proof", dir / "p-1.json", "--key", log.vkey});
        INFO(checked.out << checked.err);
        CHECK(checked.status == 0);
        CHECK_THAT(checked.out, Catch::Contains("valid: 3 rows about p-1 are in the log "));
        const CommandResult independent = log.python(proof_check, {dir / "p-1.json"});
        INFO(independent.out);
        CHECK(independent.status == 0);
        CHECK_THAT(independent.out, Catch::StartsWith("ok: 3 rows about p-1 are in "));
    }
    SECTION("the consistency of the first checkpoint with the last") {
        const json::array notes =
            sqlite_rows(db, "SELECT note FROM audit_checkpoint ORDER BY tree_size");
        REQUIRE(notes.size() >= 3);
        write_file(dir / "old.txt", std::string(notes[0].at("note").as_string()));
        write_file(dir / "new.txt", std::string(notes.back().at("note").as_string()));
        const CommandResult proved =
            log.flowgate({"audit", "consistency", dir / "old.txt", dir / "new.txt", db});
        INFO(proved.err);
        REQUIRE(proved.status == 0);
        write_file(dir / "consistency.json", proved.out);
        const CommandResult checked =
            log.flowgate({"audit", "verify-proof", dir / "consistency.json", "--key", log.vkey});
        INFO(checked.out << checked.err);
        CHECK(checked.status == 0);
        CHECK_THAT(checked.out, Catch::Contains("extends its tree of size"));
        CHECK(log.python(proof_check, {dir / "consistency.json"}).status == 0);
        json::object altered = json::parse(proved.out).as_object();
        json::value& element = altered["consistency_path"].as_array()[0];
        element = flipped_base64_hash(element);
        write_file(dir / "altered.json", json::serialize(altered));
        CHECK(log.flowgate({"audit", "verify-proof", dir / "altered.json", "--key", log.vkey})
                  .status == 1);
        CHECK(log.python(proof_check, {dir / "altered.json"}).status == 1);
    }
    SECTION("verify checks every stored checkpoint's signature, and the journal's checkpoints") {
        CommandResult verified = log.flowgate(
            {"audit", "verify", "--key", log.vkey, "--checkpoint", dir / "kept.txt", db});
        INFO(verified.out << verified.err);
        CHECK(verified.status == 0);
        CHECK_THAT(verified.out,
                   Catch::Contains(
                       "stored checkpoints match its rows, each signed by test.example/flowgate"));
        CHECK_THAT(verified.out, Catch::Contains("each signed by test.example/flowgate\n"));
        const CommandResult other =
            log.flowgate({"audit", "keygen", "test.example/flowgate", "-o", dir / "other.key"});
        write_file(dir / "other.vkey", other.out);
        verified = log.flowgate({"audit", "verify", "--key", dir / "other.vkey", db});
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out, Catch::Contains("is not signed by the key given"));
    }
    SECTION("a copy truncated by one row, or altered with its chain recomputed, passes the chain "
            "but not the checkpoints kept outside") {
        // What someone holding the file does: drop the triggers, change the rows, hash the
        // chain again and remove the stored checkpoints and nodes that would tell.
        const std::string forge = R"py(
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
    db.execute(f'DROP TRIGGER "{name}"')
if sys.argv[2] == "truncate":
    db.execute("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
else:
    db.execute("UPDATE audit_log SET subject = 'p-9' WHERE seq = 5")
    columns = ("seq, time_us, kind, uid, gid, pid, service, request, request_encoding, "
               "request_bytes, request_sha256, decision, reason, rule, rule_source, legal_basis, "
               "obligations, policy_hash, purpose, activity, recipient, direction, data, subject, detail")
    prev = bytes.fromhex(db.execute("SELECT hash FROM audit_log WHERE seq = 4").fetchone()[0])
    for row in db.execute(f"SELECT {columns} FROM audit_rows WHERE seq >= 5 ORDER BY seq").fetchall():
        canonical = b"".join(len(v).to_bytes(8, "big") + v for v in (str(f).encode() for f in row))
        leaf = hashlib.sha256(b"\x00" + canonical).digest()
        digest = hashlib.sha256(prev + leaf).digest()
        db.execute("UPDATE audit_log SET hash = ? WHERE seq = ?", (digest.hex(), row[0]))
        prev = digest
db.execute("DELETE FROM audit_checkpoint")
db.execute("DELETE FROM audit_tree")
db.commit()
)py";
        write_file(dir / "forge.py", forge);
        for (const std::string how : {"truncate", "alter"}) {
            INFO(how);
            const fs::path copy = dir / (how + ".db");
            fs::copy_file(db, copy);
            REQUIRE(run_command(dir, python3() + " " + shell_quoted((dir / "forge.py").string()) +
                                         " " + shell_quoted(copy.string()) + " " + how)
                        .status == 0);
            CommandResult verified = log.flowgate({"audit", "verify", copy});
            INFO(verified.out << verified.err);
            CHECK(verified.status == 0);
            verified = log.flowgate(
                {"audit", "verify", "--key", log.vkey, "--checkpoint", dir / "kept.txt", copy});
            CHECK(verified.status == 1);
            CHECK_THAT(verified.out,
                       Catch::Contains(how == "truncate"
                                           ? "is of more rows than the log holds"
                                           : "holds a root that is not the tree's at that size"));
        }
    }
}
