// One client must not starve the others: a connection pipelining checks as fast as it
// can gets its places in the audit writer's queue and no more; a client that does not
// read its answers holds a bounded number of bytes; one sending junk is cut off, and a
// uid sending junk as fast as it can grows the store by a bounded number of rows a
// second; a client trickling bytes, or holding many connections, or a daemon out of
// descriptors, gets an answer and locks nobody else out. Each against the real daemon.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

std::string check_line(const std::string& subject, std::uint64_t id) {
    json::object request = allowed_check();
    request["subject"] = subject;
    request["id"] = id;
    return json::serialize(request) + "\n";
}

// One connection pipelining checks as fast as the daemon takes them, and reading every
// answer on a thread of its own, until stopped.
class Flood {
public:
    explicit Flood(const fs::path& socket) : m_connection(socket) {
        REQUIRE(m_connection.connected());
        m_reader = std::thread([this] {
            std::string buffer;
            char chunk[65536];
            for (;;) {
                const ssize_t n = ::recv(m_connection.fd(), chunk, sizeof chunk, 0);
                if (n <= 0) {
                    break;
                }
                m_answered += static_cast<std::uint64_t>(
                    std::count(chunk, chunk + n, '\n')); // answers are one line each
            }
        });
        m_writer = std::thread([this] {
            std::string lines;
            for (std::uint64_t id = 0; !m_stop; id += 256) {
                lines.clear();
                for (std::uint64_t i = 0; i < 256; ++i) {
                    lines += check_line("flood", id + i);
                }
                for (std::size_t sent = 0; sent < lines.size() && !m_stop;) {
                    const ssize_t n = ::send(m_connection.fd(), lines.data() + sent,
                                             lines.size() - sent, MSG_NOSIGNAL);
                    if (n <= 0) {
                        return;
                    }
                    sent += static_cast<std::size_t>(n);
                }
            }
            ::shutdown(m_connection.fd(), SHUT_WR);
        });
    }
    ~Flood() { stop(); }
    void stop() {
        m_stop = true;
        if (m_writer.joinable()) {
            m_writer.join();
        }
        if (m_reader.joinable()) {
            m_reader.join();
        }
    }
    std::uint64_t answered() const { return m_answered; }

private:
    RawConnection m_connection;
    std::atomic<bool> m_stop{false};
    std::atomic<std::uint64_t> m_answered{0};
    std::thread m_writer;
    std::thread m_reader;
};

// How many lines of the daemon's log contain `text`.
std::size_t log_lines_with(const Daemon& daemon, std::string_view text) {
    std::size_t count = 0;
    const std::string log = daemon.log();
    for (std::size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) {
        ++count;
    }
    return count;
}

std::int64_t count_rows(const Daemon& daemon, const std::string& where) {
    return sqlite_rows(daemon.db(), "SELECT count(*) AS n FROM audit_rows WHERE " + where)
        .at(0)
        .at("n")
        .as_int64();
}

RigConfig with_limits(std::map<std::string, std::int64_t> limits) {
    RigConfig config;
    config.limits = std::move(limits);
    return config;
}

} // namespace

