// End-to-end throughput of flowgated: the real daemon (durability full, its store on a
// real file) driven over its socket by 1, 8 and 64 clients, each on its own connection
// keeping a window of pipelined checks in flight (all driven from one thread). A decision
// counts once its answer carries an audit_seq, i.e. once its row is committed: durable
// decisions per second, and the p50/p99 time from sending a check to reading its answer,
// and flowgated's processor time per decision (all its threads: the steadier figure on a
// machine whose speed drifts, or that runs something else too), and under it each of
// flowgated's threads' share of a processor, by name. Level i of --clients keeps the i-th
// window of --window in flight per client (the last one when the list is shorter). Run a Release
// build:
//   bench_daemon [--seconds S] [--clients 1,8,64] [--window 8,8,3] [--dir DIR] [--relaxed]
//                [--flowgated PATH]   (another build's daemon, for an A/B run)
//                [--sign]             (checkpoints signed with a key made for the run)
//
// --noisy: how well eight clients (window 8) are served next to a noisy neighbour, in
// four phases of S seconds on one daemon: alone; next to one connection pipelining valid
// checks as fast as the daemon takes them (4096 in flight, its answers read); next to one
// connection sending 64 KiB lines of junk, which reconnects whenever it is cut off or
// refused; and that junk flood alone, for the store's growth it causes by itself. Each flooder runs
// on its own thread. Per phase: the eight clients' decisions/s, p50 and p99, the flooder's own
// rate, and the store's growth per second (audit.db plus its WAL); then the targets — with either
// flood, the eight keep at least half their throughput and a p99 under 10 ms, and junk grows the
// store by at most 1 MB/s — each marked PASS or FAIL. The targets are reported, not enforced (the
// machine's speed drifts): the exit status is 1 only if something failed to run.
//   bench_daemon --noisy [--seconds S] [--dir DIR] [--relaxed]
//
// --compare: the machine's limits beside the daemon's, in one run, with the same load
// generator: first the store's filesystem (fdatasync of a few hundred bytes, in a loop:
// p50 and mean) and SQLite's own durable rows/s on it (300-byte rows in transactions of
// 64, 256 and 1,024), then the levels against a trivial line server this benchmark runs (one
// thread, epoll, a fixed answer to every line: the socket's ceiling), then flowgated with
// durability relaxed, then full; each daemon's store bytes per decision; then the ratios
// and the targets, each marked PASS or FAIL (reported, not enforced).
//   bench_daemon --compare [--seconds S] [--clients 1,8,64] [--window 1,8,3] [--dir DIR]
//
// --open-loop: requests that arrive at a fixed rate, as a busy host's services send them,
// not as fast as answers come back: the maximum is measured first (64 clients x window 3,
// S seconds), then checks are sent over 64 connections at --load (0.7) of it for
// --open-seconds (60), each one's latency counted from when it was due (so a stall counts
// for every request it delays); p50, p99, p99.9 and the maximum, and the targets (p99.9
// under 10 ms, no answer slower than 50 ms), how late the generator itself sent the checks
// (it sleeps between sends, at least open_loop_tick), and the processor time of both.
// --rate N sends N checks/s instead, the same in every run of an A/B comparison.
//   bench_daemon --open-loop [--load 0.7 | --rate N] [--open-seconds 60] [--seconds S] [--relaxed]
//
// --ship URI: the levels as above while the real `flowgate audit ship --follow --interval
// 0.1` copies the daemon's store into the central store at URI (an empty PostgreSQL
// database of your own), sampled every 100 ms: how many committed rows the central store
// is behind the host, and how old its newest row is; after the load, how long it takes to
// catch up.
//   bench_daemon --ship 'postgresql:///bench?host=/tmp/pg' [--seconds S] [--clients ...]
#include "audit/signing_key.hpp"
#include "central/pg.hpp"
#include "client/client.hpp"

#include <sqlite3.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Options {
    double seconds = 5;
    std::vector<int> clients{1, 8, 64};
    std::vector<int> windows{8, 8, 3};
    fs::path dir = fs::temp_directory_path();
    bool relaxed = false;
    bool noisy = false;
    bool compare = false;
    bool open_loop = false;
    double load = 0.7;        // --open-loop: the share of the measured maximum sent
    double open_seconds = 60; // --open-loop: how long
    double rate = 0;          // --open-loop --rate: this many checks/s instead (for A/B runs)
    std::string flowgated = FLOWGATED_PATH; // --flowgated: another build's, for an A/B run
    bool sign = false;                      // --sign: checkpoints signed with a new key
    std::string ship_to;                    // --ship: the central store to ship to
};

// The daemon the run starts (set from --flowgated once the options are read).
std::string flowgated_path = FLOWGATED_PATH;

struct Level {
    std::uint64_t decisions = 0;
    std::uint64_t not_durable = 0; // answers without an audit_seq (must stay 0)
    std::vector<std::uint32_t> latencies_us;
    std::string failure;
};

// A mix of allowed and denied checks over a few purposes and recipients.
std::vector<std::string> request_lines() {
    const char* checks[] = {
        R"("purpose":"health_services","recipient":"prevent","data":["checkup_result"])",
        R"("purpose":"health_services","recipient":"employer","data":["checkup_result"])",
        R"("purpose":"health_services","recipient":"prevent","data":["checkup_result"],"context":{"consent":true})",
        R"("purpose":"health_services","recipient":"employer","data":["specific_benefit"],"context":{"consent":true})",
    };
    std::vector<std::string> lines;
    for (const char* check : checks) {
        lines.push_back(std::string(R"({"op":"check","subject":"p-000123",)") + check + "}");
    }
    return lines;
}

int connect_to(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 &&
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// A decision whose row is committed: its answer carries a numeric audit_seq.
bool is_durable(std::string_view answer) {
    return answer.find("\"audit_seq\"") != std::string_view::npos &&
           answer.find("\"audit_seq\":null") == std::string_view::npos;
}

// Every client's connection, driven from one thread with epoll(7), as a load generator
// like wrk does: the measuring side then costs little CPU and takes no scheduling
// delays of its own, which on two cores would otherwise show up as daemon latency.
// Each connection keeps `window` checks in flight until the deadline, then drains.
struct Connection {
    int fd = -1;
    std::vector<Clock::time_point> sent_at;
    std::uint64_t next_id = 0;
    std::uint64_t answered = 0;
    std::string out;
    std::size_t out_offset = 0;
    bool waiting_to_write = false; // registered for EPOLLOUT
    std::string in;
};

class Driver {
public:
    Driver(std::size_t window, Level& level) : m_window(window), m_level(level) {}
    ~Driver() {
        for (Connection& c : m_connections) {
            ::close(c.fd);
        }
        if (m_epoll >= 0) {
            ::close(m_epoll);
        }
    }

    bool connect(const std::string& socket, int clients) {
        m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
        m_connections.resize(static_cast<std::size_t>(clients));
        for (std::size_t i = 0; i < m_connections.size(); ++i) {
            Connection& c = m_connections[i];
            c.fd = connect_to(socket);
            if (c.fd < 0 || m_epoll < 0) {
                m_level.failure = "cannot connect: " + std::string(std::strerror(errno));
                return false;
            }
            c.sent_at.resize(m_window);
            epoll_event event{};
            event.events = EPOLLIN;
            event.data.u64 = i;
            ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, c.fd, &event);
        }
        return true;
    }

    void run(Clock::time_point deadline) {
        for (Connection& c : m_connections) {
            fill_and_send(c, true);
        }
        bool sending = true;
        std::vector<epoll_event> events(m_connections.size());
        while (in_flight() != 0) {
            if (sending && Clock::now() >= deadline) {
                sending = false;
            }
            int ready =
                ::epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), 10000);
            if (ready <= 0) {
                m_level.failure = "no answer within 10 s";
                return;
            }
            for (int e = 0; e < ready; ++e) {
                Connection& c = m_connections[events[e].data.u64];
                if ((events[e].events & EPOLLOUT) != 0) {
                    flush(c);
                }
                if ((events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !receive(c)) {
                    return;
                }
                fill_and_send(c, sending);
            }
        }
    }

