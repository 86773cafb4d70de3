// The integration rig; see daemon_rig.hpp. Plain POSIX calls, so that what the tests
// exercise is flowgated and not a helper library.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace flowgate::integration {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

sockaddr_un address_of(const fs::path& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string text = path.string();
    REQUIRE(text.size() < sizeof address.sun_path);
    std::memcpy(address.sun_path, text.c_str(), text.size() + 1);
    return address;
}

std::string toml_string(const std::string& text) {
    return json::serialize(json::value(text)); // a JSON string is a valid TOML basic string
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

} // namespace

TempDir::TempDir() {
    std::string pattern = (fs::temp_directory_path() / "flowgated-it-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    m_path = pattern;
    // Callers that drop privileges (a non-admin client) must reach the socket.
    fs::permissions(m_path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
}

TempDir::~TempDir() {
    std::error_code ignored;
    fs::remove_all(m_path, ignored);
}

Daemon::Daemon(RigConfig config)
    : m_socket(m_dir.path() / "flowgated.sock"), m_db(m_dir.path() / "audit.db"),
      m_policy(m_dir.path() / "policy"), m_config_file(m_dir.path() / "flowgated.toml"),
      m_log(m_dir.path() / "flowgated.log") {
    fs::create_directory(m_policy);
    for (const auto& entry : fs::directory_iterator(fs::path(FLOWGATE_SOURCE_DIR) / "policies")) {
        if (entry.path().extension() == ".policy") {
            fs::copy_file(entry.path(), m_policy / entry.path().filename());
        }
    }
    write_config(config);
}

Daemon::~Daemon() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGKILL);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
    }
}

void Daemon::write_config(const RigConfig& config) {
    std::map<std::string, std::string> keys{
        {"socket", toml_string(m_socket.string())}, {"policy", toml_string(m_policy.string())},
        {"audit_db", toml_string(m_db.string())},   {"durability", toml_string(config.durability)},
        {"log_level", toml_string("info")},
    };
    for (const auto& [key, value] : config.keys) {
        keys[key] = value;
    }
    std::ofstream out(m_config_file);
    for (const auto& [key, value] : keys) {
        out << key << " = " << value << "\n";
    }
    out << "\n[limits]\n";
    for (const auto& [key, value] : config.limits) {
        out << key << " = " << value << "\n";
    }
    for (const ServiceEntry& service : config.services) {
        out << "\n[[service]]\nuid = " << service.uid << "\nname = " << toml_string(service.name)
            << "\nadmin = " << (service.admin ? "true" : "false") << "\n";
    }
}

pid_t Daemon::spawn(const Launch& launch) {
    std::vector<std::string> arguments{FLOWGATED_PATH, "--config", m_config_file.string()};
    arguments.insert(arguments.end(), launch.extra_arguments.begin(), launch.extra_arguments.end());
    std::vector<char*> argv;
    for (std::string& argument : arguments) {
        argv.push_back(argument.data());
    }
    argv.push_back(nullptr);
    const std::string log = m_log.string();

    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Only async-signal-safe work that cannot fail silently from here on, then exec.
        int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log_fd >= 0) {
            ::dup2(log_fd, STDOUT_FILENO);
            ::dup2(log_fd, STDERR_FILENO);
        }
        ::unsetenv("NOTIFY_SOCKET");
        ::unsetenv("LISTEN_FDS");
        ::unsetenv("LISTEN_PID");
        for (const auto& [name, value] : launch.env) {
            ::setenv(name.c_str(), value.c_str(), 1);
        }
        if (launch.listening_fd >= 0) {
            if (launch.listening_fd != 3) {
                ::dup2(launch.listening_fd, 3);
            } else {
                ::fcntl(3, F_SETFD, 0);
            }
            ::setenv("LISTEN_FDS", "1", 1);
            ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
        }
        if (launch.max_open_files > 0) {
            const rlimit files{static_cast<rlim_t>(launch.max_open_files),
                               static_cast<rlim_t>(launch.max_open_files)};
            if (::setrlimit(RLIMIT_NOFILE, &files) != 0) {
                ::_exit(125);
            }
        }
        if (launch.run_as != 0 && (::setgid(launch.run_as) != 0 || ::setuid(launch.run_as) != 0)) {
            ::_exit(126);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

int Daemon::init_store(const Launch& launch) {
    REQUIRE(m_pid < 0);
    Launch init = launch;
    init.extra_arguments.emplace_back("--init-store");
    init.listening_fd = -1;
    m_pid = spawn(init);
    const int status = wait_exit(10s);
    m_store_made = m_store_made || status == 0;
    return status;
}

void Daemon::init_store_once(const Launch& launch) {
    if (launch.init_store && !m_store_made) {
        const int status = init_store(launch);
        INFO(log());
        REQUIRE(status == 0);
    }
}

bool Daemon::start(const Launch& launch) {
    REQUIRE(m_pid < 0);
    init_store_once(launch);
    m_pid = spawn(launch);
    const auto deadline = Clock::now() + 15s;
    while (Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
            m_pid = -1;
            m_failure = "flowgated exited during start-up (status " + std::to_string(status) +
                        "):\n" + log();
            return false;
        }
        if (auto client = client::Client::connect(m_socket.string(), 2s)) {
            auto answer = client.value->request(json::object{{"op", "status"}});
            if (answer && answer.value->contains("version")) {
                return true;
            }
        }
        std::this_thread::sleep_for(20ms);
    }
    m_failure = "flowgated did not answer within 15 s:\n" + log();
    return false;
}

