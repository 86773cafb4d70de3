// Finding, reading and reporting the checkpoint signing key; see checkpoint_key.hpp.
#include "daemon/checkpoint_key.hpp"

#include "audit/key_file.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <string>
#include <system_error>

namespace flowgate::daemon {
namespace {

constexpr std::string_view unsigned_why = "no signing_key configured";

// The file to read, or none when no key is configured anywhere.
std::optional<CheckpointKey> key_source(const Config& config) {
    if (!config.signing_key_path.empty()) {
        return CheckpointKey{nullptr, config.signing_key_path, false};
    }
    const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
    if (credentials == nullptr || *credentials == '\0') {
        return std::nullopt;
    }
    std::filesystem::path file = std::filesystem::path(credentials) / signing_key_credential;
    std::error_code ignored;
    if (!std::filesystem::exists(std::filesystem::symlink_status(file, ignored))) {
        return std::nullopt;
    }
    return CheckpointKey{nullptr, std::move(file), true};
}

std::string octal_mode(mode_t mode) {
    return fmt::format("{:04o}", static_cast<unsigned>(mode & 07777U));
}

} // namespace

std::optional<CheckpointKey> load_checkpoint_key(const Config& config,
                                                 std::string_view failed_event) {
    std::optional<CheckpointKey> source = key_source(config);
    if (!source) {
        return CheckpointKey{};
    }
    auto read = audit::read_private_key_file(source->file);
    std::string error;
    if (!read) {
        error = read.error().message;
    } else if (read.value().open_to_others() && !source->from_credentials) {
        // systemd makes a credential its service's alone; a configured file must be so
        // too.
        error = source->file.string() + ": the key file's mode is " +
                octal_mode(read.value().mode) +
                ": others than its owner may read or change it (chmod 600 it)";
    }
    if (!error.empty()) {
        spdlog::critical("event={} reason=signing_key path={} error=\"{}\"", failed_event,
                         source->file.string(), error);
        return std::nullopt;
    }
    source->key = std::make_shared<const audit::SigningKey>(std::move(read.value().key));
    return source;
}

void log_checkpoint_key(const CheckpointKey& key) {
    if (!key.key) {
        spdlog::info("event=checkpoint_signing checkpoints are unsigned: {}", unsigned_why);
        return;
    }
    spdlog::info("event=checkpoint_signing key_file={} checkpoints signed by {} ({})",
                 key.file.string(), key.key->name(),
                 audit::format_verifier_key(key.key->verifier()));
}

boost::json::object checkpoint_key_status(const CheckpointKey& key) {
    if (!key.key) {
        return boost::json::object{{"signed", false}, {"why", unsigned_why}};
    }
    return boost::json::object{{"signed", true},
                               {"key_name", key.key->name()},
                               {"key_id", audit::key_id_hex(key.key->id())},
                               {"verifier_key", audit::format_verifier_key(key.key->verifier())},
                               {"key_file", key.file.string()}};
}

} // namespace flowgate::daemon
