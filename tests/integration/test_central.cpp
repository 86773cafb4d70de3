// Shipping hosts' logs into a real PostgreSQL (`flowgate audit ship`): two daemons under
// load shipped into one central store, every row once, as its host wrote it; a shipper
// killed mid-batch resumes with nothing lost or doubled; PostgreSQL stopped mid-ship and
// brought back is waited for; a shipped row altered in PostgreSQL stops the shipping,
// naming the row.
#include "tests/integration/daemon_rig.hpp"
#include "tests/integration/postgres_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

#define SKIP_WITHOUT_POSTGRES()                                                                    \
    do {                                                                                           \
        if (auto missing = postgres_missing()) {                                                   \
            WARN(*missing);                                                                        \
            return;                                                                                \
        }                                                                                          \
    } while (false)

// `checks` allowed and denied checks, pipelined in batches of 200: empty, or what failed.
// It asserts nothing, so that it can run on threads of their own (Catch's assertions are
// not safe from two threads at once); the test checks what it returns after joining.
std::string try_load(const Daemon& daemon, int checks) {
    auto connected = flowgate::client::Client::connect(daemon.socket().string());
    if (!connected) {
        return "connect: " + connected.error.message;
    }
    for (int sent = 0; sent < checks; sent += 200) {
        std::vector<json::object> batch;
        for (int i = sent; i < std::min(checks, sent + 200); ++i) {
            json::object request = i % 3 == 0 ? denied_check() : allowed_check();
            request["subject"] = "person-" + std::to_string(i % 97);
            batch.push_back(std::move(request));
        }
        auto answers = connected.value->batch(std::move(batch));
        if (!answers) {
            return "batch from " + std::to_string(sent) + ": " + answers.error.message;
        }
    }
    return "";
}

// try_load() on the test's own thread, asserting that every batch was answered.
void load(const Daemon& daemon, int checks) {
    const std::string failed = try_load(daemon, checks);
    INFO(failed);
    REQUIRE(failed.empty());
}

// The host's rows as (seq, prev_hash, hash), one line each, in seq order.
std::string host_chain(const Daemon& daemon) {
    std::string out;
    for (const json::value& row :
         sqlite_rows(daemon.db(), "SELECT seq, prev_hash, hash FROM audit_rows ORDER BY seq")) {
        const json::object& r = row.as_object();
        out += std::to_string(r.at("seq").to_number<std::int64_t>()) + "|" +
               std::string(r.at("prev_hash").as_string()) + "|" +
               std::string(r.at("hash").as_string()) + "\n";
    }
    return out;
}

std::string origin_of(const Daemon& daemon) {
    const json::array rows = sqlite_rows(daemon.db(), "SELECT origin FROM audit_origin");
    REQUIRE(rows.size() == 1);
    return std::string(rows[0].as_object().at("origin").as_string());
}

// The central copy of the origin's rows, in the form of host_chain().
std::string central_chain(const Postgres& pg, const std::string& origin) {
    const CommandResult rows =
        pg.psql("SELECT seq || '|' || prev_hash || '|' || hash FROM flowgate_log WHERE origin = '" +
                origin + "' ORDER BY seq");
    INFO(rows.err);
    REQUIRE(rows.status == 0);
    return rows.out;
}

std::int64_t central_count(const Postgres& pg, const std::string& where = "true") {
    const CommandResult count = pg.psql("SELECT count(*) FROM flowgate_log WHERE " + where);
    INFO(count.err);
    REQUIRE(count.status == 0);
    return std::stoll(count.out);
}

CommandResult ship(const Daemon& daemon, const Postgres& pg, std::vector<std::string> extra = {}) {
    std::vector<std::string> arguments = {"audit", "ship", daemon.db().string(), "--to", pg.uri()};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    return run_flowgate(daemon.dir(), arguments);
}

// `flowgate audit ship --follow` in the background, its output in DIR/shipper.log.
class Shipper {
public:
    Shipper(const Daemon& daemon, const Postgres& pg, const std::string& batch)
        : m_log(daemon.dir() / "shipper.log") {
        m_pid = ::fork();
        REQUIRE(m_pid >= 0);
        if (m_pid == 0) {
            const int fd = ::open(m_log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            const std::string db = daemon.db().string();
            const std::string uri = pg.uri();
            ::execl(FLOWGATE_PATH, FLOWGATE_PATH, "audit", "ship", db.c_str(), "--to", uri.c_str(),
                    "--follow", "--interval", "0.1", "--batch", batch.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~Shipper() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, nullptr, 0);
        }
    }
    Shipper(const Shipper&) = delete;
    Shipper& operator=(const Shipper&) = delete;

    // Sends `signal` and waits: the exit status, or 128 + the signal.
    int stop(int signal) {
        ::kill(m_pid, signal);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    bool running() const { return m_pid > 0 && ::waitpid(m_pid, nullptr, WNOHANG) == 0; }
    std::string log() const { return read_text(m_log); }

private:
    fs::path m_log;
    pid_t m_pid = -1;
};

// Waits up to `deadline` for the central store to hold `rows` rows of the origin.
bool wait_for_rows(const Postgres& pg, const std::string& origin, std::int64_t rows,
                   std::chrono::seconds deadline = 60s) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < until) {
        const CommandResult count =
            pg.psql("SELECT count(*) FROM flowgate_log WHERE origin = '" + origin + "'");
        if (count.status == 0 && std::stoll(count.out) == rows) {
            return true;
        }
        std::this_thread::sleep_for(100ms);
    }
    return false;
}

