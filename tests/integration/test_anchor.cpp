// The anchor, as an admin and an attacker meet it: the daemon keeps its latest checkpoint
// in a file beside the store and follows the log with it; a store stopped and started
// again starts; a store cut short, altered with its chain recomputed, or rebuilt from an
// old copy is refused at start with what the anchor expected and what was found, as is
// an anchor signed by another key than the daemon's and a lost anchor (which the journal's
// checkpoint line restores).
#include "tests/integration/daemon_rig.hpp"
#include "tests/integration/store_forger.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/stat.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

std::string toml_path(const fs::path& path) {
    return json::serialize(json::value(path.string()));
}

fs::path anchor_of(const Daemon& daemon) {
    return daemon.db().string() + ".checkpoint";
}

std::int64_t last_seq(const fs::path& db) {
    json::array rows = sqlite_rows(db, "SELECT COALESCE(MAX(seq), 0) AS n FROM audit_log");
    return rows[0].at("n").as_int64();
}

// The verifier key of a new key made by `flowgate audit keygen`.
std::string keygen(const fs::path& dir, const std::string& name, const fs::path& file) {
    const CommandResult made = run_flowgate(dir, {"audit", "keygen", name, "-o", file.string()});
    INFO(made.err);
    REQUIRE(made.status == 0);
    return made.out.substr(0, made.out.size() - 1);
}

// The allowed checks, each answered, on a running daemon.
void serve_checks(const Daemon& daemon, int count) {
    auto client = daemon.connect();
    for (int i = 0; i < count; ++i) {
        auto answer = client.request(allowed_check());
        REQUIRE(answer);
        REQUIRE(text_of(*answer.value, "decision") == "allow");
    }
}

void stop(Daemon& daemon) {
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);
}

// The anchor's body lines: origin, tree size, root.
std::vector<std::string> body_lines(const std::string& anchor) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = anchor.find('\n', start)) != std::string::npos && end > start;
         start = end + 1) {
        lines.push_back(anchor.substr(start, end - start));
    }
    return lines;
}

// The note of the log's last `audit checkpoint:` line, its escapes undone: what an admin
// restores a lost anchor from.
std::string last_journal_checkpoint(const std::string& log) {
    const std::size_t line = log.rfind("audit checkpoint: ");
    REQUIRE(line != std::string::npos);
    const std::size_t from = log.find("note=\"", line) + 6;
    const std::size_t to = log.find('\n', from) - 1;
    REQUIRE(log[to] == '"');
    std::string note;
    for (std::size_t i = from; i < to; ++i) {
        if (log[i] == '\\' && i + 1 < to) {
            note += log[++i] == 'n' ? '\n' : log[i];
        } else {
            note += log[i];
        }
    }
    return note;
}

// Puts `store` in place of the daemon's (its WAL and shared memory gone with the old
// one).
void replace_store(const Daemon& daemon, const fs::path& store) {
    for (const char* suffix : {"-wal", "-shm"}) {
        fs::remove(daemon.db().string() + suffix);
    }
    fs::copy_file(store, daemon.db(), fs::copy_options::overwrite_existing);
}

std::int64_t checkpoints_in(const fs::path& db) {
    return sqlite_rows(db, "SELECT COUNT(*) AS n FROM audit_checkpoint")[0].at("n").as_int64();
}

// Deletes the store's last checkpoint (its guard dropped and put back as it was), so that
// its last rows are in none: a daemon that checkpointed them at close would sign them.
void drop_last_checkpoint(const fs::path& db) {
    json::array guard =
        sqlite_rows(db, "SELECT sql FROM sqlite_schema WHERE name = 'audit_checkpoint_no_delete'");
    REQUIRE(guard.size() == 1);
    const fs::path script = db.parent_path() / "drop-checkpoint.sql";
    std::ofstream(script) << "DROP TRIGGER audit_checkpoint_no_delete;\n"
                             "DELETE FROM audit_checkpoint WHERE tree_size = (SELECT "
                             "MAX(tree_size) FROM audit_checkpoint);\n"
                          << guard[0].at("sql").as_string().c_str() << ";\n";
    const CommandResult edited =
        run_command(db.parent_path(), "sqlite3 -bail " + shell_quoted(db.string()) + " " +
                                          shell_quoted(".read " + script.string()));
    INFO(edited.err);
    REQUIRE(edited.status == 0);
}