private:
    std::uint64_t in_flight() const {
        std::uint64_t total = 0;
        for (const Connection& c : m_connections) {
            total += c.next_id - c.answered;
        }
        return total;
    }

    void fill_and_send(Connection& c, bool sending) {
        static const std::vector<std::string> bodies = request_lines();
        bool added = false;
        while (sending && c.next_id - c.answered < m_window) {
            const std::string& body = bodies[c.next_id % bodies.size()];
            c.out.append(body, 0, body.size() - 1);
            c.out += ",\"id\":";
            c.out += std::to_string(c.next_id);
            c.out += "}\n";
            c.sent_at[c.next_id % m_window] = Clock::now();
            ++c.next_id;
            added = true;
        }
        if (added && !c.waiting_to_write) {
            flush(c);
        }
    }

    void flush(Connection& c) {
        while (c.out_offset < c.out.size()) {
            ssize_t n = ::send(c.fd, c.out.data() + c.out_offset, c.out.size() - c.out_offset,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0) {
                break;
            }
            c.out_offset += static_cast<std::size_t>(n);
        }
        const bool pending = c.out_offset < c.out.size();
        if (!pending) {
            c.out.clear();
            c.out_offset = 0;
        }
        if (pending != c.waiting_to_write) {
            c.waiting_to_write = pending;
            epoll_event event{};
            event.events = EPOLLIN | (pending ? EPOLLOUT : 0U);
            event.data.u64 = static_cast<std::uint64_t>(&c - m_connections.data());
            ::epoll_ctl(m_epoll, EPOLL_CTL_MOD, c.fd, &event);
        }
    }

    // Reads what arrived and accounts each complete answer; false if the daemon hung up.
    bool receive(Connection& c) {
        char chunk[65536];
        ssize_t n = ::recv(c.fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n == 0) {
            m_level.failure = "flowgated closed the connection";
            return false;
        }
        if (n < 0) {
            return true;
        }
        c.in.append(chunk, static_cast<std::size_t>(n));
        const auto now = Clock::now();
        std::size_t start = 0;
        for (std::size_t newline; (newline = c.in.find('\n', start)) != std::string::npos;
             start = newline + 1) {
            std::string_view answer(c.in.data() + start, newline - start);
            // Answers come in order: the oldest one in flight is this one.
            auto latency = std::chrono::duration_cast<std::chrono::microseconds>(
                now - c.sent_at[c.answered % m_window]);
            m_level.latencies_us.push_back(static_cast<std::uint32_t>(latency.count()));
            ++c.answered;
            if (is_durable(answer)) {
                ++m_level.decisions;
            } else {
                ++m_level.not_durable;
            }
        }
        c.in.erase(0, start);
        return true;
    }

    std::size_t m_window;
    Level& m_level;
    int m_epoll = -1;
    std::vector<Connection> m_connections;
};

void drive(const std::string& socket, int clients, std::size_t window, Clock::time_point deadline,
           Level& level) {
    Driver driver(window, level);
    if (driver.connect(socket, clients)) {
        driver.run(deadline);
    }
}

std::uint32_t percentile(std::vector<std::uint32_t>& values, double p) {
    if (values.empty()) {
        return 0;
    }
    auto at = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
    std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(at),
                     values.end());
    return values[at];
}

// "1,8,64" → {1, 8, 64}; every number positive.
std::vector<int> numbers(const std::string& list) {
    std::vector<int> out;
    for (std::size_t start = 0; start <= list.size();) {
        std::size_t comma = std::min(list.find(',', start), list.size());
        int value = 0;
        const char* first = list.data() + start;
        const char* last = list.data() + comma;
        auto [end, error] = std::from_chars(first, last, value);
        if (error != std::errc() || end != last || value <= 0) {
            throw std::invalid_argument("not a list of positive numbers: '" + list + "'");
        }
        out.push_back(value);
        start = comma + 1;
    }
    return out;
}

Options parse(int argc, char** argv) {
    Options options;
    bool windows_given = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto next = [&]() -> std::string {
            return i + 1 < argc ? argv[++i] : "";
        };
        if (arg == "--seconds") {
            options.seconds = std::stod(next());
        } else if (arg == "--dir") {
            options.dir = next();
        } else if (arg == "--relaxed") {
            options.relaxed = true;
        } else if (arg == "--noisy") {
            options.noisy = true;
        } else if (arg == "--clients") {
            options.clients = numbers(next());
        } else if (arg == "--window") {
            options.windows = numbers(next());
            windows_given = true;
        } else if (arg == "--flowgated") {
            options.flowgated = next();
        } else if (arg == "--sign") {
            options.sign = true;
        } else if (arg == "--compare") {
            options.compare = true;
        } else if (arg == "--open-loop") {
            options.open_loop = true;
        } else if (arg == "--load") {
            options.load = std::stod(next());
        } else if (arg == "--rate") {
            options.rate = std::stod(next());
        } else if (arg == "--open-seconds") {
            options.open_seconds = std::stod(next());
        } else if (arg == "--ship") {
            options.ship_to = next();
        } else {
            std::fprintf(
                stderr,
                "usage: bench_daemon [--seconds S] [--clients 1,8,64] "
                "[--window 8,8,3] [--dir DIR] [--relaxed] [--flowgated PATH] [--sign]\n"
                "       bench_daemon --noisy [--seconds S] [--dir DIR] "
                "[--relaxed]\n"
                "       bench_daemon --compare [--seconds S] [--clients 1,8,64] "
                "[--window 1,8,3] [--dir DIR]\n"
                "       bench_daemon --open-loop [--load 0.7 | --rate N] [--open-seconds 60] "
                "[--seconds S] [--dir DIR] [--relaxed]\n"
                "       bench_daemon --ship URI [--seconds S] [--clients 1,8,64] "
                "[--window 8,8,3] [--dir DIR] [--relaxed]\n");
            std::exit(2);
        }
    }
    if (options.compare && !windows_given) {
        options.windows = {1, 8, 3}; // one request at a time first: the fsync-bound case
    }
    return options;
}

