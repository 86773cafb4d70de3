// Reading flowgated's TOML configuration; see config.hpp and the README for the keys.
#include "daemon/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <fstream>

namespace flowgate::daemon {
namespace {

std::string where(const std::string& path, const toml::source_region& region) {
    return path + ":" + std::to_string(region.begin.line) + ":" +
           std::to_string(region.begin.column);
}

struct Reader {
    const std::string& path;
    std::string error;

    template <typename T> bool read(const toml::table& table, std::string_view key, T& out) {
        const toml::node* node = table.get(key);
        if (node == nullptr) {
            return true;
        }
        if (auto value = node->value<T>()) {
            out = *value;
            return true;
        }
        error =
            where(path, node->source()) + ": error: '" + std::string(key) + "' has the wrong type";
        return false;
    }

    // An integer in [low, high], kept as it was when the key is absent. The range is
    // checked on the 64-bit value TOML gives, before any narrowing conversion.
    bool read_in_range(const toml::table& table, std::string_view key, std::int64_t& value,
                       std::int64_t low, std::int64_t high, std::string_view note = {}) {
        if (!read(table, key, value)) {
            return false;
        }
        if (value < low || value > high) {
            error = where(path, table.get(key)->source()) + ": error: '" + std::string(key) +
                    "' must be between " + std::to_string(low) + " and " + std::to_string(high) +
                    std::string(note);
            return false;
        }
        return true;
    }

    bool read_ms(const toml::table& table, std::string_view key, std::chrono::milliseconds& out) {
        std::int64_t value = out.count();
        if (!read_in_range(table, key, value, 1, max_timeout_ms, " (one day)")) {
            return false;
        }
        out = std::chrono::milliseconds(value);
        return true;
    }

