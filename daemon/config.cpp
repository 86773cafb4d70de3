// Reading flowgated's TOML configuration; see config.hpp and the README for the keys.
#include "daemon/config.hpp"

#include <toml++/toml.h>

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

    // A positive integer, kept as it was when the key is absent.
    bool read_positive(const toml::table& table, std::string_view key, std::int64_t& value) {
        if (!read(table, key, value)) {
            return false;
        }
        if (value <= 0) {
            error = where(path, table.get(key)->source()) + ": error: '" + std::string(key) +
                    "' must be positive";
            return false;
        }
        return true;
    }

    bool read_ms(const toml::table& table, std::string_view key, std::chrono::milliseconds& out) {
        std::int64_t value = out.count();
        if (!read_positive(table, key, value)) {
            return false;
        }
        out = std::chrono::milliseconds(value);
        return true;
    }

    bool read_size(const toml::table& table, std::string_view key, std::size_t& out) {
        auto value = static_cast<std::int64_t>(out);
        if (!read_positive(table, key, value)) {
            return false;
        }
        out = static_cast<std::size_t>(value);
        return true;
    }
};

bool read_config(const toml::table& root, Reader& reader, Config& config) {
    if (!reader.read(root, "socket", config.socket_path) ||
        !reader.read(root, "policy", config.policy_path) ||
        !reader.read(root, "audit_db", config.audit_db_path) ||
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
        if (!reader.read_size(*limits, "max_line_bytes", config.limits.max_line_bytes) ||
            !reader.read_ms(*limits, "idle_timeout_ms", config.limits.idle_timeout) ||
            !reader.read_size(*limits, "max_connections", config.limits.max_connections) ||
            !reader.read_size(*limits, "max_pending_answers", config.limits.max_pending_answers) ||
            !reader.read_ms(*limits, "write_timeout_ms", config.limits.write_timeout) ||
            !reader.read_ms(*limits, "reload_timeout_ms", config.limits.reload_timeout)) {
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
            if (uid < 0 || service.name.empty()) {
                reader.error = where(reader.path, node.source()) +
                               ": error: each [[service]] needs 'uid' and 'name'";
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
        return {std::nullopt,
                where(path, error.source()) + ": error: " + std::string(error.description())};
    }
    Reader reader{path, {}};
    if (!read_config(parsed, reader, config)) {
        return {std::nullopt, reader.error};
    }
    return {config, {}};
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