std::int64_t host_rows(const Daemon& daemon) {
    return sqlite_rows(daemon.db(), "SELECT seq FROM audit_log").size();
}

// A key made by `flowgate audit keygen NAME -o FILE` in the daemon's directory, and the
// launch that signs its checkpoints with it: its verifier key.
std::string signing_launch(const Daemon& daemon, const std::string& name, Launch& launch) {
    const fs::path file = daemon.dir() / "signing.key";
    const CommandResult made =
        run_flowgate(daemon.dir(), {"audit", "keygen", name, "-o", file.string()});
    INFO(made.err);
    REQUIRE(made.status == 0);
    launch.extra_arguments = {"--signing-key", file.string()};
    return made.out.substr(0, made.out.find('\n'));
}

CommandResult central_verify(const Daemon& daemon, const Postgres& pg, const std::string& origin,
                             const std::string& key = "") {
    std::vector<std::string> arguments = {"audit",  "verify",   "--from",
                                          pg.uri(), "--origin", origin};
    if (!key.empty()) {
        arguments.insert(arguments.end(), {"--key", key});
    }
    return run_flowgate(daemon.dir(), arguments);
}

} // namespace

TEST_CASE("central: two daemons under load ship every row once, as each host wrote it",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon first;
    Daemon second;
    // The hosts' origins are their host names and the second their stores were made in:
    // one machine stands in for two here.
    Launch launch_first;
    Launch launch_second;
    const std::string key_first = signing_launch(first, "host-a", launch_first);
    const std::string key_second = signing_launch(second, "host-b", launch_second);
    REQUIRE(first.init_store(launch_first) == 0);
    std::this_thread::sleep_for(1100ms);
    REQUIRE(first.start(launch_first));
    REQUIRE(second.start(launch_second));
    std::string failed_first;
    std::string failed_second;
    // jthreads: a failed REQUIRE below unwinds through their joins and is reported, where a
    // joinable std::thread would end the process.
    std::jthread load_first([&] { failed_first = try_load(first, 3000); });
    std::jthread load_second([&] { failed_second = try_load(second, 2000); });
    // Ships run while the daemons write: each sees a snapshot, the next goes on from it.
    int rounds = 0;
    for (; rounds < 3; ++rounds) {
        for (const Daemon* daemon : {&first, &second}) {
            const CommandResult shipped = ship(*daemon, pg, {"--batch", "500"});
            INFO(shipped.err);
            REQUIRE(shipped.status == 0);
        }
    }
    load_first.join();
    load_second.join();
    CHECK(failed_first == ""); // Catch prints what failed
    CHECK(failed_second == "");
    for (const Daemon* daemon : {&first, &second}) {
        const CommandResult shipped = ship(*daemon, pg);
        INFO(shipped.err);
        REQUIRE(shipped.status == 0);
        CHECK_THAT(shipped.out, Catch::Contains("the central store holds " +
                                                std::to_string(host_rows(*daemon)) + " rows"));
    }
    const std::string origin_first = origin_of(first);
    const std::string origin_second = origin_of(second);
    REQUIRE(origin_first != origin_second);
    CHECK(central_chain(pg, origin_first) == host_chain(first));
    CHECK(central_chain(pg, origin_second) == host_chain(second));
    CHECK(central_count(pg) == host_rows(first) + host_rows(second));

    // Shipping again copies nothing.
    const CommandResult again = ship(first, pg, {"--key", key_first});
    CHECK(again.status == 0);
    CHECK_THAT(again.out, Catch::StartsWith("shipped 0 rows"));
    CHECK(central_chain(pg, origin_first) == host_chain(first));
    // The checkpoints the host stored are there.
    const CommandResult held =
        pg.psql("SELECT count(*) FROM flowgate_checkpoint WHERE origin = '" + origin_first + "'");
    const json::array host = sqlite_rows(first.db(), "SELECT tree_size FROM audit_checkpoint");
    REQUIRE(host.size() > 1);
    CHECK(std::stoll(held.out) == static_cast<std::int64_t>(host.size()));
    // The searchable columns are the rows' own.
    const std::int64_t denied_host = static_cast<std::int64_t>(
        sqlite_rows(first.db(), "SELECT seq FROM audit_rows WHERE decision = 'deny'").size());
    CHECK(denied_host > 0);
    CHECK(central_count(pg, "origin = '" + origin_first + "' AND decision = 'deny'") ==
          denied_host);
    // Each origin verifies there against its own key, and not against the other's.
    for (const auto& [daemon, origin, key] : {std::tuple{&first, origin_first, key_first},
                                              std::tuple{&second, origin_second, key_second}}) {
        const CommandResult verified = central_verify(*daemon, pg, origin, key);
        INFO(verified.out << verified.err);
        CHECK(verified.status == 0);
        const std::string rows = std::to_string(host_rows(*daemon));
        CHECK_THAT(
            verified.out,
            Catch::Contains(origin + ": ok, " + rows + " rows chain from seq 1 to seq " + rows) &&
                Catch::Contains("stored checkpoints match its rows, each signed by"));
    }
    const CommandResult crossed = central_verify(first, pg, origin_first, key_second);
    CHECK(crossed.status == 1);
    CHECK_THAT(crossed.out, Catch::Contains("is not signed by the key given"));
}