TEST_CASE("flowgated: a connection pipelining as fast as it can takes its share of the "
          "writer, not all of it",
          "[integration]") {
    constexpr std::int64_t in_flight = 16;
    Daemon daemon(with_limits({{"max_requests_in_flight", in_flight}}));
    REQUIRE(daemon.start());
    Flood flood(daemon.socket());
    for (int i = 0; i < 500 && flood.answered() < 2000; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    REQUIRE(flood.answered() >= 2000); // the flood is under way

    // A well-behaved client checks one request at a time beside it.
    auto client = daemon.connect();
    for (int i = 0; i < 40; ++i) {
        json::object request = allowed_check();
        request["subject"] = "victim";
        auto answer = client.request(request);
        REQUIRE(answer);
        REQUIRE(text_of(*answer.value, "decision") == "allow");
    }
    flood.stop();

    // Between two of its checks, how many of the flood's were committed: its share is
    // its places in the queue (a batch or two of them), not the thousands it sent.
    json::array rows = sqlite_rows(
        daemon.db(), "SELECT seq, subject FROM audit_rows WHERE kind = 'check' ORDER BY seq");
    std::vector<std::int64_t> gaps;
    std::int64_t flood_rows = 0;
    bool seen_victim = false;
    for (const json::value& row : rows) {
        if (row.at("subject") == "victim") {
            if (seen_victim) {
                gaps.push_back(flood_rows);
            }
            seen_victim = true;
            flood_rows = 0;
        } else {
            ++flood_rows;
        }
    }
    REQUIRE(gaps.size() == 39);
    std::nth_element(gaps.begin(), gaps.begin() + 19, gaps.end());
    INFO("median flood rows between two of the client's checks: " << gaps[19]);
    CHECK(gaps[19] <= 4 * in_flight);
}

TEST_CASE("flowgated: a client that does not read holds a bounded number of answer bytes",
          "[integration]") {
    Daemon daemon(with_limits({{"max_pending_answer_bytes", 64 * 1024},
                               {"max_pending_answers", 100000},
                               {"write_timeout_ms", 3000}}));
    REQUIRE(daemon.start());
    RawConnection silent(daemon.socket());
    REQUIRE(silent.connected());
    json::object explain = allowed_check();
    explain["op"] = "explain";
    const std::string line = json::serialize(explain) + "\n";
    std::string lines;
    for (int i = 0; i < 20000; ++i) {
        lines += line;
    }
    silent.send(lines, 2s); // as much as the daemon takes; it stops reading

    // The daemon decided what fits in the bytes it may hold (and the socket's buffers),
    // not the twenty thousand explains sent.
    std::int64_t decided = -1;
    for (int i = 0; i < 50; ++i) {
        std::this_thread::sleep_for(100ms);
        const std::int64_t now = count_rows(daemon, "kind = 'explain'");
        if (now == decided) {
            break;
        }
        decided = now;
    }
    INFO("explains decided for the client that does not read: " << decided);
    CHECK(decided > 0);
    CHECK(decided < 2000);

    // Others are served meanwhile, and the silent client (still reading nothing) is cut
    // off at write_timeout.
    auto client = daemon.connect();
    auto answer = client.request(allowed_check());
    REQUIRE(answer);
    CHECK(text_of(*answer.value, "decision") == "allow");
    for (int i = 0; i < 150 && log_lines_with(daemon, "event=client_not_reading") == 0; ++i) {
        std::this_thread::sleep_for(100ms);
    }
    CHECK(log_lines_with(daemon, "event=client_not_reading") == 1);
    pollfd hung_up{silent.fd(), 0, 0};
    CHECK(::poll(&hung_up, 1, 5000) == 1);
    CHECK((hung_up.revents & POLLHUP) != 0);
}

TEST_CASE("flowgated: a connection that keeps sending junk is cut off, the count recorded once",
          "[integration]") {
    Daemon daemon(with_limits({{"max_refused_lines", 5}}));
    REQUIRE(daemon.start());
    RawConnection junk(daemon.socket());
    REQUIRE(junk.connected());
    std::string lines;
    for (int i = 0; i < 8; ++i) {
        lines += "this is not json " + std::to_string(i) + "\n";
    }
    junk.send(lines);
    for (int i = 0; i < 5; ++i) {
        CHECK(error_code(parse_answer(junk.read_line())) == "bad_json");
    }
    json::object last = parse_answer(junk.read_line());
    CHECK(error_code(last) == "too_many_refused");
    CHECK_THAT(text_of(last.at("error").as_object(), "message"), Catch::Contains("5 lines"));
    CHECK(junk.closed_within(5s));

    json::array refused = audit_rows(daemon.db(), "refused");
    REQUIRE(refused.size() == 6); // the five lines and the cut-off, the lines after unread
    CHECK_THAT(text_of(refused[5].as_object(), "reason"),
               Catch::StartsWith("too_many_refused") && Catch::Contains("5 lines"));
    // The cut-off is the connection's: the same caller is served on a new one.
    auto client = daemon.connect();
    auto answer = client.request(allowed_check());
    REQUIRE(answer);
    CHECK(text_of(*answer.value, "decision") == "allow");
}

TEST_CASE("flowgated: a uid's junk beyond refused_rows_per_second is answered and summed up in "
          "one row",
          "[integration]") {
    constexpr int sent = 200;
    Daemon daemon(with_limits({{"refused_rows_per_second", 5}, {"max_refused_lines", 100000}}));
    REQUIRE(daemon.start());
    RawConnection junk(daemon.socket());
    REQUIRE(junk.connected());
    std::string lines;
    for (int i = 0; i < sent; ++i) {
        lines += "{not json\n";
    }
    junk.send(lines);
    for (int i = 0; i < sent; ++i) {
        INFO("answer " << i);
        REQUIRE(error_code(parse_answer(junk.read_line())) == "bad_json");
    }
    // The summary is written when the second is over.
    std::this_thread::sleep_for(2500ms);
    json::array rows = audit_rows(daemon.db(), "refused");
    std::int64_t one_by_one = 0;
    std::int64_t summed = 0;
    for (const json::value& row : rows) {
        const std::string reason = text_of(row.as_object(), "reason");
        if (reason.rfind("refusals_not_recorded", 0) == 0) {
            const std::size_t number = reason.find_first_of("0123456789");
            REQUIRE(number != std::string::npos);
            summed += std::stoll(reason.substr(number));
        } else {
            CHECK_THAT(reason, Catch::StartsWith("bad_json"));
            ++one_by_one;
        }
    }
    INFO("rows one by one: " << one_by_one << ", lines summed up: " << summed);
    CHECK(one_by_one <= 15); // five a second, over the seconds the lines took
    CHECK(one_by_one + summed == sent);
    auto client = daemon.connect();
    auto status = client.request(json::object{{"op", "status"}});
    REQUIRE(status);
    CHECK(status.value->at("counters").at("malformed") == sent);
}

TEST_CASE("flowgated: a client trickling a line is cut off at line_timeout, a quiet one is not",
          "[integration]") {
    Daemon daemon(with_limits({{"line_timeout_ms", 600}, {"idle_timeout_ms", 60000}}));
    REQUIRE(daemon.start());
    RawConnection trickle(daemon.socket());
    RawConnection quiet(daemon.socket());
    REQUIRE(trickle.connected());
    REQUIRE(quiet.connected());
    const std::string line = json::serialize(allowed_check());
    std::optional<std::string> answer;
    // A byte every 100 ms: each one used to reset the idle timer.
    for (std::size_t i = 0; i < line.size() && !answer; ++i) {
        trickle.send(line.substr(i, 1));
        answer = trickle.read_line(100ms);
    }
    REQUIRE(answer);
    CHECK(error_code(parse_answer(answer)) == "line_timeout");
    CHECK(trickle.closed_within(5s));
    json::array refused = audit_rows(daemon.db(), "refused");
    REQUIRE(refused.size() == 1);
    CHECK_THAT(text_of(refused[0].as_object(), "reason"), Catch::StartsWith("line_timeout"));
    CHECK_THAT(text_of(refused[0].as_object(), "request"), Catch::StartsWith("{\"op\""));

    // Quiet all that while, then a whole line at once: that client is served.
    REQUIRE(quiet.send(line + "\n") == line.size() + 1);
    CHECK(text_of(parse_answer(quiet.read_line()), "decision") == "allow");
}

TEST_CASE("flowgated: one uid holds at most max_connections_per_uid connections", "[integration]") {
    Daemon daemon(with_limits({{"max_connections_per_uid", 3}}));
    REQUIRE(daemon.start());
    std::vector<flowgate::client::Client> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(daemon.connect());
        REQUIRE(held.back().request(json::object{{"op", "status"}}));
    }
    for (int i = 0; i < 20; ++i) {
        RawConnection refused(daemon.socket());
        REQUIRE(refused.connected());
        json::object answer = parse_answer(refused.read_line());
        CHECK(error_code(answer) == "too_many_connections");
        CHECK_THAT(text_of(answer.at("error").as_object(), "message"),
                   Catch::Contains("max_connections_per_uid"));
        CHECK(refused.closed_within(5s));
    }
    // Logged once, not once per refusal.
    CHECK(log_lines_with(daemon, "event=connection_refused") == 1);
    held.pop_back();
    bool served = false;
    for (int i = 0; i < 100 && !served; ++i) {
        RawConnection again(daemon.socket());
        REQUIRE(again.connected());
        // Refused before the line went out (the daemon answers and closes at once), the
        // send fails: the place is not free yet.
        const bool sent = again.send(json::serialize(allowed_check()) + "\n") > 0;
        json::object answer = sent ? parse_answer(again.read_line()) : json::object{};
        served = sent && error_code(answer).empty(); // the closed connection's place is free
        if (served) {
            CHECK(text_of(answer, "decision") == "allow");
        } else {
            std::this_thread::sleep_for(20ms);
        }
    }
    CHECK(served);
    CHECK(held.front().request(json::object{{"op", "status"}}));
}