void Daemon::launch(const Launch& launch) {
    REQUIRE(m_pid < 0);
    init_store_once(launch);
    m_pid = spawn(launch);
}

int Daemon::run_to_exit(const Launch& launch, std::chrono::milliseconds deadline) {
    REQUIRE(m_pid < 0);
    m_pid = spawn(launch);
    return wait_exit(deadline);
}

void Daemon::signal(int number) const {
    REQUIRE(m_pid > 0);
    REQUIRE(::kill(m_pid, number) == 0);
}

int Daemon::wait_exit(std::chrono::milliseconds deadline) {
    if (m_pid < 0) {
        return -1;
    }
    const auto until = Clock::now() + deadline;
    for (;;) {
        int status = 0;
        pid_t done = ::waitpid(m_pid, &status, WNOHANG);
        if (done == m_pid) {
            m_pid = -1;
            if (WIFEXITED(status)) {
                return WEXITSTATUS(status);
            }
            return 128 + WTERMSIG(status);
        }
        if (Clock::now() >= until) {
            return -1;
        }
        std::this_thread::sleep_for(10ms);
    }
}

bool Daemon::running() {
    if (m_pid < 0) {
        return false;
    }
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        return false;
    }
    return true;
}

std::string Daemon::log() const {
    return read_file(m_log);
}

client::Client Daemon::connect() const {
    auto connected = client::Client::connect(m_socket.string(), 5s);
    INFO(connected.error.message);
    REQUIRE(connected);
    return std::move(*connected.value);
}

