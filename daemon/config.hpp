// flowgated's configuration: a TOML file, with command-line flags that override the
// common settings. Parsing returns a value or a message; only start-up reads it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>

namespace flowgate::daemon {

enum class Durability {
    full,    // synchronous=FULL: a committed decision survives power loss
    relaxed, // synchronous=NORMAL in WAL: an OS crash may lose the last commits
};

struct Limits {
    std::size_t max_line_bytes = 64 * 1024;
    std::chrono::milliseconds idle_timeout{60'000};
    std::size_t max_connections = 1024;
    // Answers a client has not read yet before the daemon stops reading its requests.
    std::size_t max_pending_answers = 4096;
    // How long an answer may wait for a client that does not read before it is cut off.
    std::chrono::milliseconds write_timeout{10'000};
    // How long a reload may take to read, parse, check and compile the policy before it
    // fails and the old policy keeps serving (a policy of the largest size loads in a
    // few seconds).
    std::chrono::milliseconds reload_timeout{30'000};
    // How long a connection may take to send the rest of a line once its first byte came,
    // so that a client trickling bytes holds its connection no longer than this.
    std::chrono::milliseconds line_timeout{5'000};
    // Requests of one connection being decided at once (their rows not yet committed):
    // past it, the connection's next lines wait in the socket, so a connection pipelining
    // as fast as it can takes this many places in the audit writer's queue and no more.
    std::size_t max_requests_in_flight = 64;
    // Bytes of answers a client has not read yet before the daemon stops reading its
    // requests (with max_pending_answers, their count).
    std::size_t max_pending_answer_bytes = 4 * 1024 * 1024;
    // Connections one uid may hold open at once (of max_connections in all).
    std::size_t max_connections_per_uid = 128;
    // Lines a connection may send that cannot be understood before it is closed.
    std::size_t max_refused_lines = 16;
    // Refused lines recorded one row each, per uid and second; past it, a second's further
    // refusals of that uid are answered all the same and recorded as one row with their count.
    std::size_t refused_rows_per_second = 32;
    // The most data categories one check or explain may name.
    std::size_t max_categories = 64;
    // The longest answer an explain makes the daemon write: its trace is cut to fit
    // (describe and status are not bounded by it: the policy sizes them).
    std::size_t max_answer_bytes = 1024 * 1024;
};

struct Service {
    std::string name;
    bool admin = false;
};

struct Config {
    std::string socket_path = "/run/flowgate/flowgate.sock";
    std::optional<std::uint32_t> socket_mode; // e.g. 0660
    std::string socket_group;                 // empty: leave as created
    std::string policy_path = "/etc/flowgate/policy";
    std::string audit_db_path = "/var/lib/flowgate/audit.db";
    // The private key file checkpoints are signed with (`signing_key`, --signing-key);
    // empty: systemd's credential `signing_key` if the service was given one, else none
    // (checkpoints unsigned).
    std::string signing_key_path;
    // The file the latest checkpoint is kept in, outside the store (`anchor_file`);
    // empty: anchor_path() gives `<audit_db>.checkpoint`.
    std::string anchor_file;
    Durability durability = Durability::full;
    std::string log_level = "info";
    Limits limits;
    std::map<uid_t, Service> services; // by uid
};

// The ranges the configuration's numbers must be in; a number outside is refused at
// start with its key's name, before it can overflow a conversion or a deadline.
inline constexpr std::int64_t max_timeout_ms = 86'400'000; // one day
inline constexpr std::int64_t max_line_bytes_limit = 16 * 1024 * 1024;
inline constexpr std::int64_t max_count_limit = 1'048'576; // connections, pending answers
inline constexpr std::int64_t max_bytes_limit = std::int64_t{1} << 32; // bytes held per client
inline constexpr std::int64_t max_uid = 4'294'967'294;                 // 2^32-2: 2^32-1 is "no uid"
inline constexpr std::int64_t max_categories_limit = 65'536;
inline constexpr std::int64_t min_answer_bytes = 4096; // room for any decision and some trace
inline constexpr std::int64_t max_answer_bytes_limit = 16 * 1024 * 1024;

struct ConfigResult {
    std::optional<Config> config;
    std::string error; // "FILE:LINE:COL: error: message" when config is empty
};

// Reads FILE; an empty path gives the defaults.
ConfigResult load_config(const std::string& path);

// The anchor file the configuration names, or the store's path with ".checkpoint" added.
std::string anchor_path(const Config& config);

// The service name for a uid ("uid:N" when the configuration does not know it).
std::string service_name(const Config& config, uid_t uid);
bool is_admin(const Config& config, uid_t uid);

} // namespace flowgate::daemon
