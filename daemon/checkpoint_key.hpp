// The key flowgated signs its checkpoints with: `--signing-key PATH`, else `signing_key =
// PATH` in the configuration, else the credential `signing_key` systemd passed
// (LoadCredential=, so that the key file itself can stay root's), else none. A host told
// to sign must not silently write unsigned checkpoints, so a configured key that cannot
// be used (missing, unreadable, not a private key text, or a file others than its owner
// may read) stops the start; without one the daemon says, at start and in `status`, that
// its checkpoints are unsigned.
#pragma once

#include "audit/signing_key.hpp"
#include "daemon/config.hpp"

#include <boost/json/object.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>

namespace flowgate::daemon {

// The credential's name in $CREDENTIALS_DIRECTORY.
inline constexpr std::string_view signing_key_credential = "signing_key";

struct CheckpointKey {
    std::shared_ptr<const audit::SigningKey> key; // null: checkpoints are unsigned
    std::filesystem::path file;                   // where it was read from (empty: none)
    bool from_credentials = false;                // systemd's credential, not a configured path
};

// The key the configuration (and the environment's CREDENTIALS_DIRECTORY) names, read;
// a key with no key configured; or nullopt, once a critical `event=<failed_event>
// reason=signing_key path=PATH` line says why the named key cannot be used.
std::optional<CheckpointKey> load_checkpoint_key(const Config& config,
                                                 std::string_view failed_event);

// The start's one line on signing: "checkpoints signed by NAME (VERIFIER KEY)", or that
// they are unsigned.
void log_checkpoint_key(const CheckpointKey& key);

// The `checkpoints` object of the status answer's key part: {"signed":true, "key_name",
// "key_id", "verifier_key", "key_file"} or {"signed":false, "why"}.
boost::json::object checkpoint_key_status(const CheckpointKey& key);

} // namespace flowgate::daemon