RawConnection::RawConnection(const fs::path& socket) {
    sockaddr_un address = address_of(socket);
    m_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    if (::connect(m_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(m_fd);
        m_fd = -1;
    }
}

RawConnection::~RawConnection() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

std::size_t RawConnection::send(std::string_view bytes, std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        pollfd waiting{m_fd, POLLOUT, 0};
        if (::poll(&waiting, 1, remaining_ms(until)) <= 0) {
            break;
        }
        ssize_t n =
            ::send(m_fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            break;
        }
        sent += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    return sent;
}

std::optional<std::string> RawConnection::read_line(std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    for (;;) {
        if (auto newline = m_buffer.find('\n'); newline != std::string::npos) {
            std::string line = m_buffer.substr(0, newline);
            m_buffer.erase(0, newline + 1);
            return line;
        }
        pollfd waiting{m_fd, POLLIN, 0};
        if (::poll(&waiting, 1, remaining_ms(until)) <= 0) {
            return std::nullopt;
        }
        char chunk[65536];
        ssize_t n = ::recv(m_fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return std::nullopt;
        }
        m_buffer.append(chunk, n > 0 ? static_cast<std::size_t>(n) : 0);
    }
}

bool RawConnection::closed_within(std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    for (;;) {
        pollfd waiting{m_fd, POLLIN, 0};
        if (::poll(&waiting, 1, remaining_ms(until)) <= 0) {
            return false;
        }
        char chunk[65536];
        ssize_t n = ::recv(m_fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return true;
        }
        m_buffer.append(chunk, n > 0 ? static_cast<std::size_t>(n) : 0);
    }
}

NotifySocket::NotifySocket(const fs::path& path) : m_path(path) {
    m_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_un address = address_of(path);
    REQUIRE(::bind(m_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
}

NotifySocket::~NotifySocket() {
    ::close(m_fd);
}

std::optional<std::string> NotifySocket::receive(std::chrono::milliseconds deadline) {
    pollfd waiting{m_fd, POLLIN, 0};
    if (::poll(&waiting, 1, static_cast<int>(deadline.count())) <= 0) {
        return std::nullopt;
    }
    char datagram[4096];
    ssize_t n = ::recv(m_fd, datagram, sizeof datagram, 0);
    if (n < 0) {
        return std::nullopt;
    }
    return std::string(datagram, static_cast<std::size_t>(n));
}

std::vector<std::string> NotifySocket::receive_until(std::string_view wanted,
                                                     std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    std::vector<std::string> seen;
    while (auto datagram = receive(std::chrono::milliseconds(remaining_ms(until)))) {
        seen.push_back(*datagram);
        if (datagram->find(wanted) != std::string::npos) {
            break;
        }
    }
    return seen;
}

int listening_socket(const fs::path& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0); // inherited across exec on purpose
    REQUIRE(fd >= 0);
    sockaddr_un address = address_of(path);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd, 64) == 0);
    return fd;
}

json::array sqlite_rows(const fs::path& db, const std::string& sql) {
    // The statement goes through a file, so that no quoting can change it.
    const fs::path script = db.parent_path() / "query.sql";
    {
        std::ofstream out(script);
        out << ".mode json\n" << sql << ";\n";
    }
    const std::string command =
        "sqlite3 -readonly '" + db.string() + "' < '" + script.string() + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char chunk[4096];
    while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) {
        output.append(chunk, n);
    }
    const int status = ::pclose(pipe);
    INFO("sqlite3 said: " << output);
    REQUIRE(status == 0);
    if (output.find_first_not_of(" \n") == std::string::npos) {
        return {};
    }
    // A request stored as received may hold the invalid UTF-8 a test sent.
    json::parse_options options;
    options.allow_invalid_utf8 = true;
    boost::system::error_code error;
    json::value rows = json::parse(output, error, {}, options);
    REQUIRE_FALSE(error);
    REQUIRE(rows.is_array());
    return rows.as_array();
}

json::array audit_rows(const fs::path& db, const std::string& kind) {
    return sqlite_rows(db, "SELECT * FROM audit_rows WHERE kind = '" + kind + "' ORDER BY seq");
}

json::object audit_row(const fs::path& db, std::int64_t seq) {
    json::array rows =
        sqlite_rows(db, "SELECT * FROM audit_rows WHERE seq = " + std::to_string(seq));
    REQUIRE(rows.size() == 1);
    return rows[0].as_object();
}

json::object check_request(std::string purpose, std::string recipient,
                           std::vector<std::string> data) {
    json::array categories;
    for (std::string& category : data) {
        categories.emplace_back(category);
    }
    return json::object{{"op", "check"},
                        {"purpose", purpose},
                        {"recipient", recipient},
                        {"data", categories},
                        {"subject", "p-000123"}};
}

json::object allowed_check() {
    return check_request("health_services", "prevent", {"checkup_result"});
}

json::object denied_check() {
    // Check-up results are not given to the employer without a ground.
    return check_request("health_services", "employer", {"checkup_result"});
}

RigConfig me_as_admin() {
    RigConfig config;
    config.services.push_back({::getuid(), "privacy-office", true});
    return config;
}

