// End-to-end throughput of flowgated: the real daemon (durability full, its store on a
// real file) driven over its socket by 1, 8 and 64 clients, each on its own connection
// keeping a window of pipelined checks in flight (all driven from one thread). A decision
// counts once its answer carries an audit_seq, i.e. once its row is committed: durable
// decisions per second, and the p50/p99 time from sending a check to reading its answer.
// Level i of --clients keeps the i-th window of --window in flight per client (the last
// one when the list is shorter). Run a Release build:
//   bench_daemon [--seconds S] [--clients 1,8,64] [--window 8,8,3] [--dir DIR] [--relaxed]
#include "client/client.hpp"

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
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
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
};

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
            if (answer.find("\"audit_seq\":null") != std::string_view::npos ||
                answer.find("\"audit_seq\"") == std::string_view::npos) {
                ++m_level.not_durable;
            } else {
                ++m_level.decisions;
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
        } else if (arg == "--clients") {
            options.clients = numbers(next());
        } else if (arg == "--window") {
            options.windows = numbers(next());
        } else {
            std::fprintf(stderr, "usage: bench_daemon [--seconds S] [--clients 1,8,64] "
                                 "[--window 8,8,3] [--dir DIR] [--relaxed]\n");
            std::exit(2);
        }
    }
    return options;
}

// Runs `flowgated --config CONFIG --init-store`: true once it made the store.
bool init_store(const fs::path& config) {
    pid_t initialiser = ::fork();
    if (initialiser == 0) {
        ::execl(FLOWGATED_PATH, FLOWGATED_PATH, "--config", config.c_str(), "--init-store",
                nullptr);
        ::_exit(127);
    }
    int status = 0;
    return initialiser > 0 && ::waitpid(initialiser, &status, 0) == initialiser &&
           WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

} // namespace

int main(int argc, char** argv) {
    Options options;
    try {
        options = parse(argc, argv);
    } catch (const std::exception& e) { // numbers() or std::stod on a bad value
        std::fprintf(stderr, "bench_daemon: %s\n", e.what());
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    std::string pattern = (options.dir / "bench-flowgated-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    const fs::path dir = pattern;
    const fs::path socket = dir / "flowgated.sock";
    const fs::path db = dir / "audit.db";
    const fs::path config = dir / "flowgated.toml";
    {
        std::ofstream out(config);
        out << "socket = \"" << socket.string() << "\"\npolicy = \"" << FLOWGATE_SOURCE_DIR
            << "/policies\"\naudit_db = \"" << db.string() << "\"\ndurability = \""
            << (options.relaxed ? "relaxed" : "full") << "\"\nlog_level = \"warn\"\n";
    }
    // A new store, made as an admin makes one, then the daemon that serves it.
    if (!init_store(config)) {
        std::fprintf(stderr, "flowgated --init-store failed\n");
        return 1;
    }
    pid_t daemon = ::fork();
    if (daemon == 0) {
        ::execl(FLOWGATED_PATH, FLOWGATED_PATH, "--config", config.c_str(), nullptr);
        ::_exit(127);
    }
    std::optional<flowgate::client::Client> client;
    for (int i = 0; i < 500 && !client; ++i) {
        if (auto connected = flowgate::client::Client::connect(socket.string())) {
            client = std::move(*connected.value);
        } else {
            std::this_thread::sleep_for(20ms);
        }
    }
    if (!client) {
        std::fprintf(stderr, "flowgated did not start\n");
        ::kill(daemon, SIGKILL);
        return 1;
    }

    std::printf("flowgated %s, store %s (durability %s), %.0f s per level\n", FLOWGATED_PATH,
                db.c_str(), options.relaxed ? "relaxed" : "full", options.seconds);
    std::printf("%8s %7s %12s %14s %10s %10s %12s\n", "clients", "window", "decisions",
                "decisions/s", "p50 ms", "p99 ms", "transactions");
    int status_code = 0;
    for (std::size_t level = 0; level < options.clients.size(); ++level) {
        const int clients = options.clients[level];
        const auto window =
            static_cast<std::size_t>(options.windows[std::min(level, options.windows.size() - 1)]);
        auto before = client->request(json::object{{"op", "status"}});
        Level total;
        const auto started = Clock::now();
        const auto deadline = started + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options.seconds));
        drive(socket.string(), clients, window, deadline, total);
        const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
        auto after = client->request(json::object{{"op", "status"}});
        std::int64_t transactions = 0;
        if (before && after) {
            transactions = after.value->at("audit").at("transactions").to_number<std::int64_t>() -
                           before.value->at("audit").at("transactions").to_number<std::int64_t>();
        }
        const double p50 = percentile(total.latencies_us, 0.50) / 1000.0;
        const double p99 = percentile(total.latencies_us, 0.99) / 1000.0;
        std::printf("%8d %7zu %12llu %14.0f %10.2f %10.2f %12lld\n", clients, window,
                    static_cast<unsigned long long>(total.decisions),
                    static_cast<double>(total.decisions) / elapsed, p50, p99,
                    static_cast<long long>(transactions));
        std::fflush(stdout);
        if (!total.failure.empty() || total.not_durable != 0) {
            std::fprintf(stderr, "level %d: %s; %llu answers without a committed row\n", clients,
                         total.failure.c_str(), static_cast<unsigned long long>(total.not_durable));
            status_code = 1;
        }
    }
    client.reset();
    ::kill(daemon, SIGTERM);
    int status = 0;
    ::waitpid(daemon, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "flowgated did not stop cleanly (status %d)\n", status);
        status_code = 1;
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    return status_code;
}