// Runs `flowgated --config CONFIG --init-store`: true once it made the store.
bool init_store(const fs::path& config) {
    pid_t initialiser = ::fork();
    if (initialiser == 0) {
        ::execl(flowgated_path.c_str(), flowgated_path.c_str(), "--config", config.c_str(),
                "--init-store", nullptr);
        ::_exit(127);
    }
    int status = 0;
    return initialiser > 0 && ::waitpid(initialiser, &status, 0) == initialiser &&
           WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The processor time in a /proc stat line: utime + stime (fields 14 and 15, counted
// after the name), in seconds; negative when the line has no name.
double stat_cpu_seconds(const std::string& stat) {
    const auto after_name = stat.rfind(')');
    if (after_name == std::string::npos) {
        return -1;
    }
    std::istringstream fields(stat.substr(after_name + 2));
    std::string field;
    double ticks = 0;
    for (int number = 3; number <= 15 && fields >> field; ++number) {
        if (number >= 14) {
            ticks += std::strtod(field.c_str(), nullptr);
        }
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string read_stat(const fs::path& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The processor time a process has used so far, all its threads (/proc/PID/stat): the
// figure of a daemon's work that depends least on what else the machine runs. Negative
// when it cannot be read.
double process_cpu_seconds(pid_t pid) {
    return stat_cpu_seconds(read_stat("/proc/" + std::to_string(pid) + "/stat"));
}

// The processor time of each of a process's threads so far, by thread name (threads of
// one name added up): flowgated names its audit writer, WAL checkpointer and policy
// loader; the serving thread keeps the process's name.
std::map<std::string, double> thread_cpu_seconds(pid_t pid) {
    std::map<std::string, double> seconds;
    std::error_code error;
    const fs::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : fs::directory_iterator(tasks, error)) {
        const std::string stat = read_stat(task.path() / "stat");
        const auto open = stat.find('(');
        const auto close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos || close < open) {
            continue;
        }
        seconds[stat.substr(open + 1, close - open - 1)] += stat_cpu_seconds(stat);
    }
    return seconds;
}

// "name 57%, ..." : each thread's share of one processor between two readings.
std::string thread_shares(const std::map<std::string, double>& before,
                          const std::map<std::string, double>& after, double elapsed) {
    std::string shares;
    for (const auto& [name, seconds] : after) {
        const auto earlier = before.find(name);
        const double used = seconds - (earlier == before.end() ? 0.0 : earlier->second);
        shares += (shares.empty() ? "" : ", ") + name + " " +
                  std::to_string(static_cast<int>(100 * used / elapsed + 0.5)) + "%";
    }
    return shares;
}

// One level's figures.
struct LevelResult {
    int clients = 0;
    std::size_t window = 0;
    double rate = 0; // committed decisions (or, for the line server, answers) per second
    double p50_ms = 0;
    double p99_ms = 0;
};

// A figure of the audit store's from flowgated's status (none: not flowgated).
std::optional<std::int64_t> audit_figure(flowgate::client::Client* client, std::string_view name) {
    if (client == nullptr) {
        return std::nullopt;
    }
    auto answer = client->request(json::object{{"op", "status"}});
    if (!answer) {
        return std::nullopt;
    }
    return answer.value->at("audit").at(name).to_number<std::int64_t>();
}

std::optional<std::int64_t> audit_transactions(flowgate::client::Client* client) {
    return audit_figure(client, "transactions");
}

// The levels of --clients and --window, one after the other, against the server at
// `socket`; `pid` is its process, whose processor time per decision each level reports.
// `client`, when the server is flowgated, reads its transactions from status.
std::vector<LevelResult> run_levels(const Options& options, const fs::path& socket,
                                    flowgate::client::Client* client, pid_t pid, int& status_code) {
    std::printf("%8s %7s %12s %14s %10s %10s %12s %14s\n", "clients", "window", "decisions",
                "decisions/s", "p50 ms", "p99 ms", "transactions", "server us/dec");
    std::vector<LevelResult> results;
    for (std::size_t level = 0; level < options.clients.size(); ++level) {
        const int clients = options.clients[level];
        const auto window =
            static_cast<std::size_t>(options.windows[std::min(level, options.windows.size() - 1)]);
        const auto before = audit_transactions(client);
        const double cpu_before = process_cpu_seconds(pid);
        const auto threads_before = thread_cpu_seconds(pid);
        Level total;
        const auto started = Clock::now();
        const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options.seconds));
        drive(socket.string(), clients, window, deadline, total);
        const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
        const double cpu = process_cpu_seconds(pid) - cpu_before;
        const auto threads_after = thread_cpu_seconds(pid);
        const auto after = audit_transactions(client);
        const std::int64_t transactions = before && after ? *after - *before : 0;
        LevelResult result{clients, window, static_cast<double>(total.decisions) / elapsed,
                           percentile(total.latencies_us, 0.50) / 1000.0,
                           percentile(total.latencies_us, 0.99) / 1000.0};
        const double cpu_us_per_decision = total.decisions > 0 && cpu_before >= 0
                                               ? cpu * 1e6 / static_cast<double>(total.decisions)
                                               : 0;
        std::printf("%8d %7zu %12llu %14.0f %10.3f %10.2f %12lld %14.1f\n", clients, window,
                    static_cast<unsigned long long>(total.decisions), result.rate, result.p50_ms,
                    result.p99_ms, static_cast<long long>(transactions), cpu_us_per_decision);
        if (client != nullptr) {
            std::printf("%17s threads, share of a processor: %s\n", "",
                        thread_shares(threads_before, threads_after, elapsed).c_str());
        }
        std::fflush(stdout);
        if (!total.failure.empty() || total.not_durable != 0) {
            std::fprintf(stderr, "level %d: %s; %llu answers without a committed row\n", clients,
                         total.failure.c_str(), static_cast<unsigned long long>(total.not_durable));
            status_code = 1;
        }
        results.push_back(result);
    }
    return results;
}

// --noisy: the neighbours. Each flooder owns one connection at a time on its own thread,
// so its writes never delay the load generator's handling of the measured clients.
enum class Flood { none, valid, junk };

constexpr std::size_t flood_window = 4096;     // valid checks the flooder keeps in flight
constexpr std::size_t junk_line_bytes = 65536; // 65535 bytes of 'x', then '\n'
constexpr int measured_clients = 8;
constexpr std::size_t measured_window = 8;

// What a flooder did, read by the measuring thread while it runs.
struct FloodCounters {
    std::atomic<std::uint64_t> lines{0};      // request lines written whole
    std::atomic<std::uint64_t> decisions{0};  // answers carrying an audit_seq
    std::atomic<std::uint64_t> reconnects{0}; // connections opened again after one ended
    std::atomic<std::uint64_t> refused{0};    // too_many_connections answers
};

// Floods one connection until the daemon ends it or `stop` is set, reading every answer
// as it comes (a flooder that did not read would be cut off for that, not for its
// flood). After a failed write it reads on, to take what the daemon said before it
// closed. True if the daemon refused the connection (too_many_connections).
bool flood_connection(int fd, Flood kind, const std::atomic<bool>& stop, FloodCounters& counters) {
    static const std::string junk = std::string(junk_line_bytes - 1, 'x') + "\n";
    static const std::vector<std::string> bodies = request_lines();
    std::string out;
    std::string_view pending;
    std::uint64_t pending_lines = 0;
    std::string in;
    std::uint64_t queued = 0;
    std::uint64_t answered = 0;
    bool writing = true;
    bool refused = false;
    while (!stop.load(std::memory_order_relaxed)) {
        if (writing && pending.empty()) {
            pending_lines = 0;
            if (kind == Flood::junk) {
                pending = junk;
                pending_lines = 1;
            } else {
                out.clear();
                while (queued - answered < flood_window && out.size() < 65536) {
                    const std::string& body = bodies[queued % bodies.size()];
                    out.append(body, 0, body.size() - 1);
                    out += ",\"id\":";
                    out += std::to_string(queued);
                    out += "}\n";
                    ++queued;
                    ++pending_lines;
                }
                pending = out;
            }
        }
        const bool to_send = writing && !pending.empty();
        pollfd waiting{fd, static_cast<short>(POLLIN | (to_send ? POLLOUT : 0)), 0};
        if (::poll(&waiting, 1, 10) < 0 && errno != EINTR) {
            return refused;
        }
        if ((waiting.revents & POLLOUT) != 0 && to_send) {
            ssize_t n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                pending.remove_prefix(static_cast<std::size_t>(n));
                if (pending.empty()) {
                    counters.lines += pending_lines;
                }
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                writing = false;
            }
        }
        if ((waiting.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            char chunk[65536];
            ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                return refused;
            }
            in.append(chunk, n > 0 ? static_cast<std::size_t>(n) : 0);
            std::size_t start = 0;
            for (std::size_t newline; (newline = in.find('\n', start)) != std::string::npos;
                 start = newline + 1) {
                std::string_view answer(in.data() + start, newline - start);
                ++answered;
                if (answer.find("too_many_connections") != std::string_view::npos) {
                    refused = true;
                    ++counters.refused;
                } else if (kind == Flood::valid && is_durable(answer)) {
                    ++counters.decisions;
                }
            }
            in.erase(0, start);
        }
    }
    return refused;
}

// The flooder's thread: floods, and whenever the daemon ends its connection, connects
// again and goes on, as an adversary would; a refused connection waits 1 ms first.
void flood(const std::string& socket, Flood kind, const std::atomic<bool>& stop,
           FloodCounters& counters) {
    while (!stop.load(std::memory_order_relaxed)) {
        int fd = connect_to(socket);
        if (fd < 0) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        const bool refused = flood_connection(fd, kind, stop, counters);
        ::close(fd);
        if (stop.load(std::memory_order_relaxed)) {
            break;
        }
        ++counters.reconnects;
        if (refused) {
            std::this_thread::sleep_for(1ms);
        }
    }
}

