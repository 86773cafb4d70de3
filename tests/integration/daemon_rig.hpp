// What the integration tests need to treat flowgated as its users do: a temporary
// directory with a configuration, a copy of the bundled policy and an audit database
// (made with --init-store before the first start, as an admin makes it);
// the real daemon binary started in it (fork/exec) and always killed at the end; raw
// connections for the bytes a well-behaved client never sends; a datagram socket
// standing in for systemd's notify socket; and the audit rows read back with the
// sqlite3 command, as an auditor would.
#pragma once

#include "client/client.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace flowgate::integration {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

struct ServiceEntry {
    uid_t uid = 0;
    std::string name;
    bool admin = false;
};

// The configuration file the rig writes. The paths default to the rig's directory.
struct RigConfig {
    std::map<std::string, std::string> keys;    // top-level key → TOML value text
    std::map<std::string, std::int64_t> limits; // [limits]
    std::vector<ServiceEntry> services;         // [[service]]
    std::string durability = "full";
};

// How flowgated is started.
struct Launch {
    std::vector<std::string> extra_arguments;             // after --config FILE
    std::vector<std::pair<std::string, std::string>> env; // set in the child
    int listening_fd = -1;  // passed as fd 3 with LISTEN_FDS=1 (socket activation)
    uid_t run_as = 0;       // 0: as the test's user
    int max_open_files = 0; // RLIMIT_NOFILE in the child; 0: inherited
    // start() and launch() run `flowgated --init-store` first (with the same
    // arguments), as an admin does once, unless this rig made its store already.
    bool init_store = true;
};

class Daemon {
public:
    // Copies the bundled policy into DIR/policy and writes DIR/flowgated.toml.
    explicit Daemon(RigConfig config = {});
    ~Daemon(); // kills the daemon if it still runs
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts flowgated and waits until it answers a status request; false (with the log
    // in `failure`) if it exits or does not answer within the deadline.
    bool start(const Launch& launch = {});
    // Starts flowgated without waiting for it (a socket passed by systemd, say).
    void launch(const Launch& launch);
    // Starts flowgated on the store as it is (never --init-store) and waits for it to
    // exit (a start-up that must fail): its status.
    int run_to_exit(const Launch& launch = {}, std::chrono::milliseconds deadline = 10s);
    // Runs `flowgated --init-store` with the launch's arguments: its exit status.
    int init_store(const Launch& launch = {});

    void signal(int number) const;
    // Waits for the process to end: its exit code, or 128+signal, or -1 on timeout.
    int wait_exit(std::chrono::milliseconds deadline = 10s);
    bool running();

    pid_t pid() const { return m_pid; }
    const fs::path& dir() const { return m_dir.path(); }
    fs::path socket() const { return m_socket; }
    fs::path db() const { return m_db; }
    fs::path policy_dir() const { return m_policy; }
    fs::path config_file() const { return m_config_file; }
    std::string log() const;
    const std::string& failure() const { return m_failure; }

    // Rewrites the configuration file (before start()).
    void write_config(const RigConfig& config);

    // A client connected to the daemon. It asserts, so call it on the test's own thread
    // only: Catch's assertions are not safe from two threads at once.
    client::Client connect() const;

private:
    pid_t spawn(const Launch& launch);
    // Makes the store first if the launch asks for it and this rig has not yet.
    void init_store_once(const Launch& launch);

    TempDir m_dir;
    fs::path m_socket;
    fs::path m_db;
    fs::path m_policy;
    fs::path m_config_file;
    fs::path m_log;
    pid_t m_pid = -1;
    bool m_store_made = false;
    std::string m_failure;
};

// A connection that sends and reads raw bytes.
class RawConnection {
public:
    explicit RawConnection(const fs::path& socket);
    ~RawConnection();
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    bool connected() const { return m_fd >= 0; }
    int fd() const { return m_fd; }
    // Sends everything, or as much as the peer takes before the deadline.
    std::size_t send(std::string_view bytes, std::chrono::milliseconds deadline = 5s);
    // One answer line (without the newline), or nothing if the deadline passes or the
    // peer closes first.
    std::optional<std::string> read_line(std::chrono::milliseconds deadline = 5s);
    // True once the peer has closed (after any unread lines are consumed).
    bool closed_within(std::chrono::milliseconds deadline);

private:
    int m_fd = -1;
    std::string m_buffer;
};

// The notify socket systemd would give flowgated (NOTIFY_SOCKET).
class NotifySocket {
public:
    explicit NotifySocket(const fs::path& path);
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;
    const fs::path& path() const { return m_path; }
    // The next datagram, or nothing.
    std::optional<std::string> receive(std::chrono::milliseconds deadline = 5s);
    // Datagrams until one contains `wanted`; all of them, the matching one last.
    std::vector<std::string> receive_until(std::string_view wanted,
                                           std::chrono::milliseconds deadline = 5s);

private:
    fs::path m_path;
    int m_fd = -1;
};

// A listening Unix socket, as a .socket unit would create it.
// A command's exit status and what it printed.
struct CommandResult {
    int status = -1;
    std::string out;
    std::string err;
};

// TEXT quoted for a POSIX shell.
std::string shell_quoted(const std::string& text);
std::string read_text(const fs::path& path);
// Runs a shell command line with stdin from /dev/null and stdout and stderr captured to
// files in `dir` (so not a terminal).
CommandResult run_command(const fs::path& dir, const std::string& line);

int listening_socket(const fs::path& path);

// Runs the real `flowgate` with ARGUMENTS in DIR, stdout and stderr going to files.
CommandResult run_flowgate(const fs::path& dir, const std::vector<std::string>& arguments);

// A candidate policy in DIR/candidate: the bundled table and parties compiled without
// their lines that contain `word` (an activity, a contractor), beside the bundled
// hand-written files. Its directory.
fs::path candidate_without(const fs::path& dir, const std::string& word);

// Starts the daemon on its configuration with the rig's own (empty) [limits] table
// replaced by TEXT (a second table would be a TOML error of its own), for a start-up
// that must fail: its exit status.
int start_with_config_tail(Daemon& daemon, const std::string& text);

// Rows of a query run by the sqlite3 command (-json), as objects.
boost::json::array sqlite_rows(const fs::path& db, const std::string& sql);
// The audit rows of one kind, in seq order.
boost::json::array audit_rows(const fs::path& db, const std::string& kind);
// The row with this seq.
boost::json::object audit_row(const fs::path& db, std::int64_t seq);

// Requests the tests send.
boost::json::object check_request(std::string purpose, std::string recipient,
                                  std::vector<std::string> data);
// A check the bundled policy allows, and one it denies.
boost::json::object allowed_check();
boost::json::object denied_check();

// A configuration under which the test's own uid is an admin ("privacy-office").
RigConfig me_as_admin();
// The hash of the policy serving, as `status` answers it.
std::string current_hash(client::Client& client);
// The answer to a `reload` asked over `client`, waited for up to a minute.
boost::json::object reload_answer(client::Client& client);
// `refused` is a failed reload's answer: the policy `original` still decides checks, and
// the store's one `reload_failed` row says `why` in its detail.
void check_reload_failed_keeps(const Daemon& daemon, client::Client& client,
                               const boost::json::object& refused, const std::string& original,
                               const std::string& why);

// An answer line as a JSON object; the test stops (showing the line) unless it is one.
boost::json::object parse_answer(const std::optional<std::string>& line);
// The value of a string field, or "" when absent or not a string.
std::string text_of(const boost::json::object& object, std::string_view key);
// answer["error"]["code"], or "".
std::string error_code(const boost::json::object& answer);

} // namespace flowgate::integration