std::string current_hash(client::Client& client) {
    auto status = client.request(json::object{{"op", "status"}});
    REQUIRE(status);
    return text_of(*status.value, "policy");
}

json::object reload_answer(client::Client& client) {
    client.set_timeout(60s);
    auto answer = client.request(json::object{{"op", "reload"}});
    INFO(answer.error.message);
    REQUIRE(answer);
    return *answer.value;
}

void check_reload_failed_keeps(const Daemon& daemon, client::Client& client,
                               const json::object& refused, const std::string& original,
                               const std::string& why) {
    INFO(json::serialize(refused));
    CHECK(error_code(refused) == "reload_failed");
    CHECK(text_of(refused, "policy") == original);
    auto checked = client.request(allowed_check());
    REQUIRE(checked);
    CHECK(text_of(*checked.value, "decision") == "allow");
    CHECK(text_of(*checked.value, "policy") == original);
    json::array failures = audit_rows(daemon.db(), "reload_failed");
    REQUIRE(failures.size() == 1);
    CHECK_THAT(text_of(failures[0].as_object(), "detail"), Catch::Contains(why));
}

std::string text_of(const json::object& object, std::string_view key) {
    const json::value* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : "";
}

std::string error_code(const json::object& answer) {
    const json::value* error = answer.if_contains("error");
    if (error == nullptr || !error->is_object()) {
        return "";
    }
    return text_of(error->as_object(), "code");
}

std::string shell_quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

CommandResult run_command(const fs::path& dir, const std::string& line) {
    const fs::path out = dir / "command.out";
    const fs::path err = dir / "command.err";
    const std::string command = line + " >" + shell_quoted(out.string()) + " 2>" +
                                shell_quoted(err.string()) + " </dev/null";
    const int raw = std::system(command.c_str());
    CommandResult result;
    result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    result.out = read_text(out);
    result.err = read_text(err);
    return result;
}

CommandResult run_flowgate(const fs::path& dir, const std::vector<std::string>& arguments) {
    std::string command = shell_quoted(FLOWGATE_PATH);
    for (const std::string& argument : arguments) {
        command += " " + shell_quoted(argument);
    }
    return run_command(dir, command);
}

fs::path candidate_without(const fs::path& dir, const std::string& word) {
    const fs::path sheets = dir / "sheets";
    const fs::path candidate = dir / "candidate";
    fs::create_directories(sheets);
    fs::create_directories(candidate);
    const fs::path policies = fs::path(FLOWGATE_SOURCE_DIR) / "policies";
    for (const char* sheet : {"kenpo-table.csv", "kenpo-parties.csv"}) {
        std::istringstream lines(read_text(policies / sheet));
        std::ofstream out(sheets / sheet);
        std::string line;
        while (std::getline(lines, line)) {
            if (line.find(word) == std::string::npos) {
                out << line << "\n";
            }
        }
    }
    const CommandResult compiled =
        run_flowgate(dir, {"policy", "compile-table", (sheets / "kenpo-table.csv").string()});
    INFO(compiled.err);
    REQUIRE(compiled.status == 0);
    std::ofstream(candidate / "kenpo.policy") << compiled.out;
    fs::copy_file(policies / "base.policy", candidate / "base.policy");
    fs::copy_file(policies / "members.policy", candidate / "members.policy");
    return candidate;
}

int start_with_config_tail(Daemon& daemon, const std::string& text) {
    std::string written = read_text(daemon.config_file());
    written = written.substr(0, written.find("\n[limits]"));
    {
        std::ofstream out(daemon.config_file(), std::ios::trunc);
        out << written << "\n" << text;
    }
    return daemon.run_to_exit({}, 15s);
}

json::object parse_answer(const std::optional<std::string>& line) {
    INFO("the answer line: " << line.value_or("(none)").substr(0, 2000));
    REQUIRE(line);
    boost::system::error_code error;
    json::value parsed = json::parse(*line, error);
    REQUIRE_FALSE(error);
    REQUIRE(parsed.is_object());
    return parsed.as_object();
}

} // namespace flowgate::integration