TEST_CASE("central: audit ship refuses a batch, an interval or connections out of range, "
          "saying which and why",
          "[central]") {
    // Refused before the store or the server is opened: neither needs to exist.
    TempDir dir;
    const std::vector<std::string> ship = {"audit", "ship", "audit.db", "--to", "postgresql://"};
    for (const auto& [option, value, says] : {
             std::tuple{"--batch", "0", "--batch: must be a whole number above 0, not '0'"},
             std::tuple{"--batch", "-5", "--batch: must be a whole number above 0, not '-5'"},
             std::tuple{"--batch", "1.5", "--batch: must be a whole number above 0, not '1.5'"},
             std::tuple{"--batch", "many", "--batch: must be a whole number above 0, not 'many'"},
             std::tuple{
                 "--interval", "0",
                 "--interval: must be a number of seconds above 0 and at most 86400, not '0'"},
             std::tuple{
                 "--interval", "1s",
                 "--interval: must be a number of seconds above 0 and at most 86400, not '1s'"},
             std::tuple{
                 "--interval", "inf",
                 "--interval: must be a number of seconds above 0 and at most 86400, not 'inf'"},
             std::tuple{
                 "--interval", "nan",
                 "--interval: must be a number of seconds above 0 and at most 86400, not 'nan'"},
             std::tuple{
                 "--interval", "1e300",
                 "--interval: must be a number of seconds above 0 and at most 86400, not '1e300'"},
             std::tuple{"--connections", "17", "--connections: Value 17 not in range 1 to 16"},
         }) {
        std::vector<std::string> arguments = ship;
        arguments.insert(arguments.end(), {option, value});
        const CommandResult refused = run_flowgate(dir.path(), arguments);
        INFO(option << " " << value << ": " << refused.err);
        CHECK(refused.status == 2);
        CHECK_THAT(refused.err, Catch::StartsWith(says));
        CHECK(refused.err.size() < 200);
    }
    // A fraction of a second is an interval.
    const CommandResult fraction =
        run_flowgate(dir.path(), {"audit", "ship", "audit.db", "--to", "postgresql://",
                                  "--interval", "0.25", "--batch", "3"});
    CHECK_THAT(fraction.err, !Catch::Contains("above 0"));
}

TEST_CASE("central: a shipper killed mid-batch resumes with nothing lost and nothing doubled",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon daemon;
    REQUIRE(daemon.start());
    load(daemon, 6000);
    const std::string origin = origin_of(daemon);
    const std::int64_t rows = host_rows(daemon);
    {
        Shipper shipper(daemon, pg, "50");
        const auto until = std::chrono::steady_clock::now() + 30s;
        // Until the first batch is committed (the tables made by the shipper's first).
        auto shipped_some = [&pg] {
            const CommandResult count = pg.psql("SELECT count(*) FROM flowgate_log");
            return count.status == 0 && std::stoll(count.out) > 0;
        };
        while (!shipped_some() && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(5ms);
        }
        CHECK(shipper.stop(SIGKILL) == 128 + SIGKILL);
    }
    const std::int64_t after_kill = central_count(pg);
    INFO("rows shipped before the kill: " << after_kill << " of " << rows);
    CHECK(after_kill > 0);
    CHECK(after_kill < rows);
    CHECK(after_kill % 50 == 0); // whole batches only
    const CommandResult resumed = ship(daemon, pg);
    INFO(resumed.err);
    REQUIRE(resumed.status == 0);
    CHECK_THAT(resumed.out, Catch::StartsWith("shipped " + std::to_string(rows - after_kill)));
    CHECK(central_chain(pg, origin) == host_chain(daemon));
}