// audit.db and its WAL together, in bytes.
std::uint64_t store_bytes(const fs::path& db) {
    std::uint64_t total = 0;
    for (const fs::path& file : {db, fs::path(db.string() + "-wal")}) {
        std::error_code error;
        const std::uintmax_t size = fs::file_size(file, error);
        total += error ? 0 : static_cast<std::uint64_t>(size);
    }
    return total;
}

// The store's row count as the daemon reports it, or nothing if it did not answer.
std::optional<std::int64_t> audit_records(flowgate::client::Client& client) {
    auto status = client.request(json::object{{"op", "status"}});
    if (!status) {
        return std::nullopt;
    }
    return status.value->at("audit").at("records").to_number<std::int64_t>();
}

// Waits (up to 10 s) until the daemon writes no more rows: the previous phase's flood,
// read before its connection closed, must not be counted in the next phase.
void settle(flowgate::client::Client& client) {
    std::optional<std::int64_t> before = audit_records(client);
    for (int i = 0; i < 100; ++i) {
        std::this_thread::sleep_for(100ms);
        std::optional<std::int64_t> now = audit_records(client);
        if (!now || now == before) {
            return;
        }
        before = now;
    }
}

struct Phase {
    const char* name = "";
    Flood kind = Flood::none;
    Level clients;
    double seconds = 0;
    double flood_decisions = 0; // per second
    double flood_lines = 0;     // per second
    std::uint64_t reconnects = 0;
    std::uint64_t refused = 0;
    double store_growth = 0;    // bytes per second, audit.db + WAL
    std::optional<double> rows; // per second, as the daemon counts them

    double throughput() const {
        return seconds > 0 ? static_cast<double>(clients.decisions) / seconds : 0;
    }
};

// One phase: the eight clients measured for `seconds` while `kind` floods beside them
// (started a moment before the measuring, so that it is in full flow throughout); or,
// without `clients`, the flood alone, for what it alone adds to the store.
Phase run_phase(const char* name, Flood kind, bool clients, double seconds, const fs::path& socket,
                const fs::path& db, flowgate::client::Client& client) {
    Phase phase;
    phase.name = name;
    phase.kind = kind;
    settle(client);
    FloodCounters counters;
    std::atomic<bool> stop{false};
    std::thread flooder;
    if (kind != Flood::none) {
        flooder = std::thread(flood, socket.string(), kind, std::cref(stop), std::ref(counters));
        std::this_thread::sleep_for(200ms);
    }
    const std::uint64_t lines = counters.lines;
    const std::uint64_t decisions = counters.decisions;
    const std::uint64_t reconnects = counters.reconnects;
    const std::uint64_t refused = counters.refused;
    const std::optional<std::int64_t> records = audit_records(client);
    const std::uint64_t bytes = store_bytes(db);
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(seconds));
    if (clients) {
        drive(socket.string(), measured_clients, measured_window, deadline, phase.clients);
    } else {
        std::this_thread::sleep_until(deadline);
    }
    phase.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const auto grown = static_cast<double>(store_bytes(db)) - static_cast<double>(bytes);
    phase.store_growth = grown / phase.seconds;
    phase.flood_lines = static_cast<double>(counters.lines - lines) / phase.seconds;
    phase.flood_decisions = static_cast<double>(counters.decisions - decisions) / phase.seconds;
    phase.reconnects = counters.reconnects - reconnects;
    phase.refused = counters.refused - refused;
    const std::optional<std::int64_t> records_after = audit_records(client);
    if (records && records_after) {
        phase.rows = static_cast<double>(*records_after - *records) / phase.seconds;
    }
    stop = true;
    if (flooder.joinable()) {
        flooder.join();
    }
    return phase;
}

void print_target(const char* phase, const std::string& what, bool met) {
    std::printf("  %-17s %-52s %s\n", phase, what.c_str(), met ? "PASS" : "FAIL");
}

std::string format(const char* pattern, double value, double bound) {
    char text[96];
    std::snprintf(text, sizeof text, pattern, value, bound);
    return text;
}

int run_noisy(const Options& options, const fs::path& socket, const fs::path& db,
              flowgate::client::Client& client) {
    std::printf("flowgated %s, store %s (durability %s)\n", flowgated_path.c_str(), db.c_str(),
                options.relaxed ? "relaxed" : "full");
    std::printf("%d clients x window %zu measured for %.0f s per phase; valid flood: one "
                "connection, %zu checks in flight; junk flood: one connection, %zu-byte "
                "lines, reconnecting when cut off\n",
                measured_clients, measured_window, options.seconds, flood_window, junk_line_bytes);
    std::printf("%-12s %12s %8s %8s %7s   %-36s %14s %10s\n", "phase", "decisions/s", "p50 ms",
                "p99 ms", "kept", "flooder", "store bytes/s", "rows/s");
    std::fflush(stdout);
    struct Planned {
        const char* name;
        Flood kind;
        bool clients;
    };
    const Planned plan[] = {{"alone", Flood::none, true},
                            {"valid flood", Flood::valid, true},
                            {"junk flood", Flood::junk, true},
                            {"junk only", Flood::junk, false}};
    std::vector<Phase> phases;
    phases.reserve(std::size(plan));
    int status_code = 0;
    for (const auto& [name, kind, clients] : plan) {
        Phase& phase = phases.emplace_back(
            run_phase(name, kind, clients, options.seconds, socket, db, client));
        const double alone = phases.front().throughput();
        char flooder[64] = "-";
        if (phase.kind == Flood::valid) {
            std::snprintf(flooder, sizeof flooder, "%.0f decisions/s", phase.flood_decisions);
        } else if (phase.kind == Flood::junk) {
            std::snprintf(flooder, sizeof flooder, "%.0f lines/s, %llu reconnects",
                          phase.flood_lines, static_cast<unsigned long long>(phase.reconnects));
        }
        char rows[32] = "-";
        if (phase.rows) {
            std::snprintf(rows, sizeof rows, "%.0f", *phase.rows);
        }
        const double kept = alone > 0 ? 100.0 * phase.throughput() / alone : 0;
        std::printf("%-12s %12.0f %8.2f %8.2f %6.0f%%   %-36s %14.0f %10s\n", phase.name,
                    phase.throughput(), percentile(phase.clients.latencies_us, 0.50) / 1000.0,
                    percentile(phase.clients.latencies_us, 0.99) / 1000.0, kept, flooder,
                    phase.store_growth, rows);
        std::fflush(stdout);
        if (!phase.clients.failure.empty() || phase.clients.not_durable != 0) {
            std::fprintf(stderr, "%s: %s; %llu answers without a committed row\n", phase.name,
                         phase.clients.failure.c_str(),
                         static_cast<unsigned long long>(phase.clients.not_durable));
            status_code = 1;
        }
    }
    std::printf("store bytes/s: the growth of audit.db plus audit.db-wal over the phase (the WAL "
                "is counted: until it first restarts after a checkpoint its file grows as "
                "well); rows/s as the daemon counts them\n");
    if (phases[2].refused + phases[3].refused != 0) {
        std::printf("the junk flooder was refused a connection %llu times\n",
                    static_cast<unsigned long long>(phases[2].refused + phases[3].refused));
    }
    const double alone = phases.front().throughput();
    std::printf("targets (reported, not enforced):\n");
    for (std::size_t i = 1; i < 3; ++i) {
        const Phase& phase = phases[i];
        const double kept = alone > 0 ? 100.0 * phase.throughput() / alone : 0;
        const double p99 = percentile(phases[i].clients.latencies_us, 0.99) / 1000.0;
        print_target(phase.name, format("throughput kept %.0f%% >= %.0f%%", kept, 50), kept >= 50);
        print_target(phase.name, format("p99 %.2f ms < %.0f ms", p99, 10), p99 < 10);
    }
    // What the junk adds to the store, without the eight clients' own decisions.
    const double junk_growth = phases[3].store_growth / 1e6;
    print_target(phases[3].name, format("store growth %.2f MB/s <= %.0f MB/s", junk_growth, 1),
                 junk_growth <= 1);
    return status_code;
}
// The last lines of flowgated's log, on stderr, when a run failed.
void print_tail(const fs::path& log) {
    std::ifstream in(log);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        lines.push_back(std::move(line));
    }
    const std::size_t from = lines.size() > 20 ? lines.size() - 20 : 0;
    std::fprintf(stderr, "the end of flowgated's log:\n");
    for (std::size_t i = from; i < lines.size(); ++i) {
        std::fprintf(stderr, "  %s\n", lines[i].c_str());
    }
}

