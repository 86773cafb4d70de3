// The anchor file: checked at start, kept current by a thread of its own; see anchor.hpp.
#include "daemon/anchor.hpp"

#include "audit/reader.hpp"
#include "audit/request_text.hpp"
#include "audit/signed_note.hpp"
#include "audit/small_file.hpp"
#include "audit/tree_checkpoint.hpp"
#include "daemon/log_throttle.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace flowgate::daemon {
namespace {

namespace fs = std::filesystem;

std::string system_error(std::string_view what, const fs::path& path) {
    return std::string(what) + " " + path.string() + ": " + std::strerror(errno);
}

// Closes a descriptor however a step ends.
struct Descriptor {
    int fd = -1;
    ~Descriptor() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

bool write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// The anchor's text; none when there is no file; an error when there is one that cannot
// be read or is too large to be a checkpoint.
struct AnchorText {
    std::optional<std::string> text;
    std::string error;
};

AnchorText read_anchor(const fs::path& path) {
    const audit::SmallFile file = audit::read_small_file(path, audit::max_note_bytes);
    const auto reason = [&file] {
        return std::string(std::strerror(file.error_number));
    };
    switch (file.fault) {
    case audit::SmallFile::Fault::none:
        return {file.text, {}};
    case audit::SmallFile::Fault::cannot_open:
        if (file.error_number == ENOENT) {
            return {};
        }
        return {{}, "cannot open " + path.string() + ": " + reason()};
    case audit::SmallFile::Fault::cannot_read:
        return {{}, "cannot read " + path.string() + ": " + reason()};
    case audit::SmallFile::Fault::not_regular:
        return {{}, path.string() + " is not a regular file, so not an anchor"};
    case audit::SmallFile::Fault::too_large:
        return {{}, path.string() + " is larger than a checkpoint can be"};
    }
    return {};
}

std::string restore_hint(const fs::path& anchor) {
    return "restore " + anchor.string() +
           " from the latest checkpoint kept outside the store (the note of the journal's "
           "last 'audit checkpoint:' line, its \\n made newlines and its \\\\ backslashes, "
           "is the file), or, to begin a new log, move the store aside and run flowgated "
           "--init-store";
}

// The checkpoint body of the anchor's text, its signature checked against the daemon's
// key when both are there; or why the anchor is not one the daemon may go by.
std::optional<std::string> anchor_body(const fs::path& anchor, const std::string& text,
                                       const CheckpointKey& signing, std::string& body) {
    body = audit::note_text_unchecked(text);
    const std::string key_label = signing.key ? signing.key->name() + "+" +
                                                    audit::key_id_hex(signing.key->id()) + " (" +
                                                    signing.file.string() + ")"
                                              : std::string();
    if (body.size() == text.size()) {
        if (!signing.key) {
            return std::nullopt; // an unsigned checkpoint: the body alone
        }
        // Whoever can write the file could have written it: only a signature makes the
        // anchor more than the store's own say-so.
        return "the anchor " + anchor.string() + " is unsigned, and this daemon signs with " +
               key_label +
               ": a log begun unsigned goes on unsigned; to sign, begin a new log "
               "(move the store and its anchor aside, keep both, and run --init-store with "
               "the key)";
    }
    std::vector<audit::VerifierKey> known;
    if (signing.key) {
        known.push_back(signing.key->verifier());
    }
    auto opened = audit::open_note(text, known);
    if (opened) {
        return std::nullopt;
    }
    if (opened.error().code != audit::SigningErrc::no_known_signature) {
        return "the anchor " + anchor.string() +
               " is not a signed checkpoint: " + opened.error().message;
    }
    if (!signing.key) {
        return std::nullopt; // a signature the daemon has no key to check: the tree is checked
    }
    return "the anchor " + anchor.string() + " is not signed by this daemon's key " + key_label +
           ": " + opened.error().message + "; start the daemon with the key that signed it";
}

std::string root_text(const audit::TreeHash& root) {
    return audit::base64_encode(
        std::string_view(reinterpret_cast<const char*>(root.data()), root.size()));
}

} // namespace

std::optional<std::string> check_anchor(const fs::path& anchor, const fs::path& store,
                                        const CheckpointKey& signing) {
    auto reader = audit::AuditReader::open(store);
    if (!reader) {
        return "cannot read the store to check it against its anchor: " + reader.error().message;
    }
    auto rows = reader.value()->last_seq();
    if (!rows) {
        return "cannot read the store to check it against its anchor: " + rows.error().message;
    }
    AnchorText read = read_anchor(anchor);
    if (!read.error.empty()) {
        return read.error;
    }
    if (!read.text) {
        if (rows.value() == 0) {
            return std::nullopt; // nothing to lose: no checkpoint was ever made of it
        }
        return "there is no anchor at " + anchor.string() + " for a store of " +
               std::to_string(rows.value()) + " rows, so nothing shows it is the log last " +
               "served: " + restore_hint(anchor);
    }
    std::string body;
    if (auto refused = anchor_body(anchor, *read.text, signing, body)) {
        return refused;
    }
    auto checkpoint = audit::parse_tree_checkpoint(body);
    if (!checkpoint) {
        return "the anchor " + anchor.string() +
               " is not a checkpoint: " + checkpoint.error().message;
    }
    const audit::TreeCheckpoint& expected = checkpoint.value();
    const std::string expected_tree =
        "tree size " + std::to_string(expected.size) + ", root " + root_text(expected.root);
    auto origin = reader.value()->origin();
    if (!origin) {
        return "cannot read the store's origin: " + origin.error().message;
    }
    if (origin.value() != expected.origin) {
        return "the store is the log '" + origin.value() + "', its anchor " + anchor.string() +
               " is of the log '" + expected.origin + "' (" + expected_tree +
               "): the store was replaced by another log";
    }
    if (rows.value() < expected.size) {
        return "the store holds " + std::to_string(rows.value()) + " rows, its anchor " +
               anchor.string() + " expects at least " + std::to_string(expected.size) + " (" +
               expected_tree + "): rows were cut off its end, or it is an older copy";
    }
    auto root = reader.value()->tree_root(expected.size);
    if (!root) {
        return "cannot compute the store's tree at size " + std::to_string(expected.size) + ": " +
               root.error().message;
    }
    if (root.value() != expected.root) {
        return "the store's tree at size " + std::to_string(expected.size) + " has root " +
               root_text(root.value()) + ", its anchor " + anchor.string() + " expects " +
               expected_tree +
               ": rows were altered (their chain recomputed), or the store was rebuilt from an "
               "older copy";
    }
    return std::nullopt;
}

std::optional<std::string> write_file_atomically(const fs::path& path, std::string_view text) {
    const fs::path temporary = path.string() + ".tmp";
    {
        Descriptor file{
            ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644)};
        if (file.fd < 0) {
            return system_error("cannot create", temporary);
        }
        if (!write_all(file.fd, text) || ::fdatasync(file.fd) != 0) {
            std::string error = system_error("cannot write", temporary);
            ::unlink(temporary.c_str());
            return error;
        }
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        std::string error =
            system_error("cannot rename to " + path.string() + " the file", temporary);
        ::unlink(temporary.c_str());
        return error;
    }
    // The rename is durable once the directory is.
    const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
    Descriptor parent{::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (parent.fd < 0 || ::fsync(parent.fd) != 0) {
        return system_error("cannot sync the directory", directory);
    }
    return std::nullopt;
}

AnchorKeeper::AnchorKeeper(fs::path path) : m_path(std::move(path)), m_thread([this] { run(); }) {}

AnchorKeeper::~AnchorKeeper() {
    stop();
}

void AnchorKeeper::offer(const audit::CheckpointRecord& checkpoint) {
    {
        std::lock_guard lock(m_mutex);
        if (m_stopping) {
            return;
        }
        m_pending.push_back(checkpoint);
    }
    m_wake.notify_one();
}

void AnchorKeeper::stop() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    if (m_thread.joinable()) {
        m_thread.join();
    }
}

