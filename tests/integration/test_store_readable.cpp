// Every tool can read the store, whatever clients sent: a store that received bytes that
// are not UTF-8 and a client's 64 KiB junk lines is read by Python's sqlite3 and by the
// verifier docs/audit-store.md gives (run from the document itself), exported as valid
// JSON lines and CSV, and replayed; and a junk line costs a bounded row. A store of the
// first release's schema (version 1) is still verified, listed, exported and replayed
// by the auditor's tools, and refused by the daemon with what to do.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sstream>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

bool have_python() {
    return std::system("command -v python3 > /dev/null 2>&1") == 0;
}

// Writes `text` to DIR/NAME: the path.
fs::path write_file(const fs::path& dir, const std::string& name, const std::string& text) {
    const fs::path path = dir / name;
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out);
    return path;
}

// The verifier docs/audit-store.md gives: the ```python block after "A complete verifier".
std::string documented_verifier() {
    const std::string doc = read_text(fs::path(FLOWGATE_SOURCE_DIR) / "docs" / "audit-store.md");
    const auto heading = doc.find("A complete verifier");
    REQUIRE(heading != std::string::npos);
    const std::string opening = "```python\n";
    const auto begin = doc.find(opening, heading);
    REQUIRE(begin != std::string::npos);
    const auto end = doc.find("\n```", begin + opening.size());
    REQUIRE(end != std::string::npos);
    return doc.substr(begin + opening.size(), end + 1 - begin - opening.size());
}

// Runs the documented verifier with python3 on the store: what it printed.
std::string python_verified(const fs::path& dir, const fs::path& db) {
    const fs::path script = write_file(dir, "verify.py", documented_verifier());
    CommandResult result = run_command(dir, "python3 " + shell_quoted(script.string()) + " " +
                                                shell_quoted(db.string()));
    INFO(result.out << result.err);
    CHECK(result.status == 0);
    return result.out;
}

// Every row of the store as Python's sqlite3 reads it, with its default (strict UTF-8)
// text decoding, as JSON objects; and the SHA-256 of the file `digest_of`.
const char* const python_rows = R"py(import hashlib, json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
db.row_factory = sqlite3.Row
rows = [dict(row) for row in db.execute("SELECT * FROM audit_rows ORDER BY seq")]
print(json.dumps({"rows": rows,
                  "digest": hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()}))
)py";

std::vector<json::object> jsonl(const std::string& text) {
    std::vector<json::object> out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        boost::system::error_code error;
        json::value parsed = json::parse(line, error); // strict: valid UTF-8 only
        INFO(line);
        REQUIRE_FALSE(error);
        out.push_back(parsed.as_object());
    }
    return out;
}

json::object row_with_seq(const std::vector<json::object>& rows, std::int64_t seq) {
    for (const json::object& row : rows) {
        if (row.at("seq").as_int64() == seq) {
            return row;
        }
    }
    FAIL("no row with seq " << seq);
    return {};
}

// Sends a line and returns the answer's error code.
std::string refused_with(RawConnection& connection, const std::string& line) {
    REQUIRE(connection.send(line + "\n") == line.size() + 1);
    auto answer = connection.read_line(10s);
    REQUIRE(answer);
    return error_code(json::parse(*answer).as_object());
}

} // namespace