// A flowgated this benchmark started on a store of its own: its process, socket, store,
// log and a client for status.
struct Daemon {
    pid_t pid = -1;
    fs::path dir;
    fs::path socket;
    fs::path db;
    fs::path log;
    std::optional<flowgate::client::Client> client;
};

// A new directory in DIR for one server.
std::optional<fs::path> new_run_dir(const fs::path& in) {
    std::string pattern = (in / "bench-flowgated-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("mkdtemp");
        return std::nullopt;
    }
    return fs::path(pattern);
}

// Makes a store as an admin makes one (flowgated --init-store), then starts the daemon
// that serves it; its log goes to a file when `log_to_file` (as to a journal, at the same
// cost), not into the table.
std::optional<Daemon> start_daemon(const Options& options, bool relaxed, bool log_to_file) {
    auto dir = new_run_dir(options.dir);
    if (!dir) {
        return std::nullopt;
    }
    Daemon daemon;
    daemon.dir = *dir;
    daemon.socket = daemon.dir / "flowgated.sock";
    daemon.db = daemon.dir / "audit.db";
    daemon.log = daemon.dir / "flowgated.log";
    const fs::path config = daemon.dir / "flowgated.toml";
    {
        std::ofstream out(config);
        out << "socket = \"" << daemon.socket.string() << "\"\npolicy = \"" << FLOWGATE_SOURCE_DIR
            << "/policies\"\naudit_db = \"" << daemon.db.string() << "\"\ndurability = \""
            << (relaxed ? "relaxed" : "full") << "\"\nlog_level = \"warn\"\n";
        if (options.sign) {
            const fs::path key_file = daemon.dir / "signing.key";
            auto key = flowgate::audit::generate_signing_key("bench.flowgate/log");
            if (!key) {
                std::fprintf(stderr, "cannot make a signing key\n");
                return std::nullopt;
            }
            std::ofstream(key_file) << key.value().private_key_text() << "\n";
            fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write);
            out << "signing_key = \"" << key_file.string() << "\"\n";
        }
    }
    if (!init_store(config)) {
        std::fprintf(stderr, "flowgated --init-store failed\n");
        return std::nullopt;
    }
    daemon.pid = ::fork();
    if (daemon.pid == 0) {
        if (log_to_file) {
            int out = ::open(daemon.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (out >= 0) {
                ::dup2(out, STDERR_FILENO);
            }
        }
        ::execl(flowgated_path.c_str(), flowgated_path.c_str(), "--config", config.c_str(),
                nullptr);
        ::_exit(127);
    }
    for (int i = 0; i < 500 && !daemon.client; ++i) {
        if (auto connected = flowgate::client::Client::connect(daemon.socket.string())) {
            daemon.client = std::move(*connected.value);
        } else {
            std::this_thread::sleep_for(20ms);
        }
    }
    if (!daemon.client) {
        std::fprintf(stderr, "flowgated did not start\n");
        ::kill(daemon.pid, SIGKILL);
        ::waitpid(daemon.pid, nullptr, 0);
        return std::nullopt;
    }
    return daemon;
}

// SIGTERM, and its exit: 0 when it stopped cleanly.
int stop_daemon(Daemon& daemon) {
    daemon.client.reset();
    ::kill(daemon.pid, SIGTERM);
    int status = 0;
    ::waitpid(daemon.pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "flowgated did not stop cleanly (status %d)\n", status);
        return 1;
    }
    return 0;
}