TEST_CASE("flowgated: out of descriptors, a client is answered too_many_connections, not left "
          "hanging",
          "[integration]") {
    Daemon daemon(with_limits({{"max_connections", 1000}, {"max_connections_per_uid", 1000}}));
    Launch launch;
    launch.max_open_files = 48;
    REQUIRE(daemon.start(launch));
    std::vector<std::unique_ptr<RawConnection>> open;
    int refused = 0;
    for (int i = 0; i < 80; ++i) {
        auto connection = std::make_unique<RawConnection>(daemon.socket());
        REQUIRE(connection->connected());
        REQUIRE(connection->send("{\"op\":\"status\"}\n") > 0);
        json::object answer = parse_answer(connection->read_line(5s)); // never a hang
        if (error_code(answer) == "too_many_connections") {
            ++refused;
        } else {
            REQUIRE(answer.contains("counters"));
            open.push_back(std::move(connection));
        }
    }
    INFO("served " << open.size() << ", refused " << refused);
    CHECK(refused > 0);
    CHECK(open.size() > 10);
    CHECK(log_lines_with(daemon, "event=out_of_descriptors") == 1);
    open.clear();
    // Descriptors back: served again, the decision recorded.
    bool served = false;
    for (int i = 0; i < 100 && !served; ++i) {
        RawConnection again(daemon.socket());
        REQUIRE(again.send(json::serialize(allowed_check()) + "\n") > 0);
        json::object answer = parse_answer(again.read_line());
        served = error_code(answer).empty();
        if (served) {
            CHECK(text_of(answer, "decision") == "allow");
            CHECK(answer.at("audit_seq").is_int64());
        } else {
            std::this_thread::sleep_for(20ms);
        }
    }
    CHECK(served);
    CHECK(daemon.running());
}