TEST_CASE("central: over two connections a batch commits only after the batch before it",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon daemon;
    REQUIRE(daemon.start());
    load(daemon, 1000);
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);
    const std::string origin = origin_of(daemon);
    REQUIRE(host_rows(daemon) >= 900);
    // Batches of 200 two at a time: 1-200 and 201-400, then 401-600 and 601-800.
    auto alter_host_row = [&daemon](int seq) {
        const CommandResult changed = run_command(
            daemon.dir(), "sqlite3 " + shell_quoted(daemon.db().string()) + " " +
                              shell_quoted("DROP TRIGGER audit_log_no_update; UPDATE audit_log "
                                           "SET time_us = time_us + 1 WHERE seq = " +
                                           std::to_string(seq)));
        INFO(changed.err);
        REQUIRE(changed.status == 0);
    };
    std::int64_t kept = 0;
    std::string named;
    SECTION("a row altered in the second batch of a round: the first commits, not the second") {
        alter_host_row(650);
        kept = 600;
        named = "seq 650";
    }
    SECTION("a row altered in the first: the second, whole as it is, does not commit either") {
        alter_host_row(450);
        kept = 400;
        named = "seq 450";
    }
    const CommandResult shipped = ship(daemon, pg, {"--batch", "200", "--connections", "2"});
    INFO(shipped.out << shipped.err);
    CHECK(shipped.status == 1);
    CHECK_THAT(shipped.err, Catch::Contains(named));
    CHECK(central_count(pg) == kept);
    CHECK(central_count(pg, "origin = '" + origin + "' AND seq <= " + std::to_string(kept)) ==
          kept);
    const CommandResult verified = central_verify(daemon, pg, origin);
    INFO(verified.out << verified.err);
    CHECK(verified.status == 0);
}

TEST_CASE("central: with PostgreSQL stopped mid-ship, the shipper waits and then resumes",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon daemon;
    REQUIRE(daemon.start());
    const std::string origin = origin_of(daemon);
    Shipper shipper(daemon, pg, "200");
    load(daemon, 1000);
    REQUIRE(wait_for_rows(pg, origin, host_rows(daemon)));
    pg.stop();
    load(daemon, 1000);
    std::this_thread::sleep_for(500ms);
    CHECK(shipper.running());
    pg.start();
    load(daemon, 500);
    CHECK(wait_for_rows(pg, origin, host_rows(daemon)));
    CHECK(shipper.running());
    CHECK_THAT(shipper.log(), Catch::Contains("waiting for PostgreSQL"));
    CHECK(central_chain(pg, origin) == host_chain(daemon));
    CHECK(shipper.stop(SIGTERM) == 0);
}

TEST_CASE("central: a row altered in PostgreSQL is named by verify, and stops the shipping",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon daemon;
    REQUIRE(daemon.start());
    load(daemon, 300);
    REQUIRE(ship(daemon, pg).status == 0);
    const std::string origin = origin_of(daemon);
    const std::int64_t last = host_rows(daemon);
    const std::string of_row = " WHERE origin = '" + origin + "' AND seq = ";
    auto alter = [&pg](const std::string& sql) {
        const CommandResult altered = pg.psql(sql);
        INFO(altered.err);
        REQUIRE(altered.status == 0);
    };
    REQUIRE(central_verify(daemon, pg, origin).status == 0);

    SECTION("a byte of a row's canonical bytes: the person it is about") {
        alter("UPDATE flowgate_log SET canonical = overlay(canonical placing 'P'::bytea from "
              "position('person-'::bytea in canonical))" +
              of_row + "120");
        const CommandResult verified = central_verify(daemon, pg, origin);
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out, Catch::Contains("FAILED at seq 120: altered"));
    }
    SECTION("a row's bytes replaced by something that is not a row") {
        alter("UPDATE flowgate_log SET canonical = overlay(canonical placing '\\x41'::bytea "
              "from 40)" +
              of_row + "130");
        const CommandResult verified = central_verify(daemon, pg, origin);
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out, Catch::Contains("FAILED at seq 130: "));
    }
    SECTION("a search column, which no longer says what the row's bytes say") {
        alter("UPDATE flowgate_log SET recipient = 'someone-else'" + of_row + "121");
        const CommandResult verified = central_verify(daemon, pg, origin);
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out, Catch::Contains("FAILED at seq 121: its column recipient"));
    }
    SECTION("a row removed") {
        alter("DELETE FROM flowgate_log" + of_row + "50");
        const CommandResult verified = central_verify(daemon, pg, origin);
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out, Catch::Contains("FAILED at seq 50: missing"));
    }
    SECTION("the last row, which the next ship compares with the host's") {
        alter("UPDATE flowgate_log SET canonical = overlay(canonical placing '\\x41'::bytea "
              "from 40)" +
              of_row + std::to_string(last));
        load(daemon, 10);
        const CommandResult refused = ship(daemon, pg);
        CHECK(refused.status == 1);
        CHECK_THAT(refused.err, Catch::Contains("seq " + std::to_string(last)) &&
                                    Catch::Contains("differs from the central store's copy"));
        CHECK(central_count(pg) == last); // nothing more was shipped
    }
}