TEST_CASE("audit store: a store that received bytes that are not UTF-8 and 64 KiB junk lines is "
          "read by Python, the documented verifier and the export, each junk line is a bounded row",
          "[integration][audit]") {
    INFO("python3 is needed (scripts/install-deps.sh installs it)");
    REQUIRE(have_python());
    Daemon daemon;
    REQUIRE(daemon.start());
    const std::string with_bad_bytes =
        R"({"op":"check","id":1,"purpose":"health_services","recipient":"prevent",)"
        R"("data":["checkup_result"],"subject":"p-)"
        "\xff\xfe"
        R"("})";
    const std::string junk(64 * 1024, 'j'); // exactly the line limit: read whole, not JSON
    {
        RawConnection connection(daemon.socket());
        REQUIRE(connection.connected());
        CHECK(refused_with(connection, with_bad_bytes) == "bad_json");
        CHECK(refused_with(connection, junk) == "bad_json");
        CHECK(refused_with(connection, "\xff" + std::string(1000, 'x')) == "bad_json");
    }
    {
        RawConnection connection(daemon.socket());
        REQUIRE(connection.connected());
        connection.send(std::string(70 * 1024, 'k') + "\n");
        auto answer = connection.read_line(10s);
        REQUIRE(answer);
        CHECK(error_code(json::parse(*answer).as_object()) == "line_too_long");
    }
    auto client = daemon.connect();
    auto allowed = client.request(allowed_check());
    REQUIRE(allowed);
    REQUIRE(text_of(*allowed.value, "decision") == "allow");
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);

    const fs::path db = daemon.db();
    CHECK_THAT(python_verified(daemon.dir(), db), Catch::StartsWith("ok: version 4, "));

    const fs::path junk_file = write_file(daemon.dir(), "junk", junk);
    const fs::path script = write_file(daemon.dir(), "rows.py", python_rows);
    CommandResult read = run_command(daemon.dir(), "python3 " + shell_quoted(script.string()) +
                                                       " " + shell_quoted(db.string()) + " " +
                                                       shell_quoted(junk_file.string()));
    INFO(read.err);
    REQUIRE(read.status == 0);
    const json::object python = json::parse(read.out).as_object();
    std::vector<json::object> refused;
    for (const json::value& row : python.at("rows").as_array()) {
        if (row.at("kind") == "refused") {
            refused.push_back(row.as_object());
        }
    }
    REQUIRE(refused.size() == 4);

    // The line with bytes that are not UTF-8: whole, as its base64, marked.
    CHECK(refused[0].at("request_encoding") == "base64");
    CHECK(refused[0].at("request_bytes").as_int64() ==
          static_cast<std::int64_t>(with_bad_bytes.size()));
    CHECK(refused[0].at("request_sha256") == "");
    // The 64 KiB junk line: its first 256 bytes, its length and its SHA-256.
    CHECK(text_of(refused[1], "request") == std::string(256, 'j'));
    CHECK(refused[1].at("request_encoding") == "");
    CHECK(refused[1].at("request_bytes") == 65536);
    CHECK(refused[1].at("request_sha256") == python.at("digest"));
    // A long line that is not UTF-8: the base64 of its first 256 bytes.
    CHECK(refused[2].at("request_encoding") == "base64");
    CHECK(refused[2].at("request").as_string().size() == 344);
    CHECK(refused[2].at("request_bytes") == 1001);
    CHECK(refused[2].at("request_sha256").as_string().size() == 64);
    // The line too long to be read whole: what was received of it, bounded all the same.
    CHECK(text_of(refused[3], "request") == std::string(256, 'k'));
    CHECK(refused[3].at("request_bytes").as_int64() > 64 * 1024);
    CHECK(refused[3].at("request_bytes").as_int64() <= 70 * 1024);
    CHECK(refused[3].at("request_sha256").as_string().size() == 64);
    CHECK_THAT(text_of(refused[3], "reason"), Catch::StartsWith("line_too_long"));

    CommandResult exported =
        run_flowgate(daemon.dir(), {"audit", "export", "--all", "--format", "jsonl", db.string()});
    INFO(exported.err);
    REQUIRE(exported.status == 0);
    const std::vector<json::object> rows = jsonl(exported.out);
    CHECK(rows.size() == python.at("rows").as_array().size());
    const json::object exported_bad = row_with_seq(rows, refused[0].at("seq").as_int64());
    CHECK(exported_bad.at("request") == refused[0].at("request"));
    CHECK(exported_bad.at("request_encoding") == "base64");
    CHECK(row_with_seq(rows, refused[1].at("seq").as_int64()).at("request_bytes") == 65536);

    CommandResult csv =
        run_flowgate(daemon.dir(), {"audit", "export", "--all", "--format", "csv", db.string()});
    REQUIRE(csv.status == 0);
    const fs::path csv_file = write_file(daemon.dir(), "export.csv", csv.out);
    CommandResult csv_read = run_command(
        daemon.dir(), "python3 -c 'import csv, sys; print(len(list(csv.reader(open(sys.argv[1], "
                      "encoding=\"utf-8\", newline=\"\")))))' " +
                          shell_quoted(csv_file.string()));
    INFO(csv_read.err);
    CHECK(csv_read.status == 0);
    CHECK(csv_read.out == std::to_string(rows.size() + 1) + "\n");

    for (const char* command : {"verify", "replay"}) {
        CommandResult result = run_flowgate(daemon.dir(), {"audit", command, db.string()});
        INFO(command << "\n" << result.out << result.err);
        CHECK(result.status == 0);
    }
}