// `flowgate audit ship DB --to URI --follow` beside the daemon, and a thread that samples
// how far the central store is behind the host's store.
class ShipLag {
public:
    static std::optional<ShipLag> start(const fs::path& db, const std::string& uri,
                                        const fs::path& dir) {
        auto conn = flowgate::central::Connection::open(uri);
        sqlite3* host = nullptr;
        if (!conn ||
            sqlite3_open_v2(db.c_str(), &host, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
            std::fprintf(stderr, "bench_daemon --ship: cannot open %s or %s\n", db.c_str(),
                         uri.c_str());
            sqlite3_close(host);
            return std::nullopt;
        }
        const fs::path log = dir / "ship.log";
        const pid_t pid = ::fork();
        if (pid == 0) {
            const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(out, 1);
            ::dup2(out, 2);
            ::execl(FLOWGATE_PATH, FLOWGATE_PATH, "audit", "ship", db.c_str(), "--to", uri.c_str(),
                    "--follow", "--interval", "0.1", nullptr);
            ::_exit(127);
        }
        if (pid < 0) {
            sqlite3_close(host);
            return std::nullopt;
        }
        return ShipLag(pid, std::move(conn).value(), host, log);
    }

    ShipLag(ShipLag&& other) noexcept
        : m_pid(std::exchange(other.m_pid, -1)), m_conn(std::move(other.m_conn)),
          m_host(std::exchange(other.m_host, nullptr)), m_log(std::move(other.m_log)) {}
    ShipLag& operator=(ShipLag&&) = delete;
    ~ShipLag() {
        stop_sampling();
        if (m_pid > 0) {
            ::kill(m_pid, SIGTERM);
            ::waitpid(m_pid, nullptr, 0);
        }
        sqlite3_close(m_host);
    }

    void sample_in_background() {
        m_sampler = std::thread([this] {
            while (!m_stop.load()) {
                sample(true);
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        });
    }

    // Stops sampling, waits (up to 60 s) for the central store to hold every row, stops the
    // shipper and prints the figures.
    int finish() {
        stop_sampling();
        const auto load_ended = std::chrono::steady_clock::now();
        std::optional<double> caught_up;
        while (std::chrono::steady_clock::now() - load_ended < std::chrono::seconds(60)) {
            const auto [behind, age] = sample(false);
            if (behind == 0) {
                caught_up =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - load_ended)
                        .count();
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ::kill(m_pid, SIGTERM);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
        if (m_behind.empty()) {
            std::printf("ship lag: no samples\n");
            return 1;
        }
        std::printf("ship lag: %zu samples under load: rows behind p50 %u, p99 %u, max %u; "
                    "newest central row's age p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
                    m_behind.size(), percentile(m_behind, 0.50), percentile(m_behind, 0.99),
                    percentile(m_behind, 1.0), percentile(m_age_us, 0.50) / 1000.0,
                    percentile(m_age_us, 0.99) / 1000.0, percentile(m_age_us, 1.0) / 1000.0);
        if (!caught_up) {
            std::printf("ship lag: the central store did not catch up within 60 s (%s)\n",
                        m_log.c_str());
            return 1;
        }
        std::printf("ship lag: caught up %.2f s after the load ended; shipper exit %d\n",
                    *caught_up, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    }

private:
    ShipLag(pid_t pid, flowgate::central::Connection conn, sqlite3* host, fs::path log)
        : m_pid(pid), m_conn(std::move(conn)), m_host(host), m_log(std::move(log)) {}

    void stop_sampling() {
        m_stop = true;
        if (m_sampler.joinable()) {
            m_sampler.join();
        }
    }

    // Rows the central store is behind, and its newest row's age in µs (kept when `keep`).
    std::pair<std::uint64_t, std::uint64_t> sample(bool keep) {
        std::uint64_t host_seq = 0;
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(m_host, "SELECT max(seq) FROM audit_log", -1, &stmt, nullptr) ==
                SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            host_seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
        }
        sqlite3_finalize(stmt);
        auto central = m_conn.exec("SELECT coalesce(max(seq), 0), coalesce(max(time_us), 0) "
                                   "FROM flowgate_log");
        if (!central) {
            return {host_seq, 0}; // the shipper has not made the tables yet
        }
        const std::uint64_t central_seq =
            std::strtoull(PQgetvalue(central.value().get(), 0, 0), nullptr, 10);
        const std::int64_t newest_us =
            std::strtoll(PQgetvalue(central.value().get(), 0, 1), nullptr, 10);
        const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        const std::uint64_t behind = host_seq > central_seq ? host_seq - central_seq : 0;
        const std::uint64_t age = newest_us > 0 && now_us > newest_us
                                      ? static_cast<std::uint64_t>(now_us - newest_us)
                                      : 0;
        if (keep && central_seq > 0) {
            m_behind.push_back(static_cast<std::uint32_t>(behind));
            m_age_us.push_back(
                static_cast<std::uint32_t>(std::min<std::uint64_t>(age, UINT32_MAX)));
        }
        return {behind, age};
    }

    pid_t m_pid = -1;
    flowgate::central::Connection m_conn;
    sqlite3* m_host = nullptr;
    fs::path m_log;
    std::thread m_sampler;
    std::atomic<bool> m_stop{false};
    std::vector<std::uint32_t> m_behind;
    std::vector<std::uint32_t> m_age_us;
};

// The store's pages in use over its rows (after the daemon stopped): what a decision
// costs on disk, its share of the tree, texts and checkpoints included.
std::optional<double> bytes_per_row(const fs::path& db) {
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close(raw);
        return std::nullopt;
    }
    auto number = [raw](const char* sql) -> double {
        sqlite3_stmt* stmt = nullptr;
        double value = 0;
        if (sqlite3_prepare_v2(raw, sql, -1, &stmt, nullptr) == SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW) {
            value = sqlite3_column_double(stmt, 0);
        }
        sqlite3_finalize(stmt);
        return value;
    };
    const double pages = number("PRAGMA page_count") - number("PRAGMA freelist_count");
    const double bytes = pages * number("PRAGMA page_size");
    const double rows = number("SELECT COUNT(*) FROM audit_log");
    sqlite3_close(raw);
    if (rows <= 0) {
        return std::nullopt;
    }
    return bytes / rows;
}

// The filesystem's durable write: 300 bytes written and fdatasync'ed, `rounds` times, in
// a file in DIR written whole and synced first, so that no write changes its size (as a
// WAL, which starts over from its beginning, is written).
struct FsyncLatency {
    double p50_ms = 0;
    double mean_ms = 0;
};

std::optional<FsyncLatency> fsync_latency(const fs::path& dir, int rounds = 200) {
    const fs::path file = dir / "fsync-probe";
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return std::nullopt;
    }
    const std::string bytes(300, 'x');
    for (int i = 0; i < rounds; ++i) {
        if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
            ::close(fd);
            return std::nullopt;
        }
    }
    if (::fsync(fd) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    std::vector<std::uint32_t> latencies;
    double total = 0;
    for (int i = 0; i < rounds; ++i) {
        const auto started = Clock::now();
        if (::pwrite(fd, bytes.data(), bytes.size(),
                     static_cast<off_t>(i) * static_cast<off_t>(bytes.size())) !=
                static_cast<ssize_t>(bytes.size()) ||
            ::fdatasync(fd) != 0) {
            ::close(fd);
            return std::nullopt;
        }
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
        latencies.push_back(static_cast<std::uint32_t>(us));
        total += static_cast<double>(us);
    }
    ::close(fd);
    std::error_code ignored;
    fs::remove(file, ignored);
    return FsyncLatency{percentile(latencies, 0.5) / 1000.0, total / rounds / 1000.0};
}

// SQLite's own ceiling on the same filesystem: 300-byte rows into a plain table (WAL,
// synchronous=FULL, as the store in `full`), `batch` rows a transaction, for `seconds`;
// committed rows per second.
std::optional<double> sqlite_rows_per_second(const fs::path& dir, int batch, double seconds) {
    const fs::path file = dir / ("sqlite-probe-" + std::to_string(batch) + ".db");
    sqlite3* raw = nullptr;
    if (sqlite3_open(file.c_str(), &raw) != SQLITE_OK) {
        sqlite3_close(raw);
        return std::nullopt;
    }
    sqlite3_stmt* insert = nullptr;
    const bool ready =
        sqlite3_exec(raw,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                     "CREATE TABLE rows (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);",
                     nullptr, nullptr, nullptr) == SQLITE_OK &&
        sqlite3_prepare_v2(raw, "INSERT INTO rows (body) VALUES (?1)", -1, &insert, nullptr) ==
            SQLITE_OK;
    const std::string body(300, 'x');
    std::uint64_t rows = 0;
    const auto started = Clock::now();
    const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(seconds));
    bool failed = !ready;
    while (!failed && Clock::now() < deadline) {
        failed = sqlite3_exec(raw, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK;
        for (int i = 0; i < batch && !failed; ++i) {
            sqlite3_bind_text(insert, 1, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
            failed = sqlite3_step(insert) != SQLITE_DONE;
            sqlite3_reset(insert);
        }
        failed = failed || sqlite3_exec(raw, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK;
        rows += static_cast<std::uint64_t>(batch);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    sqlite3_finalize(insert);
    sqlite3_close(raw);
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        fs::remove(file.string() + suffix, ignored);
    }
    if (failed) {
        return std::nullopt;
    }
    return static_cast<double>(rows) / elapsed;
}

// The socket's ceiling: a server of one thread (epoll) that answers every line with one
// fixed answer, as fast as lines come. Runs in a child process, killed when done.
pid_t start_line_server(const fs::path& socket) {
    const pid_t pid = ::fork();
    if (pid != 0) {
        return pid;
    }
    int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, socket.c_str(), socket.string().size() + 1);
    if (listener < 0 ||
        ::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener, 128) != 0) {
        ::_exit(1);
    }
    static constexpr std::string_view answer = R"({"decision":"allow","audit_seq":1})"
                                               "\n";
    struct Peer {
        int fd = -1;
        std::string out;
    };
    std::vector<Peer> peers(1024);
    const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = listener;
    ::epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    std::vector<epoll_event> events(256);
    char chunk[65536];
    for (;;) {
        const int ready = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
        for (int e = 0; e < ready; ++e) {
            const int fd = events[e].data.fd;
            if (fd == listener) {
                for (int peer; (peer = ::accept4(listener, nullptr, nullptr,
                                                 SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;) {
                    if (static_cast<std::size_t>(peer) >= peers.size()) {
                        peers.resize(static_cast<std::size_t>(peer) + 1);
                    }
                    peers[static_cast<std::size_t>(peer)] = Peer{peer, {}};
                    epoll_event added{};
                    added.events = EPOLLIN;
                    added.data.fd = peer;
                    ::epoll_ctl(epoll, EPOLL_CTL_ADD, peer, &added);
                }
                continue;
            }
            Peer& peer = peers[static_cast<std::size_t>(fd)];
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0) {
                if (n == 0 || errno != EAGAIN) {
                    ::close(fd);
                }
                continue;
            }
            for (ssize_t i = 0; i < n; ++i) {
                if (chunk[i] == '\n') {
                    peer.out += answer;
                }
            }
            while (!peer.out.empty()) {
                const ssize_t sent = ::send(fd, peer.out.data(), peer.out.size(), MSG_NOSIGNAL);
                if (sent <= 0) {
                    break; // the load generator reads as it sends: drop what does not fit
                }
                peer.out.erase(0, static_cast<std::size_t>(sent));
            }
        }
    }
}

// The open loop's generator wakes at most once in this long (a check is due every 25 µs
// at 40,000/s): each wake-up sends what has come due since the last.
constexpr std::chrono::microseconds open_loop_tick{100};

// --open-loop: checks sent at a fixed rate over `clients` connections, whatever the
// answers do; each one's latency from the time it was due.
class OpenLoop {
public:
    explicit OpenLoop(Level& level) : m_level(level) {}
    ~OpenLoop() {
        for (Peer& peer : m_peers) {
            ::close(peer.fd);
        }
        if (m_epoll >= 0) {
            ::close(m_epoll);
        }
    }

    bool connect(const std::string& socket, int clients) {
        m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
        m_peers.resize(static_cast<std::size_t>(clients));
        for (std::size_t i = 0; i < m_peers.size(); ++i) {
            m_peers[i].fd = connect_to(socket);
            if (m_peers[i].fd < 0 || m_epoll < 0) {
                m_level.failure = "cannot connect: " + std::string(std::strerror(errno));
                return false;
            }
            epoll_event event{};
            event.events = EPOLLIN;
            event.data.u64 = i;
            ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_peers[i].fd, &event);
        }
        return true;
    }

    // How late each check went out (µs), in the order sent.
    std::vector<std::uint32_t>& lateness_us() { return m_late_us; }

    void run(double rate, double seconds) {
        static const std::vector<std::string> bodies = request_lines();
        const auto started = Clock::now();
        const auto interval = std::chrono::duration<double>(1.0 / rate);
        const auto total = static_cast<std::uint64_t>(rate * seconds);
        std::uint64_t sent = 0;
        std::vector<epoll_event> events(m_peers.size());
        while (sent < total || m_answered < sent) {
            const auto now = Clock::now();
            while (sent < total) {
                const auto due = started + std::chrono::duration_cast<Clock::duration>(
                                               interval * static_cast<double>(sent));
                if (due > now) {
                    break;
                }
                Peer& peer = m_peers[sent % m_peers.size()];
                const std::string& body = bodies[sent % bodies.size()];
                peer.out.append(body, 0, body.size() - 1);
                peer.out += ",\"id\":" + std::to_string(sent) + "}\n";
                peer.due.push_back(due);
                m_late_us.push_back(static_cast<std::uint32_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(now - due).count()));
                ++sent;
            }
            for (Peer& peer : m_peers) {
                flush(peer);
            }
            // Sleeps until the next check is due, but at least a tick: a generator that
            // polled without sleeping would take a processor from the daemon it measures.
            // Checks due within the tick go out together at its end, late by up to a tick,
            // which their latency counts.
            timespec timeout{10, 0};
            if (sent < total) {
                const auto due = started + std::chrono::duration_cast<Clock::duration>(
                                               interval * static_cast<double>(sent));
                const auto wait = std::max<Clock::duration>(open_loop_tick, due - Clock::now());
                const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
                timeout = timespec{static_cast<time_t>(ns / 1'000'000'000),
                                   static_cast<long>(ns % 1'000'000'000)};
            }
            const int ready = ::epoll_pwait2(m_epoll, events.data(),
                                             static_cast<int>(events.size()), &timeout, nullptr);
            if (ready < 0 || (ready == 0 && sent >= total)) {
                m_level.failure = "no answer within 10 s";
                return;
            }
            for (int e = 0; e < ready; ++e) {
                if (!receive(m_peers[events[e].data.u64])) {
                    return;
                }
            }
        }
    }

private:
    struct Peer {
        int fd = -1;
        std::string out;
        std::string in;
        std::deque<Clock::time_point> due; // of the checks sent and not yet answered
    };

    static void flush(Peer& peer) {
        std::size_t offset = 0;
        while (offset < peer.out.size()) {
            const ssize_t n = ::send(peer.fd, peer.out.data() + offset, peer.out.size() - offset,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0) {
                break;
            }
            offset += static_cast<std::size_t>(n);
        }
        peer.out.erase(0, offset);
    }

    bool receive(Peer& peer) {
        char chunk[65536];
        const ssize_t n = ::recv(peer.fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n == 0) {
            m_level.failure = "flowgated closed the connection";
            return false;
        }
        if (n < 0) {
            return true;
        }
        peer.in.append(chunk, static_cast<std::size_t>(n));
        const auto now = Clock::now();
        std::size_t start = 0;
        for (std::size_t newline; (newline = peer.in.find('\n', start)) != std::string::npos;
             start = newline + 1) {
            const auto latency =
                std::chrono::duration_cast<std::chrono::microseconds>(now - peer.due.front());
            peer.due.pop_front();
            m_level.latencies_us.push_back(static_cast<std::uint32_t>(latency.count()));
            ++m_answered;
            if (is_durable(std::string_view(peer.in.data() + start, newline - start))) {
                ++m_level.decisions;
            } else {
                ++m_level.not_durable;
            }
        }
        peer.in.erase(0, start);
        return true;
    }

    Level& m_level;
    int m_epoll = -1;
    std::vector<Peer> m_peers;
    std::uint64_t m_answered = 0;
    std::vector<std::uint32_t> m_late_us; // how late each check went out, its latency's part
                                          // that is this generator's
};

int run_open_loop(const Options& options, Daemon& daemon) {
    constexpr int clients = 64;
    std::printf("flowgated %s, durability %s\n", flowgated_path.c_str(),
                options.relaxed ? "relaxed" : "full");
    Options closed = options;
    closed.clients = {clients};
    closed.windows = {3};
    int status_code = 0;
    std::printf("the maximum, closed loop, %.0f s:\n", options.seconds);
    const auto maximum =
        run_levels(closed, daemon.socket, &*daemon.client, daemon.pid, status_code);
    if (maximum.empty() || maximum.front().rate <= 0) {
        return 1;
    }
    const double rate = options.rate > 0 ? options.rate : options.load * maximum.front().rate;
    std::printf("open loop: %.0f checks/s (%.0f%% of it) over %d connections for %.0f s\n", rate,
                100 * options.load, clients, options.open_seconds);
    std::fflush(stdout);
    Level level;
    OpenLoop driver(level);
    const double daemon_cpu_before = process_cpu_seconds(daemon.pid);
    const double own_cpu_before = process_cpu_seconds(::getpid());
    const auto threads_before = thread_cpu_seconds(daemon.pid);
    const auto transactions_before = audit_transactions(&*daemon.client);
    const auto slow_before = audit_figure(&*daemon.client, "transactions_over_10ms");
    const auto started = Clock::now();
    if (driver.connect(daemon.socket.string(), clients)) {
        driver.run(rate, options.open_seconds);
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
    const double daemon_cpu = process_cpu_seconds(daemon.pid) - daemon_cpu_before;
    const double own_cpu = process_cpu_seconds(::getpid()) - own_cpu_before;
    const auto threads_after = thread_cpu_seconds(daemon.pid);
    const auto transactions_after = audit_transactions(&*daemon.client);
    const auto slow_after = audit_figure(&*daemon.client, "transactions_over_10ms");
    const auto slowest = audit_figure(&*daemon.client, "slowest_transaction_us");
    if (!level.failure.empty() || level.not_durable != 0) {
        std::fprintf(stderr, "open loop: %s; %llu answers without a committed row\n",
                     level.failure.c_str(), static_cast<unsigned long long>(level.not_durable));
        status_code = 1;
    }
    const double p50 = percentile(level.latencies_us, 0.50) / 1000.0;
    const double p99 = percentile(level.latencies_us, 0.99) / 1000.0;
    const double p999 = percentile(level.latencies_us, 0.999) / 1000.0;
    const double worst = percentile(level.latencies_us, 1.0) / 1000.0;
    std::printf("%12s %10s %10s %10s %10s\n", "decisions", "p50 ms", "p99 ms", "p99.9 ms",
                "max ms");
    std::printf("%12llu %10.3f %10.2f %10.2f %10.2f\n",
                static_cast<unsigned long long>(level.decisions), p50, p99, p999, worst);
    auto& late = driver.lateness_us();
    std::printf("sent late by this generator: p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                percentile(late, 0.99) / 1000.0, percentile(late, 0.999) / 1000.0,
                percentile(late, 1.0) / 1000.0);
    std::printf("processor time: flowgated %.1f s (%.1f us a decision), this generator %.1f s\n",
                daemon_cpu,
                level.decisions > 0 ? 1e6 * daemon_cpu / static_cast<double>(level.decisions) : 0.0,
                own_cpu);
    if (transactions_before && transactions_after && *transactions_after > *transactions_before) {
        const auto transactions = *transactions_after - *transactions_before;
        std::printf("audit transactions: %lld, %.1f decisions a transaction\n",
                    static_cast<long long>(transactions),
                    static_cast<double>(level.decisions) / static_cast<double>(transactions));
    }
    if (slow_before && slow_after && slowest) {
        // A batch's commit holds up every check in it and every one queued behind it.
        std::printf("audit transactions over 10 ms: %lld (the slowest since the daemon "
                    "started: %.2f ms)\n",
                    static_cast<long long>(*slow_after - *slow_before),
                    static_cast<double>(*slowest) / 1000.0);
    }
    std::printf("threads, share of a processor: %s\n",
                thread_shares(threads_before, threads_after, elapsed).c_str());
    std::printf("targets (reported, not enforced):\n");
    print_target("open loop", format("p99.9 %.2f ms < %.0f ms", p999, 10), p999 < 10);
    print_target("open loop", format("slowest %.2f ms < %.0f ms", worst, 50), worst < 50);
    return status_code;
}

// --compare: the filesystem, the socket's ceiling, relaxed and full, in one run.
int run_compare(const Options& options) {
    int status_code = 0;
    auto dir = new_run_dir(options.dir);
    if (!dir) {
        return 1;
    }
    const auto fsync = fsync_latency(*dir);
    if (fsync) {
        std::printf("filesystem of %s: 300 bytes + fdatasync, p50 %.3f ms, mean %.3f ms\n",
                    dir->c_str(), fsync->p50_ms, fsync->mean_ms);
    }
    std::printf("SQLite on it, 300-byte rows, WAL, synchronous=FULL:");
    for (int batch : {64, 256, 1024}) {
        if (auto rate = sqlite_rows_per_second(*dir, batch, 2)) {
            std::printf(" %d a transaction %.0f rows/s;", batch, *rate);
        }
    }
    std::printf("\n");
    std::printf("\nline server (one thread, a fixed answer to every line), %.0f s per level\n",
                options.seconds);
    const fs::path line_socket = *dir / "line.sock";
    const pid_t line = start_line_server(line_socket);
    for (int i = 0; i < 500 && !fs::exists(line_socket); ++i) {
        std::this_thread::sleep_for(10ms);
    }
    const auto ceiling = run_levels(options, line_socket, nullptr, line, status_code);
    ::kill(line, SIGKILL);
    ::waitpid(line, nullptr, 0);

    std::vector<LevelResult> by_durability[2];
    std::optional<double> bytes[2];
    for (int relaxed = 1; relaxed >= 0; --relaxed) {
        auto daemon = start_daemon(options, relaxed != 0, true);
        if (!daemon) {
            return 1;
        }
        std::printf("\nflowgated %s, durability %s\n", flowgated_path.c_str(),
                    relaxed != 0 ? "relaxed" : "full");
        by_durability[relaxed] =
            run_levels(options, daemon->socket, &*daemon->client, daemon->pid, status_code);
        status_code |= stop_daemon(*daemon);
        bytes[relaxed] = bytes_per_row(daemon->db);
        if (bytes[relaxed]) {
            std::printf("store: %.0f bytes per row\n", *bytes[relaxed]);
        }
        std::error_code ignored;
        fs::remove_all(daemon->dir, ignored);
    }
    std::printf("\n%8s %7s %14s %14s %8s %14s %10s\n", "clients", "window", "ceiling/s",
                "relaxed/s", "share", "full/s", "full p99");
    for (std::size_t i = 0; i < ceiling.size(); ++i) {
        const double share = ceiling[i].rate > 0 ? by_durability[1][i].rate / ceiling[i].rate : 0;
        std::printf("%8d %7zu %14.0f %14.0f %7.0f%% %14.0f %10.2f\n", ceiling[i].clients,
                    ceiling[i].window, ceiling[i].rate, by_durability[1][i].rate, 100 * share,
                    by_durability[0][i].rate, by_durability[0][i].p99_ms);
    }
    std::printf("targets (reported, not enforced):\n");
    for (std::size_t i = 0; i < ceiling.size(); ++i) {
        const LevelResult& full = by_durability[0][i];
        const LevelResult& relaxed = by_durability[1][i];
        char what[64];
        if (full.clients == 64 && full.window == 3) {
            std::snprintf(what, sizeof what, "full at 64 x 3");
            print_target(what,
                         format("%.0f decisions/s >= %.0f", full.rate, 170000) + ", " +
                             format("p99 %.2f ms < %.0f ms", full.p99_ms, 5),
                         full.rate >= 170000 && full.p99_ms < 5);
            const double share = ceiling[i].rate > 0 ? relaxed.rate / ceiling[i].rate : 0;
            std::snprintf(what, sizeof what, "relaxed at 64 x 3");
            print_target(what, format("%.0f%% of the ceiling >= %.0f%%", 100 * share, 40),
                         share >= 0.4);
        }
        if (full.clients == 1 && full.window == 1 && fsync) {
            const double ratio = fsync->p50_ms > 0 ? full.p50_ms / fsync->p50_ms : 0;
            print_target("full at 1 x 1",
                         format("p50 %.2f x the filesystem's fdatasync <= %.2f", ratio, 1.25),
                         ratio <= 1.25);
        }
    }
    for (int relaxed = 0; relaxed <= 1; ++relaxed) {
        if (bytes[relaxed]) {
            print_target(relaxed != 0 ? "store, relaxed" : "store, full",
                         format("%.0f bytes per decision <= %.0f", *bytes[relaxed], 400),
                         *bytes[relaxed] <= 400);
        }
    }
    std::error_code ignored;
    fs::remove_all(*dir, ignored);
    return status_code;
}

} // namespace

int main(int argc, char** argv) {
    Options options;
    try {
        options = parse(argc, argv);
        flowgated_path = options.flowgated;
    } catch (const std::exception& e) { // numbers() or std::stod on a bad value
        std::fprintf(stderr, "bench_daemon: %s\n", e.what());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    if (options.compare) {
        return run_compare(options);
    }
    auto daemon = start_daemon(options, options.relaxed, options.noisy || options.open_loop);
    if (!daemon) {
        return 1;
    }
    int status_code = 0;
    if (options.noisy) {
        status_code = run_noisy(options, daemon->socket, daemon->db, *daemon->client);
    } else if (options.open_loop) {
        status_code = run_open_loop(options, *daemon);
    } else {
        std::printf("flowgated %s, store %s (durability %s), %.0f s per level\n",
                    flowgated_path.c_str(), daemon->db.c_str(),
                    options.relaxed ? "relaxed" : "full", options.seconds);
        std::optional<ShipLag> lag = options.ship_to.empty()
                                         ? std::nullopt
                                         : ShipLag::start(daemon->db, options.ship_to, daemon->dir);
        if (!options.ship_to.empty()) {
            if (!lag) {
                stop_daemon(*daemon);
                return 1;
            }
            lag->sample_in_background();
        }
        run_levels(options, daemon->socket, &*daemon->client, daemon->pid, status_code);
        if (lag) {
            status_code |= lag->finish();
        }
    }
    status_code |= stop_daemon(*daemon);
    if (!options.noisy && !options.open_loop) {
        if (auto bytes = bytes_per_row(daemon->db)) {
            std::printf("store: %.0f bytes per row\n", *bytes);
        }
    }
    if (status_code != 0 && (options.noisy || options.open_loop)) {
        print_tail(daemon->log);
    }
    std::error_code ignored;
    fs::remove_all(daemon->dir, ignored);
    return status_code;
}
