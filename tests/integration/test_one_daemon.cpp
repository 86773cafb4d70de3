// The store and the socket belong to one daemon: a second flowgated on the same store
// or the same socket refuses to start and the first keeps serving; a live socket is
// never taken over and a stopping daemon leaves a socket that is not its own; a store
// is made only by --init-store, so a missing one is refused, never a new chain; a store
// whose append-only protection was changed is refused by name; and a start that does
// not serve leaves no row behind.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

std::string toml_path(const fs::path& path) {
    return json::serialize(json::value(path.string()));
}

std::int64_t rows_in(const fs::path& db, const std::string& table = "audit_log") {
    json::array counted = sqlite_rows(db, "SELECT COUNT(*) AS n FROM " + table);
    return counted[0].at("n").as_int64();
}

// The rows of a new store: the one --init-store writes to say that the log began.
constexpr std::int64_t init_rows = 1;

// A daemon's configuration that shares another's store or socket.
RigConfig sharing(std::optional<fs::path> db, std::optional<fs::path> socket) {
    RigConfig config;
    if (db) {
        config.keys["audit_db"] = toml_path(*db);
    }
    if (socket) {
        config.keys["socket"] = toml_path(*socket);
    }
    return config;
}

// An allow through the socket at PATH, which is in the store.
void check_allowed_through(const fs::path& socket) {
    auto client = flowgate::client::Client::connect(socket.string(), 5s);
    INFO(client.error.message);
    REQUIRE(client);
    auto answer = client.value->request(allowed_check());
    REQUIRE(answer);
    CHECK(text_of(*answer.value, "decision") == "allow");
}

// Two daemons started at once: one of them must exit 1 (refused) while the other keeps
// running; which one, the race decides.
struct RaceOutcome {
    Daemon& serving;
    Daemon& refused;
};

RaceOutcome race(Daemon& a, Daemon& b) {
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < until) {
        for (auto [exited, other] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
            if (int status = exited->wait_exit(50ms); status != -1) {
                INFO(a.log() << b.log());
                CHECK(status == 1);
                REQUIRE(other->running());
                return {*other, *exited};
            }
        }
    }
    FAIL("neither daemon exited:\n" << a.log() << b.log());
    return {a, b};
}

// Waits until a status request through the socket at PATH is answered.
bool answers_on(const fs::path& socket) {
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < until) {
        if (auto client = flowgate::client::Client::connect(socket.string(), 1s)) {
            if (auto status = client.value->request(json::object{{"op", "status"}}); status) {
                return true;
            }
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// A run that served: started, one allowed check, stopped with SIGTERM (exit 0).
void serve_one_check(Daemon& daemon) {
    REQUIRE(daemon.start());
    check_allowed_through(daemon.socket());
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);
}

ino_t inode_of(const fs::path& path) {
    struct stat info {};
    REQUIRE(::lstat(path.c_str(), &info) == 0);
    return info.st_ino;
}

} // namespace

TEST_CASE("flowgated: a second daemon on the same store refuses to start, the first serves on",
          "[integration]") {
    Daemon first;
    REQUIRE(first.start());
    Daemon second(sharing(first.db(), std::nullopt));
    Launch launch;
    launch.init_store = false;
    CHECK(second.run_to_exit(launch) == 1);
    CHECK_THAT(second.log(), Catch::Contains("store_in_use") &&
                                 Catch::Contains("in use by another flowgated (pid " +
                                                 std::to_string(first.pid()) + ")"));
    CHECK_FALSE(fs::exists(second.socket()));
    check_allowed_through(first.socket());
    CHECK(audit_rows(first.db(), "start").size() == 1);
    CHECK(audit_rows(first.db(), "check").size() == 1);
}

TEST_CASE("flowgated: two daemons started at once on one store: one serves, one refuses",
          "[integration]") {
    Daemon a;
    REQUIRE(a.init_store() == 0);
    Daemon b(sharing(a.db(), std::nullopt));
    Launch launch;
    launch.init_store = false;
    a.launch(launch);
    b.launch(launch);
    auto [serving, refused] = race(a, b);
    CHECK_THAT(refused.log(), Catch::Contains("store_in_use"));
    REQUIRE(answers_on(serving.socket()));
    check_allowed_through(serving.socket());
    serving.signal(SIGTERM);
    CHECK(serving.wait_exit() == 0);
    CHECK(audit_rows(a.db(), "start").size() == 1);
    CHECK(audit_rows(a.db(), "stop").size() == 1);
}

TEST_CASE("flowgated: a second daemon on the same socket refuses to start and records nothing",
          "[integration]") {
    Daemon first;
    REQUIRE(first.start());
    Daemon second(sharing(std::nullopt, first.socket()));
    REQUIRE(second.init_store() == 0);
    CHECK(second.run_to_exit() == 1);
    // The first holds the socket's lock (and, were the lock gone, its socket is live).
    CHECK_THAT(second.log(), Catch::Contains("reason=socket") &&
                                 Catch::Contains(first.socket().string() +
                                                 " is in use by another flowgated (pid " +
                                                 std::to_string(first.pid()) + ")"));
    CHECK(rows_in(second.db()) == init_rows);
    CHECK(rows_in(second.db(), "policy_files") == 0);
    check_allowed_through(first.socket());

    first.signal(SIGTERM);
    CHECK(first.wait_exit() == 0);
    CHECK_FALSE(fs::exists(first.socket()));
}