// A start that must fail on the anchor, saying `what`; nothing is recorded, signed or
// served, and the anchor stays as it was.
void check_refused(Daemon& daemon, const std::vector<std::string>& what) {
    const std::int64_t rows = last_seq(daemon.db());
    const std::int64_t checkpoints = checkpoints_in(daemon.db());
    const std::string anchor = fs::exists(anchor_of(daemon)) ? read_text(anchor_of(daemon)) : "";
    const std::size_t log_before = daemon.log().size();
    CHECK(daemon.run_to_exit() == 1);
    const std::string log = daemon.log().substr(log_before);
    INFO(log);
    CHECK_THAT(log, Catch::Contains("event=start_failed reason=anchor"));
    for (const std::string& part : what) {
        CHECK_THAT(log, Catch::Contains(part));
    }
    CHECK_FALSE(fs::exists(daemon.socket()));
    CHECK(last_seq(daemon.db()) == rows);
    CHECK(checkpoints_in(daemon.db()) == checkpoints);
    CHECK((fs::exists(anchor_of(daemon)) ? read_text(anchor_of(daemon)) : "") == anchor);
}

} // namespace

TEST_CASE("anchor: a daemon stopped and started again on its intact store starts, the anchor "
          "following its log",
          "[integration][anchor]") {
    Daemon daemon;
    const fs::path key = daemon.dir() / "signing.key";
    const std::string verifier = keygen(daemon.dir(), "host-1.kenpo.example/flowgate", key);
    RigConfig config;
    config.keys["signing_key"] = toml_path(key);
    daemon.write_config(config);

    // --init-store: the log's first row says that it began, and its checkpoint is the
    // first anchor.
    REQUIRE(daemon.init_store() == 0);
    json::array began = audit_rows(daemon.db(), "init");
    REQUIRE(began.size() == 1);
    CHECK(began[0].at("seq") == 1);
    const std::string origin = std::string(
        sqlite_rows(daemon.db(), "SELECT origin FROM audit_origin")[0].at("origin").as_string());
    CHECK_THAT(text_of(began[0].as_object(), "detail"), Catch::Contains("new log " + origin));
    std::string anchor = read_text(anchor_of(daemon));
    CHECK(body_lines(anchor).size() == 3);
    CHECK(body_lines(anchor)[0] == origin);
    CHECK(body_lines(anchor)[1] == "1");
    CHECK_THAT(anchor, Catch::Contains("\n\n\xe2\x80\x94 host-1.kenpo.example/flowgate "));

    for (int run = 1; run <= 2; ++run) {
        INFO("run " << run);
        REQUIRE(daemon.start());
        serve_checks(daemon, 2);
        stop(daemon);
        // The anchor is the last checkpoint the store holds, of every row.
        anchor = read_text(anchor_of(daemon));
        CHECK(body_lines(anchor)[1] == std::to_string(last_seq(daemon.db())));
        json::array stored = sqlite_rows(
            daemon.db(), "SELECT note FROM audit_checkpoint ORDER BY tree_size DESC LIMIT 1");
        REQUIRE(stored.size() == 1);
        CHECK(stored[0].at("note").as_string() == anchor);
    }

    SECTION("status names the anchor and the checkpoint it holds") {
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        auto answer = client.request(json::object{{"op", "status"}});
        REQUIRE(answer);
        const json::object& checkpoints = answer.value->at("checkpoints").as_object();
        CHECK(text_of(checkpoints, "anchor_file") == anchor_of(daemon).string());
        CHECK(text_of(checkpoints, "verifier_key") == verifier);
        CHECK(text_of(checkpoints, "anchor_error").empty());
    }
    SECTION("a lost anchor is refused, and the journal's last checkpoint restores it") {
        fs::remove(anchor_of(daemon));
        check_refused(daemon, {"there is no anchor at " + anchor_of(daemon).string(),
                               "for a store of " + std::to_string(last_seq(daemon.db())) + " rows",
                               "journal"});
        std::ofstream(anchor_of(daemon)) << last_journal_checkpoint(daemon.log());
        CHECK(read_text(anchor_of(daemon)) == anchor);
        REQUIRE(daemon.start());
    }
    SECTION("a FIFO where the anchor should be is refused, not waited on") {
        fs::remove(anchor_of(daemon));
        REQUIRE(::mkfifo(anchor_of(daemon).c_str(), 0600) == 0);
        const std::size_t log_before = daemon.log().size();
        CHECK(daemon.run_to_exit() == 1);
        const std::string log = daemon.log().substr(log_before);
        CHECK_THAT(log, Catch::Contains("event=start_failed reason=anchor") &&
                            Catch::Contains(anchor_of(daemon).string() +
                                            " is not a regular file, so not an anchor"));
        CHECK_FALSE(fs::exists(daemon.socket()));
    }
}

