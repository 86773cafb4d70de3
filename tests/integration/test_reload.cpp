// Reloads as admins make them, through the socket and by SIGHUP: a good policy swaps in
// with its new hash, a bad one is refused with its diagnostics while the old one keeps
// serving, a caller who is not an admin is refused and the attempt audited, and a
// check in flight is decided (and recorded) under the snapshot it started with.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

void append_to(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::app);
    out << text;
}

// A harmless change: the policy's text, and so its hash, changes.
void touch_policy(const Daemon& daemon, const std::string& note) {
    append_to(daemon.policy_dir() / "members.policy", "\n# " + note + "\n");
}

// A syntax error on a known line of a file of its own.
void break_policy(const Daemon& daemon) {
    std::ofstream out(daemon.policy_dir() / "zz-broken.policy");
    out << "# broken on purpose\ncategory oops \"x\" sensitivity;\n";
}

json::object counters(flowgate::client::Client& client) {
    auto status = client.request(json::object{{"op", "status"}});
    REQUIRE(status);
    return status.value->at("counters").as_object();
}

} // namespace

TEST_CASE("flowgated: an admin's reload swaps in the new policy, a bad one keeps the old",
          "[integration]") {
    Daemon daemon(me_as_admin());
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    const std::string original = current_hash(client);

    SECTION("a good policy is answered with its hash and decides the next check") {
        touch_policy(daemon, "reloaded through the socket");
        auto reloaded = client.request(json::object{{"op", "reload"}, {"id", 7}});
        REQUIRE(reloaded);
        CHECK(reloaded.value->at("id") == 7);
        CHECK(reloaded.value->at("reloaded") == true);
        const std::string fresh = text_of(*reloaded.value, "policy");
        CHECK(fresh.rfind("sha256:", 0) == 0);
        CHECK(fresh != original);
        CHECK(current_hash(client) == fresh);

        auto checked = client.request(allowed_check());
        REQUIRE(checked);
        CHECK(text_of(*checked.value, "policy") == fresh);
        CHECK(text_of(audit_row(daemon.db(), checked.value->at("audit_seq").as_int64()),
                      "policy_hash") == fresh);
        json::array reloads = audit_rows(daemon.db(), "reload");
        REQUIRE(reloads.size() == 1);
        CHECK(text_of(reloads[0].as_object(), "policy_hash") == fresh);
        CHECK_THAT(text_of(reloads[0].as_object(), "detail"), Catch::Contains(original));
        // The new texts are stored so that the decision can be replayed.
        json::array stored = sqlite_rows(daemon.db(), "SELECT name FROM policy_files WHERE "
                                                      "policy_hash = '" +
                                                          fresh + "'");
        CHECK_FALSE(stored.empty());
        CHECK(counters(client).at("reloads") == 1);
    }

    SECTION("a bad policy is answered with its diagnostics and changes nothing") {
        break_policy(daemon);
        auto refused = client.request(json::object{{"op", "reload"}, {"id", "r"}});
        REQUIRE(refused);
        check_reload_failed_keeps(daemon, client, *refused.value, original, "zz-broken.policy");
        const json::object& error = refused.value->at("error").as_object();
        CHECK_THAT(text_of(error, "message"), Catch::Contains("zz-broken.policy:2:"));
        const json::array& diagnostics = error.at("diagnostics").as_array();
        REQUIRE_FALSE(diagnostics.empty());
        CHECK_THAT(text_of(diagnostics[0].as_object(), "file"),
                   Catch::Contains("zz-broken.policy"));
        CHECK(diagnostics[0].at("line") == 2);
        CHECK(counters(client).at("failed_reloads") == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("event=reload_failed"));
    }
}

TEST_CASE("flowgated: SIGHUP reloads, tells systemd RELOADING then READY, and survives a bad "
          "policy",
          "[integration]") {
    Daemon daemon;
    NotifySocket notify(daemon.dir() / "notify.sock");
    Launch launch;
    launch.env.emplace_back("NOTIFY_SOCKET", notify.path().string());
    REQUIRE(daemon.start(launch));
    REQUIRE_FALSE(notify.receive_until("READY=1").empty());
    auto client = daemon.connect();
    const std::string original = current_hash(client);

    touch_policy(daemon, "reloaded by SIGHUP");
    daemon.signal(SIGHUP);
    std::vector<std::string> states = notify.receive_until("READY=1");
    REQUIRE(states.size() >= 2);
    CHECK_THAT(states.front(),
               Catch::Contains("RELOADING=1") && Catch::Contains("MONOTONIC_USEC="));
    CHECK_THAT(states.back(), Catch::Contains("READY=1"));
    const std::string fresh = current_hash(client);
    CHECK(fresh != original);
    auto checked = client.request(allowed_check());
    REQUIRE(checked);
    CHECK(text_of(*checked.value, "policy") == fresh);

    break_policy(daemon);
    daemon.signal(SIGHUP);
    states = notify.receive_until("READY=1");
    CHECK_THAT(states.back(), Catch::Contains("READY=1"));
    CHECK(daemon.running());
    CHECK(current_hash(client) == fresh);
    json::object counted = counters(client);
    CHECK(counted.at("reloads") == 1);
    CHECK(counted.at("failed_reloads") == 1);
    json::array failures = audit_rows(daemon.db(), "reload_failed");
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].at("service") == "signal");
    CHECK_THAT(daemon.log(), Catch::Contains("zz-broken.policy:2:"));
}