TEST_CASE("flowgated: two daemons started at once on one socket: one serves, one refuses",
          "[integration]") {
    Daemon a;
    Daemon b(sharing(std::nullopt, a.socket()));
    REQUIRE(a.init_store() == 0);
    REQUIRE(b.init_store() == 0);
    a.launch({});
    b.launch({});
    auto [serving, refused] = race(a, b);
    CHECK_THAT(refused.log(), Catch::Contains("reason=socket"));
    REQUIRE(answers_on(a.socket()));
    check_allowed_through(a.socket());
    CHECK(rows_in(refused.db()) == init_rows);
    CHECK(audit_rows(serving.db(), "check").size() == 1);
    serving.signal(SIGTERM);
    CHECK(serving.wait_exit() == 0);
    CHECK_FALSE(fs::exists(a.socket()));
}

TEST_CASE("flowgated: a live socket of another program is never replaced", "[integration]") {
    Daemon daemon;
    const int other = listening_socket(daemon.socket());
    REQUIRE(daemon.init_store() == 0);
    CHECK(daemon.run_to_exit() == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("another process is listening on"));
    // The other program still gets its connections.
    RawConnection connection(daemon.socket());
    CHECK(connection.connected());
    CHECK(rows_in(daemon.db()) == init_rows);
    ::close(other);
}

TEST_CASE("flowgated: a socket path that is not a socket is refused, and left as it was",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.init_store() == 0);
    SECTION("a regular file") {
        {
            std::ofstream out(daemon.socket());
            out << "someone's data\n";
        }
        CHECK(daemon.run_to_exit() == 1);
        CHECK(read_text(daemon.socket()) == "someone's data\n");
    }
    SECTION("a directory") {
        fs::create_directory(daemon.socket());
        CHECK(daemon.run_to_exit() == 1);
        CHECK(fs::is_directory(daemon.socket()));
    }
    CHECK_THAT(daemon.log(), Catch::Contains("exists and is not a socket"));
    CHECK(rows_in(daemon.db()) == init_rows);
}

TEST_CASE("flowgated: after kill -9 the lock is free and the stale socket is replaced",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    check_allowed_through(daemon.socket());
    daemon.signal(SIGKILL);
    CHECK(daemon.wait_exit() == 128 + SIGKILL);
    REQUIRE(fs::exists(daemon.socket())); // stale: nobody listens on it

    REQUIRE(daemon.start());
    check_allowed_through(daemon.socket());
    CHECK_THAT(daemon.log(), Catch::Contains("event=stale_socket_removed"));
    CHECK(audit_rows(daemon.db(), "start").size() == 2);
    CHECK(audit_rows(daemon.db(), "check").size() == 2);
}

TEST_CASE("flowgated: a stopping daemon removes its socket only if the path is still its own",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    // Someone else took the path (removed the daemon's file and bound their own).
    REQUIRE(::unlink(daemon.socket().c_str()) == 0);
    const int other = listening_socket(daemon.socket());
    const ino_t theirs = inode_of(daemon.socket());
    daemon.signal(SIGTERM);
    CHECK(daemon.wait_exit() == 0);
    REQUIRE(fs::exists(daemon.socket()));
    CHECK(inode_of(daemon.socket()) == theirs);
    ::close(other);
}

TEST_CASE("flowgated: a missing store is refused with how to make one, nothing is served",
          "[integration]") {
    Daemon daemon;
    SECTION("never made") {
        CHECK(daemon.run_to_exit() == 1);
    }
    SECTION("deleted between two starts") {
        serve_one_check(daemon);
        for (const char* suffix : {"", "-wal", "-shm"}) {
            fs::remove(daemon.db().string() + suffix);
        }
        CHECK(daemon.run_to_exit() == 1);
    }
    CHECK_THAT(daemon.log(),
               Catch::Contains("there is no audit store at " + daemon.db().string()) &&
                   Catch::Contains("flowgated --init-store"));
    CHECK_FALSE(fs::exists(daemon.db()));
    CHECK_FALSE(fs::exists(daemon.socket()));
}