TEST_CASE("anchor: a store cut short, altered with its chain recomputed, or rebuilt from an old "
          "copy is refused at start",
          "[integration][anchor]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    serve_checks(daemon, 3);
    // A copy made while the daemon runs: the stop row is not in it.
    const fs::path short_copy = daemon.dir() / "short.db";
    const CommandResult copied =
        run_command(daemon.dir(), "sqlite3 " + shell_quoted(daemon.db().string()) + " " +
                                      shell_quoted(".backup " + short_copy.string()));
    REQUIRE(copied.status == 0);
    stop(daemon);
    const std::int64_t rows = last_seq(daemon.db());
    REQUIRE(last_seq(short_copy) == rows - 1);
    const std::vector<std::string> anchor_lines = body_lines(read_text(anchor_of(daemon)));
    REQUIRE(anchor_lines.size() == 3);
    REQUIRE(anchor_lines[1] == std::to_string(rows));
    const std::string expected = "tree size " + std::to_string(rows) + ", root " + anchor_lines[2];
    const fs::path forged = daemon.dir() / "forged.db";

    SECTION("truncated by one row") {
        replace_store(daemon, short_copy);
        check_refused(daemon, {"the store holds " + std::to_string(rows - 1) + " rows",
                               "expects at least " + std::to_string(rows), expected});
    }
    SECTION("a row altered and every hash after it recomputed") {
        forge_store(daemon.db(), forged, [](std::vector<flowgate::audit::AuditRecord>& records) {
            for (auto& record : records) {
                if (record.kind == "check") {
                    record.decision = "deny";
                    break;
                }
            }
        });
        // The forged file checks clean on its own; only the anchor shows it.
        CHECK(run_flowgate(daemon.dir(), {"audit", "verify", forged.string()}).status == 0);
        drop_last_checkpoint(forged);
        replace_store(daemon, forged);
        check_refused(daemon, {"the store's tree at size " + std::to_string(rows) + " has root ",
                               expected, "altered"});
    }
    SECTION("rebuilt from an old copy and written on past the anchor") {
        forge_store(short_copy, forged, [](std::vector<flowgate::audit::AuditRecord>& records) {
            const flowgate::audit::AuditRecord last = records.back();
            for (int i = 0; i < 3; ++i) {
                records.push_back(last);
                records.back().subject = "p-99999" + std::to_string(i);
            }
        });
        CHECK(run_flowgate(daemon.dir(), {"audit", "verify", forged.string()}).status == 0);
        REQUIRE(last_seq(forged) > rows);
        replace_store(daemon, forged);
        check_refused(daemon, {"the store's tree at size " + std::to_string(rows) + " has root ",
                               expected, "rebuilt"});
    }
}

TEST_CASE("anchor: a signing daemon refuses an anchor signed by another key, naming both, or "
          "not signed",
          "[integration][anchor]") {
    Daemon daemon;
    const fs::path first = daemon.dir() / "first.key";
    const fs::path second = daemon.dir() / "second.key";
    const std::string first_verifier = keygen(daemon.dir(), "host-1.kenpo.example/flowgate", first);
    const std::string second_verifier =
        keygen(daemon.dir(), "host-1.kenpo.example/flowgate", second);
    const auto key_label = [](const std::string& verifier) {
        return verifier.substr(0, verifier.find('+') + 9); // name+key ID
    };
    SECTION("another key") {
        Launch signed_by_first;
        signed_by_first.extra_arguments = {"--signing-key", first.string()};
        REQUIRE(daemon.init_store(signed_by_first) == 0);
        RigConfig config;
        config.keys["signing_key"] = toml_path(second);
        daemon.write_config(config);
        check_refused(daemon, {"is not signed by this daemon's key " + key_label(second_verifier),
                               "only by " + key_label(first_verifier), second.string()});
    }
    SECTION("no key: an unsigned anchor is anyone's who can write the file") {
        REQUIRE(daemon.init_store() == 0);
        RigConfig config;
        config.keys["signing_key"] = toml_path(second);
        daemon.write_config(config);
        check_refused(daemon,
                      {"is unsigned, and this daemon signs with " + key_label(second_verifier),
                       "begin a new log"});
    }
}