namespace {

// Consent-based provisions to the employer (APPI Art. 29 records) for `people` people,
// among allowed and denied checks that are not records.
void provisions(const Daemon& daemon, int count, int people) {
    auto client = daemon.connect();
    std::vector<json::object> batch;
    for (int i = 0; i < count; ++i) {
        json::object request = check_request("health_services", "employer", {"checkup_result"});
        request["activity"] = "collabo_health";
        request["subject"] = "person-" + std::to_string(i % people);
        request["context"] = json::object{{"consent", true}};
        batch.push_back(std::move(request));
        batch.push_back(i % 2 == 0 ? allowed_check() : denied_check());
    }
    auto answers = client.batch(std::move(batch));
    REQUIRE(answers);
}

// An item a command printed, as its JSON text with `origin` set: read from a host's file,
// it has none and gets `origin`; read from the central store, it names its own.
std::string named_by_host(json::object item, const std::string& origin) {
    if (!origin.empty()) {
        CHECK_FALSE(item.contains("origin"));
        item["origin"] = origin;
    }
    CHECK(item.contains("origin"));
    return json::serialize(item);
}

// `audit records --format jsonl` with the arguments given, each record as its JSON text
// with `origin` set (the host's file: the origin given; the central store: its own).
std::multiset<std::string> records_of(const Daemon& daemon, std::vector<std::string> arguments,
                                      const std::string& origin = "") {
    std::vector<std::string> command = {"audit", "records", "--format", "jsonl"};
    command.insert(command.end(), arguments.begin(), arguments.end());
    const CommandResult listed = run_flowgate(daemon.dir(), command);
    INFO(listed.err);
    REQUIRE(listed.status == 0);
    std::multiset<std::string> out;
    std::istringstream lines(listed.out);
    for (std::string line; std::getline(lines, line);) {
        out.insert(named_by_host(json::parse(line).as_object(), origin));
    }
    return out;
}

// Two hosts, each a daemon with its own store (made a second apart: two origins), that
// sent consent-based provisions among other checks (see provisions()), both shipped. With
// `sign`, each signs its checkpoints with a key of its own (host-a, host-b).
struct TwoHosts {
    Postgres pg;
    Daemon first;
    Daemon second;
    std::string key_first, key_second; // their verifier keys, when signed
    std::string origin_first, origin_second;
    std::string db_first, db_second;

    TwoHosts(std::pair<int, int> first_provisions, std::pair<int, int> second_provisions,
             bool sign = false) {
        Launch launch_first;
        Launch launch_second;
        if (sign) {
            key_first = signing_launch(first, "host-a", launch_first);
            key_second = signing_launch(second, "host-b", launch_second);
        }
        REQUIRE(first.init_store(launch_first) == 0);
        std::this_thread::sleep_for(1100ms); // a second origin: its store made a second later
        REQUIRE(first.start(launch_first));
        REQUIRE(second.start(launch_second));
        provisions(first, first_provisions.first, first_provisions.second);
        provisions(second, second_provisions.first, second_provisions.second);
        if (sign) {
            std::this_thread::sleep_for(1200ms); // a signed checkpoint over the rows
        }
        for (const Daemon* daemon : {&first, &second}) {
            const CommandResult shipped = ship(*daemon, pg);
            INFO(shipped.err);
            REQUIRE(shipped.status == 0);
        }
        origin_first = origin_of(first);
        origin_second = origin_of(second);
        REQUIRE(origin_first != origin_second);
        db_first = first.db().string();
        db_second = second.db().string();
    }
};

} // namespace