TEST_CASE("flowgated: reload from a caller who is not an admin is refused and audited",
          "[integration]") {
    SECTION("the admins are named by another uid") {
        RigConfig config;
        config.services.push_back({4242, "privacy-office", true});
        config.services.push_back({::getuid(), "kenshin", false});
        Daemon daemon(config);
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        const std::string original = current_hash(client);
        touch_policy(daemon, "not to be loaded");
        auto refused = client.request(json::object{{"op", "reload"}, {"id", 3}});
        REQUIRE(refused);
        CHECK(refused.value->at("id") == 3);
        CHECK(error_code(*refused.value) == "forbidden");
        CHECK(current_hash(client) == original);
        json::array attempts = audit_rows(daemon.db(), "admin_refused");
        REQUIRE(attempts.size() == 1);
        CHECK(attempts[0].at("uid") == static_cast<std::int64_t>(::getuid()));
        CHECK(attempts[0].at("service") == "kenshin");
        CHECK(audit_rows(daemon.db(), "reload").empty());
    }

    SECTION("an unprivileged process, while root is an admin") {
        if (::getuid() != 0) {
            WARN("switching to uid 65534 needs root; only the first section runs");
            return;
        }
        RigConfig config = me_as_admin();
        config.keys["socket_mode"] = "\"0666\"";
        Daemon daemon(config);
        REQUIRE(daemon.start());
        int answer_pipe[2];
        REQUIRE(::pipe(answer_pipe) == 0);
        const std::string socket = daemon.socket().string();
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(answer_pipe[0]);
            if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
                ::_exit(2);
            }
            RawConnection connection(socket);
            std::string line = "{\"op\":\"reload\",\"id\":1}\n";
            std::optional<std::string> answer;
            if (connection.connected() && connection.send(line) == line.size()) {
                answer = connection.read_line();
            }
            std::string out = answer.value_or("no answer");
            ssize_t written = ::write(answer_pipe[1], out.data(), out.size());
            ::_exit(written == static_cast<ssize_t>(out.size()) ? 0 : 3);
        }
        ::close(answer_pipe[1]);
        std::string answer;
        char chunk[4096];
        while (ssize_t n = ::read(answer_pipe[0], chunk, sizeof chunk)) {
            if (n < 0) {
                break;
            }
            answer.append(chunk, static_cast<std::size_t>(n));
        }
        ::close(answer_pipe[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
        json::value parsed = json::parse(answer);
        CHECK(error_code(parsed.as_object()) == "forbidden");
        json::array attempts = audit_rows(daemon.db(), "admin_refused");
        REQUIRE(attempts.size() == 1);
        CHECK(attempts[0].at("uid") == 65534);
        CHECK(attempts[0].at("pid") == child);
        CHECK(attempts[0].at("service") == "uid:65534");
    }
}

TEST_CASE("flowgated: checks in flight during a reload keep the snapshot they started with",
          "[integration]") {
    Daemon daemon(me_as_admin());
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    const std::string original = current_hash(client);
    touch_policy(daemon, "swapped while checks are in flight");

    // One pipeline: checks, the reload, more checks; all sent before any answer is read.
    std::vector<json::object> requests;
    for (int i = 0; i < 200; ++i) {
        requests.push_back(allowed_check());
    }
    requests.push_back(json::object{{"op", "reload"}});
    for (int i = 0; i < 200; ++i) {
        requests.push_back(allowed_check());
    }
    auto answers = client.batch(requests);
    REQUIRE(answers);
    const std::string fresh = text_of(answers.value->at(200), "policy");
    REQUIRE(fresh != original);
    REQUIRE(answers.value->at(200).at("reloaded") == true);

    bool swapped = false;
    std::size_t on_fresh = 0;
    for (std::size_t i = 0; i < answers.value->size(); ++i) {
        if (i == 200) {
            continue;
        }
        const json::object& answer = answers.value->at(i);
        const std::string hash = text_of(answer, "policy");
        INFO("answer " << i);
        // Before the reload in the pipeline, only the old snapshot; after it, once the
        // new one appears, never the old one again.
        if (i < 200) {
            CHECK(hash == original);
        }
        CHECK((hash == original || hash == fresh));
        if (hash == fresh) {
            swapped = true;
            ++on_fresh;
        } else {
            CHECK_FALSE(swapped);
        }
    }
    // Every row records the snapshot its answer named.
    json::array mismatched = sqlite_rows(
        daemon.db(), "SELECT COUNT(*) AS n FROM audit_rows WHERE kind = 'check' AND policy_hash "
                     "NOT IN ('" +
                         original + "', '" + fresh + "')");
    CHECK(mismatched[0].at("n") == 0);
    json::array counted = sqlite_rows(daemon.db(), "SELECT COUNT(*) AS n FROM audit_rows WHERE "
                                                   "kind = 'check' AND policy_hash = '" +
                                                       fresh + "'");
    CHECK(counted[0].at("n") == on_fresh);
    auto after = client.request(allowed_check());
    REQUIRE(after);
    CHECK(text_of(*after.value, "policy") == fresh);
}