TEST_CASE("flowgated: --init-store begins a new log and exits, it never replaces one or its "
          "anchor",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.init_store() == 0);
    CHECK_THAT(daemon.log(), Catch::Contains("event=store_created"));
    CHECK(rows_in(daemon.db()) == init_rows);
    CHECK(audit_rows(daemon.db(), "init").size() == 1);
    const fs::path anchor = daemon.db().string() + ".checkpoint";
    CHECK(fs::exists(anchor));
    CHECK_FALSE(fs::exists(daemon.socket()));

    SECTION("a second --init-store is refused") {
        CHECK(daemon.init_store() == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("init_failed") && Catch::Contains("exists"));
    }
    SECTION("a store moved away without its anchor is not begun again beside that anchor") {
        for (const char* suffix : {"", "-wal", "-shm"}) {
            const fs::path file = daemon.db().string() + suffix;
            if (fs::exists(file)) {
                fs::rename(file, daemon.dir() / ("old.db" + std::string(suffix)));
            }
        }
        CHECK(daemon.init_store() == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("event=init_failed reason=anchor_exists") &&
                                     Catch::Contains("anchor=" + anchor.string()));
        CHECK_FALSE(fs::exists(daemon.db()));
        fs::rename(anchor, daemon.dir() / "old.db.checkpoint");
        CHECK(daemon.init_store() == 0);
    }
    SECTION("--init-store beside a running daemon is refused, and its rows stay") {
        REQUIRE(daemon.start());
        check_allowed_through(daemon.socket());
        Daemon other(sharing(daemon.db(), std::nullopt));
        CHECK(other.init_store() == 1);
        CHECK_THAT(other.log(), Catch::Contains("store_in_use"));
        daemon.signal(SIGTERM);
        REQUIRE(daemon.wait_exit() == 0);
        CHECK(daemon.init_store() == 1);
        CHECK(audit_rows(daemon.db(), "check").size() == 1);
        CommandResult verified =
            run_command(daemon.dir(), shell_quoted(FLOWGATE_PATH) + " audit verify " +
                                          shell_quoted(daemon.db().string()));
        INFO(verified.out << verified.err);
        CHECK(verified.status == 0);
    }
}

TEST_CASE("flowgated: a store whose protection was changed is refused at start, by name",
          "[integration]") {
    Daemon daemon;
    serve_one_check(daemon);
    const std::int64_t rows = rows_in(daemon.db());

    auto refused_after = [&](const std::string& sql, const std::string& named) {
        CommandResult edited =
            run_command(daemon.dir(),
                        "sqlite3 " + shell_quoted(daemon.db().string()) + " " + shell_quoted(sql));
        INFO(edited.err);
        REQUIRE(edited.status == 0);
        CHECK(daemon.run_to_exit() == 1);
        CHECK_THAT(daemon.log(),
                   Catch::Contains("start_failed reason=audit_store") && Catch::Contains(named));
        CHECK_FALSE(fs::exists(daemon.socket()));
        CHECK(rows_in(daemon.db()) == rows);
    };
    for (const char* trigger :
         {"audit_log_no_update", "audit_log_no_delete", "audit_log_in_sequence",
          "policy_files_no_update", "policy_files_no_delete", "policy_files_once"}) {
        DYNAMIC_SECTION("trigger " << trigger << " dropped") {
            refused_after(std::string("DROP TRIGGER ") + trigger,
                          std::string("missing trigger ") + trigger);
        }
    }
    SECTION("a trigger replaced by one that does nothing") {
        refused_after("DROP TRIGGER audit_log_no_update; CREATE TRIGGER audit_log_no_update "
                      "BEFORE UPDATE ON audit_log BEGIN SELECT 1; END;",
                      "trigger audit_log_no_update changed");
    }
    SECTION("an extra trigger that silently ignores inserts") {
        refused_after("CREATE TRIGGER ignore_inserts BEFORE INSERT ON audit_log BEGIN SELECT "
                      "RAISE(IGNORE); END;",
                      "unexpected trigger ignore_inserts");
    }
    SECTION("the table changed") {
        refused_after("ALTER TABLE audit_log ADD COLUMN note TEXT", "table audit_log changed");
    }
}

TEST_CASE("flowgated: a start that does not serve records nothing", "[integration]") {
    Daemon daemon;
    serve_one_check(daemon);
    const std::int64_t rows = rows_in(daemon.db());
    const std::int64_t files = rows_in(daemon.db(), "policy_files");

    SECTION("the socket cannot be bound (its directory does not exist)") {
        RigConfig config;
        config.keys["socket"] = toml_path(daemon.dir() / "no" / "such" / "dir" / "s.sock");
        daemon.write_config(config);
        CHECK(daemon.run_to_exit() == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("reason=socket"));
    }
    SECTION("the socket path is taken by a file") {
        { std::ofstream out(daemon.socket()); }
        CHECK(daemon.run_to_exit() == 1);
    }
    SECTION("the store's lock is held") {
        Daemon holder(sharing(daemon.db(), std::nullopt));
        Launch launch;
        launch.init_store = false;
        REQUIRE(holder.start(launch));
        CHECK(daemon.run_to_exit() == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("store_in_use"));
        holder.signal(SIGTERM);
        REQUIRE(holder.wait_exit() == 0);
        // The holder's start, load and stop, nothing of the daemon that did not start.
        CHECK(rows_in(daemon.db()) == rows + 3);
        return;
    }
    CHECK(rows_in(daemon.db()) == rows);
    CHECK(rows_in(daemon.db(), "policy_files") == files);
    // The last row is the stop of the run that served.
    json::array last = sqlite_rows(daemon.db(), "SELECT kind FROM audit_rows ORDER BY seq DESC "
                                                "LIMIT 1");
    CHECK(last[0].at("kind") == "stop");
}