namespace {

// Rewrites a store as the first release would have written the same rows: its schema
// (tests/unit/audit/data/schema-v1.sql), user_version 1, the 22 fields of version 1
// hashed into the chain, and each request as the bytes received.
const char* const to_version_1 = R"py(import base64, hashlib, sqlite3, struct, sys
V1 = ["seq", "time_us", "kind", "uid", "gid", "pid", "service", "request",
      "decision", "reason", "rule", "rule_source", "legal_basis", "obligations",
      "policy_hash", "purpose", "activity", "recipient", "direction", "data",
      "subject", "detail"]
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
dst.executescript(open(sys.argv[3]).read() + "PRAGMA user_version = 1;")
def field_bytes(value):
    return str(value).encode() if isinstance(value, int) else value if isinstance(value, bytes) else value.encode()
prev = bytes(32)
for row in src.execute(f"SELECT {', '.join(V1)}, request_encoding, request_sha256 FROM audit_rows ORDER BY seq"):
    values, encoding, cut = list(row[:-2]), row[-2], row[-1]
    assert cut == "", "a cut request has no version-1 form"
    if encoding == "base64":
        values[7] = base64.b64decode(values[7])
    canonical = b"".join(struct.pack(">Q", len(b)) + b for b in map(field_bytes, values))
    digest = hashlib.sha256(prev + canonical).digest()
    places = ", ".join("CAST(? AS TEXT)" if isinstance(v, bytes) else "?" for v in values)
    dst.execute(f"INSERT INTO audit_log ({', '.join(V1)}, prev_hash, hash) VALUES ({places}, ?, ?)",
                values + [prev.hex(), digest.hex()])
    prev = digest
for row in src.execute("SELECT policy_hash, name, text, stored_us FROM policy_files"):
    dst.execute("INSERT INTO policy_files VALUES (?, ?, ?, ?)", row)
dst.commit()
)py";

} // namespace