TEST_CASE("central: records across both hosts are the union of each host's records", "[central]") {
    SKIP_WITHOUT_POSTGRES();
    TwoHosts hosts({60, 7}, {40, 5});
    const Postgres& pg = hosts.pg;
    const Daemon& first = hosts.first;
    const Daemon& second = hosts.second;
    const std::string& origin_first = hosts.origin_first;
    const std::string& origin_second = hosts.origin_second;
    const std::string& db_first = hosts.db_first;
    const std::string& db_second = hosts.db_second;

    const auto union_of = [](std::multiset<std::string> a, const std::multiset<std::string>& b) {
        a.insert(b.begin(), b.end());
        return a;
    };
    // Every host's, one host's, one person's on every host.
    const auto host_first = records_of(first, {db_first}, origin_first);
    const auto host_second = records_of(second, {db_second}, origin_second);
    CHECK(host_first.size() == 60);
    CHECK(host_second.size() == 40);
    CHECK(records_of(first, {"--from", pg.uri()}) == union_of(host_first, host_second));
    CHECK(records_of(first, {"--from", pg.uri(), "--origin", origin_second}) == host_second);
    const auto person_first = records_of(first, {"--subject", "person-3", db_first}, origin_first);
    const auto person_second =
        records_of(second, {"--subject", "person-3", db_second}, origin_second);
    CHECK(person_first.size() == 9); // 3, 10, … 59
    CHECK(person_second.size() == 8);
    CHECK(records_of(first, {"--subject", "person-3", "--from", pg.uri()}) ==
          union_of(person_first, person_second));

    // The export names each record's host in its first column.
    const CommandResult exported =
        run_flowgate(first.dir(), {"audit", "export", "--from", pg.uri()});
    INFO(exported.err);
    REQUIRE(exported.status == 0);
    std::istringstream lines(exported.out);
    std::string header;
    std::getline(lines, header);
    CHECK_THAT(header, Catch::StartsWith("origin,seq,time,recipient,"));
    std::map<std::string, int> per_origin;
    for (std::string line; std::getline(lines, line);) {
        ++per_origin[line.substr(0, line.find(','))];
    }
    CHECK(per_origin == std::map<std::string, int>{{origin_first, 60}, {origin_second, 40}});

    // Asked for what is not there, or for two sources at once: a clear error, exit 2.
    const CommandResult unknown =
        run_flowgate(first.dir(), {"audit", "records", "--from", pg.uri(), "--origin", "nobody"});
    CHECK(unknown.status == 2);
    CHECK_THAT(unknown.err, Catch::Contains("holds no rows of origin 'nobody'"));
    const CommandResult both =
        run_flowgate(first.dir(), {"audit", "records", db_first, "--from", pg.uri()});
    CHECK(both.status == 2);
    CHECK_THAT(both.err, Catch::Contains("give the store's file, or --from URI"));
    const CommandResult proofs = run_flowgate(
        first.dir(), {"audit", "records", "--from", pg.uri(), "--subject", "x", "--proofs"});
    CHECK(proofs.status == 2);
    CHECK_THAT(proofs.err, Catch::Contains("--proofs reads the host's file"));
}

namespace {

// `audit replay --json` with the arguments given: its exit status and report.
std::pair<int, json::object> replay_of(const Daemon& daemon, std::vector<std::string> arguments) {
    std::vector<std::string> command = {"audit", "replay", "--json"};
    command.insert(command.end(), arguments.begin(), arguments.end());
    const CommandResult replayed = run_flowgate(daemon.dir(), command);
    INFO(replayed.out << replayed.err);
    REQUIRE((replayed.status == 0 || replayed.status == 1));
    return {replayed.status, json::parse(replayed.out).as_object()};
}

// The changes of a candidate replay, each as its JSON text with `origin` set as in
// records_of.
std::multiset<std::string> changes_of(const json::object& report, const std::string& origin = "") {
    std::multiset<std::string> out;
    for (const json::value& item : report.at("changed").as_array()) {
        out.insert(named_by_host(item.as_object(), origin));
    }
    return out;
}

} // namespace