    bool read_size(const toml::table& table, std::string_view key, std::size_t& out,
                   std::int64_t high, std::int64_t low = 1) {
        auto value = static_cast<std::int64_t>(out);
        if (!read_in_range(table, key, value, low, high)) {
            return false;
        }
        out = static_cast<std::size_t>(value);
        return true;
    }
};

// The bare key a TOML line assigns ("write_timeout_ms" in "write_timeout_ms = 1e99"),
// or "" when the line is not such an assignment.
std::string key_on_line(const std::string& path, std::uint32_t line) {
    std::ifstream in(path);
    std::string text;
    for (std::uint32_t i = 0; i < line && std::getline(in, text); ++i) {
    }
    const std::size_t equals = text.find('=');
    if (!in || equals == std::string::npos) {
        return {};
    }
    std::string key = text.substr(0, equals);
    key.erase(0, key.find_first_not_of(" \t"));
    key.erase(key.find_last_not_of(" \t") + 1);
    const bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
    return bare ? key : std::string();
}

bool read_config(const toml::table& root, Reader& reader, Config& config) {
    if (!reader.read(root, "socket", config.socket_path) ||
        !reader.read(root, "policy", config.policy_path) ||
        !reader.read(root, "audit_db", config.audit_db_path) ||
        !reader.read(root, "signing_key", config.signing_key_path) ||
        !reader.read(root, "anchor_file", config.anchor_file) ||
        !reader.read(root, "log_level", config.log_level) ||
        !reader.read(root, "socket_group", config.socket_group)) {
        return false;
    }
    if (const toml::node* mode = root.get("socket_mode")) {
        auto text = mode->value<std::string>();
        std::size_t used = 0;
        unsigned long parsed = 0;
        try {
            parsed = text ? std::stoul(*text, &used, 8) : 0;
        } catch (const std::exception&) {
            used = 0;
        }
        if (!text || used != text->size() || parsed > 07777) {
            reader.error = where(reader.path, mode->source()) +
                           ": error: 'socket_mode' must be an octal string such as \"0660\"";
            return false;
        }
        config.socket_mode = static_cast<std::uint32_t>(parsed);
    }
    std::string durability = "full";
    if (!reader.read(root, "durability", durability)) {
        return false;
    }
    if (durability == "full") {
        config.durability = Durability::full;
    } else if (durability == "relaxed") {
        config.durability = Durability::relaxed;
    } else {
        reader.error = where(reader.path, root.get("durability")->source()) +
                       ": error: 'durability' must be \"full\" or \"relaxed\"";
        return false;
    }
    if (const toml::table* limits = root["limits"].as_table()) {
        Limits& into = config.limits;
        if (!reader.read_size(*limits, "max_line_bytes", into.max_line_bytes,
                              max_line_bytes_limit) ||
            !reader.read_ms(*limits, "idle_timeout_ms", into.idle_timeout) ||
            !reader.read_size(*limits, "max_connections", into.max_connections, max_count_limit) ||
            !reader.read_size(*limits, "max_pending_answers", into.max_pending_answers,
                              max_count_limit) ||
            !reader.read_ms(*limits, "write_timeout_ms", into.write_timeout) ||
            !reader.read_ms(*limits, "reload_timeout_ms", into.reload_timeout) ||
            !reader.read_ms(*limits, "line_timeout_ms", into.line_timeout) ||
            !reader.read_size(*limits, "max_requests_in_flight", into.max_requests_in_flight,
                              max_count_limit) ||
            !reader.read_size(*limits, "max_pending_answer_bytes", into.max_pending_answer_bytes,
                              max_bytes_limit) ||
            !reader.read_size(*limits, "max_connections_per_uid", into.max_connections_per_uid,
                              max_count_limit) ||
            !reader.read_size(*limits, "max_refused_lines", into.max_refused_lines,
                              max_count_limit) ||
            !reader.read_size(*limits, "refused_rows_per_second", into.refused_rows_per_second,
                              max_count_limit) ||
            !reader.read_size(*limits, "max_categories", into.max_categories,
                              max_categories_limit) ||
            !reader.read_size(*limits, "max_answer_bytes", into.max_answer_bytes,
                              max_answer_bytes_limit, min_answer_bytes)) {
            return false;
        }
    }
    if (const toml::array* services = root["service"].as_array()) {
        for (const toml::node& node : *services) {
            const toml::table* entry = node.as_table();
            std::int64_t uid = -1;
            Service service;
            if (entry == nullptr || !reader.read(*entry, "uid", uid) ||
                !reader.read(*entry, "name", service.name) ||
                !reader.read(*entry, "admin", service.admin)) {
                if (reader.error.empty()) {
                    reader.error = where(reader.path, node.source()) +
                                   ": error: each [[service]] needs a table";
                }
                return false;
            }
            if (!entry->contains("uid") || service.name.empty()) {
                reader.error = where(reader.path, node.source()) +
                               ": error: each [[service]] needs 'uid' and 'name'";
                return false;
            }
            if (!reader.read_in_range(*entry, "uid", uid, 0, max_uid, " (4294967295 is no uid)")) {
                return false;
            }
            config.services[static_cast<uid_t>(uid)] = service;
        }
    }
    return true;
}

} // namespace

ConfigResult load_config(const std::string& path) {
    Config config;
    if (path.empty()) {
        return {config, {}};
    }
    toml::table parsed;
    try {
        parsed = toml::parse_file(path);
    } catch (const toml::parse_error& error) {
        // A number TOML cannot hold (a timeout of 10^19, say) is a parse error: name the
        // key it was meant for, as a range error does.
        std::string key = key_on_line(path, error.source().begin.line);
        return {std::nullopt, where(path, error.source()) +
                                  ": error: " + (key.empty() ? std::string() : "'" + key + "': ") +
                                  std::string(error.description())};
    }
    Reader reader{path, {}};
    if (!read_config(parsed, reader, config)) {
        return {std::nullopt, reader.error};
    }
    return {config, {}};
}

std::string anchor_path(const Config& config) {
    return config.anchor_file.empty() ? config.audit_db_path + ".checkpoint" : config.anchor_file;
}

std::string service_name(const Config& config, uid_t uid) {
    auto it = config.services.find(uid);
    return it != config.services.end() ? it->second.name : "uid:" + std::to_string(uid);
}

bool is_admin(const Config& config, uid_t uid) {
    auto it = config.services.find(uid);
    return it != config.services.end() && it->second.admin;
}

} // namespace flowgate::daemon