TEST_CASE("audit tools: a store of schema version 1 verifies, lists its records, exports and "
          "replays, flowgated refuses to serve it, saying what to do",
          "[integration][audit]") {
    INFO("python3 is needed (scripts/install-deps.sh installs it)");
    REQUIRE(have_python());
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    json::object provision = check_request("health_services", "employer", {"checkup_result"});
    provision["activity"] = "collabo_health";
    provision["subject"] = "p-000301";
    provision["context"] = json::object{{"consent", true}};
    for (const json::object& request : {allowed_check(), provision, denied_check()}) {
        auto answer = client.request(request);
        REQUIRE(answer);
        REQUIRE(answer.value->contains("decision"));
    }
    const std::string with_bad_bytes = "{\"op\":\"check\",\"purpose\":\"\xff\"}";
    {
        RawConnection connection(daemon.socket());
        REQUIRE(connection.connected());
        CHECK(refused_with(connection, with_bad_bytes) == "bad_json");
    }
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);

    const fs::path v1 = daemon.dir() / "first-release.db";
    const fs::path script = write_file(daemon.dir(), "to_v1.py", to_version_1);
    const fs::path schema = fs::path(FLOWGATE_SOURCE_DIR) / "tests/unit/audit/data/schema-v1.sql";
    CommandResult converted = run_command(
        daemon.dir(), "python3 " + shell_quoted(script.string()) + " " +
                          shell_quoted(daemon.db().string()) + " " + shell_quoted(v1.string()) +
                          " " + shell_quoted(schema.string()));
    INFO(converted.err);
    REQUIRE(converted.status == 0);
    REQUIRE(sqlite_rows(v1, "PRAGMA user_version")[0].at("user_version") == 1);
    const std::int64_t rows =
        static_cast<std::int64_t>(sqlite_rows(v1, "SELECT seq FROM audit_log").size());

    CommandResult verified = run_flowgate(daemon.dir(), {"audit", "verify", v1.string()});
    INFO(verified.out << verified.err);
    CHECK(verified.status == 0);
    CHECK_THAT(verified.out, Catch::Contains(": ok, " + std::to_string(rows) + " rows"));
    CHECK_THAT(python_verified(daemon.dir(), v1), Catch::StartsWith("ok: version 1, "));

    CommandResult records = run_flowgate(daemon.dir(), {"audit", "records", v1.string()});
    INFO(records.out << records.err);
    CHECK(records.status == 0);
    CHECK_THAT(records.out, Catch::Contains("1 third-party provision records") &&
                                Catch::Contains("person p-000301"));

    CommandResult exported =
        run_flowgate(daemon.dir(), {"audit", "export", "--all", "--format", "jsonl", v1.string()});
    INFO(exported.err);
    REQUIRE(exported.status == 0);
    const std::vector<json::object> lines = jsonl(exported.out);
    REQUIRE(static_cast<std::int64_t>(lines.size()) == rows);
    bool found_bad_bytes = false;
    for (const json::object& row : lines) {
        CHECK(row.contains("request_encoding"));
        if (row.at("kind") == "refused") {
            found_bad_bytes = true;
            CHECK(row.at("request_encoding") == "base64");
            CHECK(row.at("request_bytes").as_int64() ==
                  static_cast<std::int64_t>(with_bad_bytes.size()));
        } else {
            CHECK(row.at("request_encoding") == "");
            CHECK(row.at("request_bytes").as_int64() ==
                  static_cast<std::int64_t>(row.at("request").as_string().size()));
        }
    }
    CHECK(found_bad_bytes);

    CommandResult replayed = run_flowgate(daemon.dir(), {"audit", "replay", v1.string()});
    INFO(replayed.out << replayed.err);
    CHECK(replayed.status == 0);
    CHECK_THAT(replayed.out, Catch::Contains("1 refused requests replayed") &&
                                 Catch::Contains(" 0 not reproduced"));

    SECTION("a version-1 row altered is caught") {
        CommandResult changed = run_command(
            daemon.dir(), "sqlite3 " + shell_quoted(v1.string()) + " " +
                              shell_quoted("DROP TRIGGER audit_log_no_update; UPDATE audit_log "
                                           "SET subject = 'p-999999' WHERE kind = 'check' AND "
                                           "decision = 'allow'"));
        INFO(changed.err);
        REQUIRE(changed.status == 0);
        CommandResult failed = run_flowgate(daemon.dir(), {"audit", "verify", v1.string()});
        CHECK(failed.status == 1);
        CHECK_THAT(failed.out,
                   Catch::Contains("FAILED at seq ") &&
                       Catch::Contains(": altered: its hash does not match its contents"));
    }
    SECTION("flowgated refuses to serve it, and leaves it as it was") {
        Launch launch;
        launch.extra_arguments = {"--audit-db", v1.string()};
        CHECK(daemon.run_to_exit(launch) == 1);
        CHECK_THAT(daemon.log(),
                   Catch::Contains(v1.string() + " is an audit store of schema version 1; this "
                                                 "flowgated writes version 4") &&
                       Catch::Contains("still read it") &&
                       Catch::Contains("make a new store at another path with `flowgated "
                                       "--init-store`"));
        CommandResult still = run_flowgate(daemon.dir(), {"audit", "verify", v1.string()});
        CHECK(still.status == 0);
        CHECK(static_cast<std::int64_t>(sqlite_rows(v1, "SELECT seq FROM audit_log").size()) ==
              rows);
    }
}