TEST_CASE("central: replay across both hosts reproduces each host's decisions, and a candidate "
          "changes the union of what it changes on each",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    TwoHosts hosts({30, 4}, {20, 3});
    const Postgres& pg = hosts.pg;
    const Daemon& first = hosts.first;
    const Daemon& second = hosts.second;
    const std::string& origin_first = hosts.origin_first;
    const std::string& origin_second = hosts.origin_second;
    const std::string& db_first = hosts.db_first;
    const std::string& db_second = hosts.db_second;

    // Under the recorded policies: every decision of both hosts, all reproduced.
    const auto [status_first, recorded_first] = replay_of(first, {db_first});
    const auto [status_second, recorded_second] = replay_of(second, {db_second});
    const auto [status_all, recorded_all] = replay_of(first, {"--from", pg.uri()});
    CHECK(status_all == 0);
    const auto count = [](const json::object& report, const char* key) {
        return report.at(key).as_int64();
    };
    CHECK(count(recorded_first, "decisions") >= 60); // the checks, and the daemon's own
    CHECK(count(recorded_all, "decisions") ==
          count(recorded_first, "decisions") + count(recorded_second, "decisions"));
    CHECK(count(recorded_all, "rows") ==
          count(recorded_first, "rows") + count(recorded_second, "rows"));
    CHECK(count(recorded_all, "reproduced") == count(recorded_all, "decisions"));
    const auto [status_one, recorded_one] =
        replay_of(first, {"--from", pg.uri(), "--origin", origin_second});
    CHECK(status_one == 0);
    CHECK(count(recorded_one, "decisions") == count(recorded_second, "decisions"));

    // A candidate without the employer's health-data provision: the decisions of both
    // hosts that would change, each named by its host.
    const fs::path candidate = candidate_without(first.dir(), "collabo_health");
    const auto [changed_first_status, changed_first] =
        replay_of(first, {"--policy", candidate.string(), db_first});
    const auto [changed_second_status, changed_second] =
        replay_of(second, {"--policy", candidate.string(), db_second});
    const auto [changed_all_status, changed_all] =
        replay_of(first, {"--policy", candidate.string(), "--from", pg.uri()});
    CHECK(changed_all_status == 1);
    std::multiset<std::string> expected = changes_of(changed_first, origin_first);
    const std::multiset<std::string> from_second = changes_of(changed_second, origin_second);
    // Each provision would be denied; each denied check to the employer (every other
    // one) is denied by another rule.
    CHECK(expected.size() == 30 + 15);
    CHECK(from_second.size() == 20 + 10);
    expected.insert(from_second.begin(), from_second.end());
    CHECK(changes_of(changed_all) == expected);
    CHECK(changed_all.at("by_decision") ==
          json::object{{"allow -> deny", 30 + 20}, {"deny -> deny", 15 + 10}});

    // The listing names the host of each change.
    const CommandResult listed =
        run_flowgate(first.dir(), {"audit", "replay", "--policy", candidate.string(), "--from",
                                   pg.uri(), "--origin", origin_second});
    CHECK(listed.status == 1);
    CHECK_THAT(listed.out, Catch::Contains(" 30 would change") &&
                               Catch::Contains("origin " + origin_second + " seq "));
    CHECK_THAT(listed.out, !Catch::Contains("origin " + origin_first));
}

TEST_CASE("central: a central store of the earlier layout, without the policies' origin, is "
          "refused by the shipper with what to do",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon daemon;
    REQUIRE(daemon.start());
    load(daemon, 20);
    REQUIRE(ship(daemon, pg).status == 0);
    const CommandResult altered = pg.psql("ALTER TABLE flowgate_policy DROP COLUMN origin");
    INFO(altered.err);
    REQUIRE(altered.status == 0);
    const std::int64_t shipped = central_count(pg);
    load(daemon, 10);
    const CommandResult refused = ship(daemon, pg);
    CHECK(refused.status == 2);
    CHECK_THAT(refused.err, Catch::Contains("flowgate_policy has no origin column") &&
                                Catch::Contains("docs/central-store.md"));
    CHECK(central_count(pg) == shipped); // nothing shipped into it
}

namespace {

// The figures of the line `audit report` ends with ("N rows in the period: N decisions
// (N allowed, N denied), N refused, N audit_unavailable; N third-party provision
// records"), in that order.
std::vector<long> period_figures(const std::string& out) {
    const std::size_t at = out.find(" rows in the period: ");
    REQUIRE(at != std::string::npos);
    const std::size_t start = out.rfind(' ', at - 1) + 1;
    const std::string line = out.substr(start, out.find(" third-party", at) - start);
    std::vector<long> figures;
    for (std::size_t i = 0; i < line.size();) {
        if (std::isdigit(static_cast<unsigned char>(line[i])) != 0 &&
            (i == 0 || line[i - 1] == ' ' || line[i - 1] == '(')) {
            std::size_t used = 0;
            figures.push_back(std::stol(line.substr(i), &used));
            i += used;
        } else {
            ++i;
        }
    }
    CHECK(figures.size() == 7);
    return figures;
}

} // namespace