TEST_CASE("flowgated: a reload row carries who asked: the admin's credentials and service, or "
          "the daemon's for SIGHUP",
          "[integration]") {
    Daemon daemon(me_as_admin());
    REQUIRE(daemon.start());
    auto client = daemon.connect();

    touch_policy(daemon, "reloaded by the privacy office");
    auto reloaded = client.request(json::object{{"op", "reload"}, {"id", 1}});
    REQUIRE(reloaded);
    REQUIRE(reloaded.value->at("reloaded") == true);
    json::array reloads = audit_rows(daemon.db(), "reload");
    REQUIRE(reloads.size() == 1);
    const json::object& by_admin = reloads[0].as_object();
    CHECK(by_admin.at("uid") == static_cast<std::int64_t>(::getuid()));
    CHECK(by_admin.at("gid") == static_cast<std::int64_t>(::getgid()));
    CHECK(by_admin.at("pid") == static_cast<std::int64_t>(::getpid()));
    CHECK(text_of(by_admin, "service") == "privacy-office");
    CHECK_THAT(text_of(by_admin, "request"), Catch::Contains("\"op\":\"reload\""));

    touch_policy(daemon, "reloaded by SIGHUP");
    daemon.signal(SIGHUP);
    for (int i = 0; i < 500 && audit_rows(daemon.db(), "reload").size() < 2; ++i) {
        std::this_thread::sleep_for(20ms);
    }
    reloads = audit_rows(daemon.db(), "reload");
    REQUIRE(reloads.size() == 2);
    const json::object& by_signal = reloads[1].as_object();
    CHECK(by_signal.at("pid") == static_cast<std::int64_t>(daemon.pid()));
    CHECK(by_signal.at("uid") == static_cast<std::int64_t>(::getuid()));
    CHECK(text_of(by_signal, "service") == "signal");
    CHECK(text_of(by_signal, "request").empty());
}

TEST_CASE("flowgated: a new policy serves only once its reload row is committed", "[integration]") {
    Daemon daemon(me_as_admin());
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    const std::string original = current_hash(client);
    const std::string members = read_text(daemon.policy_dir() / "members.policy");

    // A policy whose texts are in the store already (so storing them writes nothing),
    // while the store refuses reload rows: as an auditor's trigger, or a disk that has
    // room for nothing more, would.
    touch_policy(daemon, "a second policy");
    REQUIRE(client.request(json::object{{"op", "reload"}}).value->at("reloaded") == true);
    {
        std::ofstream out(daemon.policy_dir() / "members.policy", std::ios::trunc);
        out << members;
    }
    const std::string second = current_hash(client);
    CommandResult added = run_command(
        daemon.dir(), "sqlite3 " + shell_quoted(daemon.db().string()) + " " +
                          shell_quoted("CREATE TRIGGER refuse_reloads BEFORE INSERT ON audit_log "
                                       "WHEN NEW.kind = 'reload' BEGIN "
                                       "SELECT RAISE(ABORT, 'reload rows refused'); END;"));
    INFO(added.err);
    REQUIRE(added.status == 0);

    auto refused = client.request(json::object{{"op", "reload"}, {"id", 2}});
    REQUIRE(refused);
    INFO(json::serialize(*refused.value));
    CHECK(error_code(*refused.value) == "reload_failed");
    CHECK_THAT(text_of(refused.value->at("error").as_object(), "message"),
               Catch::Contains("cannot record the reload"));
    CHECK(text_of(*refused.value, "policy") == second);
    auto checked = client.request(allowed_check());
    REQUIRE(checked);
    CHECK(text_of(*checked.value, "policy") == second);
    CHECK(current_hash(client) == second);

    // Every decision's policy is one the log shows loaded before it.
    json::array unlogged = sqlite_rows(
        daemon.db(), "SELECT seq, policy_hash FROM audit_rows AS d WHERE kind = 'check' AND NOT "
                     "EXISTS (SELECT 1 FROM audit_rows AS l WHERE l.kind IN ('load', 'reload') "
                     "AND l.policy_hash = d.policy_hash AND l.seq < d.seq)");
    CHECK(unlogged.empty());
    CHECK(original != second);
}