AnchorKeeper::State AnchorKeeper::state() const {
    std::lock_guard lock(m_mutex);
    return m_state;
}

boost::json::object AnchorKeeper::status() const {
    const State now = state();
    boost::json::object out{{"anchor_file", m_path.string()}};
    if (now.size) {
        out["anchored_size"] = *now.size;
        out["anchored_at"] = now.time_us / 1'000'000;
    }
    out["anchor_error"] = now.last_error;
    return out;
}

void AnchorKeeper::run() {
    LogThrottle failures;
    std::unique_lock lock(m_mutex);
    for (;;) {
        m_wake.wait(lock, [this] { return m_stopping || !m_pending.empty(); });
        if (m_pending.empty()) {
            return; // stopping, and everything offered is written
        }
        std::vector<audit::CheckpointRecord> batch;
        batch.swap(m_pending);
        lock.unlock();
        const audit::CheckpointRecord& newest = batch.back();
        std::optional<std::string> failed = write_file_atomically(m_path, newest.note);
        if (failed) {
            if (auto suppressed = failures.admit()) {
                spdlog::error("event=anchor_not_written path={} tree_size={} error=\"{}\" "
                              "suppressed={}",
                              m_path.string(), newest.tree_size, *failed, *suppressed);
            }
        }
        lock.lock();
        if (failed) {
            m_state.last_error = *failed;
        } else {
            m_state.size = newest.tree_size;
            m_state.time_us = newest.time_us;
        }
    }
}

} // namespace flowgate::daemon