TEST_CASE("central: the report of both hosts verifies each against its own key and counts "
          "the rows of both",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    TwoHosts hosts({30, 4}, {20, 3}, true);
    const Postgres& pg = hosts.pg;
    const Daemon& first = hosts.first;
    const Daemon& second = hosts.second;
    const std::string& key_first = hosts.key_first;
    const std::string& key_second = hosts.key_second;
    const std::string& origin_first = hosts.origin_first;
    const std::string& origin_second = hosts.origin_second;
    const auto file_report = [](const Daemon& daemon, const std::string& key) {
        const CommandResult made =
            run_flowgate(daemon.dir(), {"audit", "report", daemon.db().string(), "--key", key, "-o",
                                        (daemon.dir() / "own.html").string()});
        INFO(made.out << made.err);
        REQUIRE(made.status == 0);
        return period_figures(made.out);
    };
    const std::vector<long> own_first = file_report(first, key_first);
    const std::vector<long> own_second = file_report(second, key_second);
    const fs::path page = first.dir() / "central.html";
    const auto central_report = [&](std::vector<std::string> extra) {
        std::vector<std::string> arguments = {"audit",  "report", "--from",
                                              pg.uri(), "-o",     page.string()};
        arguments.insert(arguments.end(), extra.begin(), extra.end());
        return run_flowgate(first.dir(), arguments);
    };

    const CommandResult both = central_report({"--key", key_first, "--key", key_second});
    INFO(both.out << both.err);
    REQUIRE(both.status == 0);
    const std::vector<long> figures = period_figures(both.out);
    for (std::size_t i = 0; i < figures.size(); ++i) {
        CHECK(figures[i] == own_first[i] + own_second[i]);
    }
    CHECK(figures[6] == 30 + 20); // the provision records of both
    CHECK_THAT(both.out, Catch::Contains(origin_first + ": The log verifies") &&
                             Catch::Contains(origin_second + ": The log verifies"));
    const std::string html = read_text(page);
    CHECK_THAT(html, Catch::Contains("data-verdict=\"ok\" data-hosts=\"2\""));
    for (const auto& [origin, name] : {std::pair{origin_first, std::string("host-a")},
                                       std::pair{origin_second, std::string("host-b")}}) {
        CHECK_THAT(html, Catch::Contains("data-key=\"" + name + "\" data-origin=\"" + origin));
    }
    CHECK_THAT(html, !Catch::Contains("postgresql://")); // the page names no connection string

    SECTION("one host's key missing: that host does not verify") {
        const CommandResult one = central_report({"--key", key_first});
        CHECK(one.status == 1);
        CHECK_THAT(one.out, Catch::Contains(origin_second + ": The log does NOT verify") &&
                                Catch::Contains("signed by none of the keys given"));
        CHECK_THAT(read_text(page), Catch::Contains("data-verdict=\"failed\" data-hosts=\"2\""));
    }
    SECTION("one host only") {
        const CommandResult second_only =
            central_report({"--origin", origin_second, "--key", key_second});
        INFO(second_only.err);
        CHECK(second_only.status == 0);
        CHECK(period_figures(second_only.out) == own_second);
    }
    SECTION("a row altered in PostgreSQL: its host's log does not verify") {
        const CommandResult altered =
            pg.psql("UPDATE flowgate_log SET canonical = overlay(canonical placing 'P'::bytea from "
                    "position('person-'::bytea in canonical)) WHERE origin = '" +
                    origin_first + "' AND seq = 10");
        REQUIRE(altered.status == 0);
        const CommandResult failed = central_report({"--key", key_first, "--key", key_second});
        CHECK(failed.status == 1);
        CHECK_THAT(failed.out, Catch::Contains(origin_first + ": The log does NOT verify: at seq "
                                                              "10") &&
                                   Catch::Contains(origin_second + ": The log verifies"));
    }
}

TEST_CASE("central: fields with tabs, line breaks, backslashes, NUL and Japanese text ship as "
          "they are, and their search columns find them",
          "[central]") {
    SKIP_WITHOUT_POSTGRES();
    Postgres pg;
    Daemon daemon;
    REQUIRE(daemon.start());
    const std::vector<std::string> subjects = {"tab\there", "line\nbreak", "back\\slash",
                                               "被保険者 太郎", std::string("nul\0byte", 8)};
    {
        auto client = daemon.connect();
        std::vector<json::object> batch;
        for (const std::string& subject : subjects) {
            json::object request = allowed_check();
            request["subject"] = subject;
            batch.push_back(std::move(request));
        }
        REQUIRE(client.batch(std::move(batch)));
    }
    const CommandResult shipped = ship(daemon, pg);
    INFO(shipped.err);
    REQUIRE(shipped.status == 0);
    CHECK(central_count(pg) == host_rows(daemon));
    const std::string origin = origin_of(daemon);
    const CommandResult verified = central_verify(daemon, pg, origin);
    INFO(verified.out << verified.err);
    CHECK(verified.status == 0);
    CHECK(central_chain(pg, origin) == host_chain(daemon));
    // The search column holds each text as its row has it (a NUL left out).
    for (const char* literal :
         {"E'tab\\there'", "E'line\\nbreak'", "E'back\\\\slash'", "'被保険者 太郎'", "'nulbyte'"}) {
        CHECK(central_count(pg, std::string("subject = ") + literal) == 1);
    }
}
