// The anchor: the daemon's latest checkpoint, kept in a file outside the store
// (`anchor_file`, by default `<audit_db>.checkpoint`), so that a store cut short, altered
// with its chain recomputed, rebuilt from an old copy or replaced by another log is
// refused at the next start instead of served on. The file holds the checkpoint exactly
// as the store keeps it: the signed note (c2sp.org/signed-note around a
// c2sp.org/tlog-checkpoint body) when the daemon signs, the body alone when it does not,
// so that an auditor can hand it to `flowgate audit verify --checkpoint` as it is.
// (Each checkpoint is also one journal line, the audit store's `audit checkpoint:`, so
// that the checkpoints leave the host with the logs and a lost anchor can be restored.)
#pragma once

#include "audit/store.hpp"
#include "daemon/checkpoint_key.hpp"

#include <boost/json/object.hpp>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace flowgate::daemon {

// Why the store at `store` may not be served on, given the anchor file at `anchor` and
// the key the daemon signs with; none when it may. The anchor's tree must be the store's:
// the same origin, a store at least as large, and the store's tree at the anchor's size
// with the anchor's root. A signed anchor must be signed by the daemon's key when it has
// one. A missing anchor is refused unless the store is empty. Each refusal says what the
// anchor expected and what the store holds.
std::optional<std::string> check_anchor(const std::filesystem::path& anchor,
                                        const std::filesystem::path& store,
                                        const CheckpointKey& signing);

// Replaces the file at `path` with `text` so that a crash leaves the old file or the new
// one, whole: a temporary file beside it, written, fdatasync'd, renamed over it, and the
// directory synced. What went wrong, or none.
std::optional<std::string> write_file_atomically(const std::filesystem::path& path,
                                                 std::string_view text);

// Keeps the anchor file current from a thread of its own: the audit writer hands each
// checkpoint it committed to offer() (which only queues it), and the thread writes the
// file with the newest (older ones still waiting are skipped: only the newest matters).
class AnchorKeeper {
public:
    explicit AnchorKeeper(std::filesystem::path path);
    ~AnchorKeeper(); // stop()
    AnchorKeeper(const AnchorKeeper&) = delete;
    AnchorKeeper& operator=(const AnchorKeeper&) = delete;

    const std::filesystem::path& path() const noexcept { return m_path; }

    // From the audit writer's thread (AuditOptions::on_checkpoint): a lock and a push.
    void offer(const audit::CheckpointRecord& checkpoint);

    // Writes what was offered and not yet written, then ends the thread; the file is
    // current once this returns. Later offers are ignored.
    void stop();

    // What this keeper wrote: the tree size and time of the checkpoint the file holds
    // (none before the first), and the last failure to write it (kept after a later
    // success, as the audit store's last_error is).
    struct State {
        std::optional<std::uint64_t> size;
        std::int64_t time_us = 0;
        std::string last_error;
    };
    State state() const;

    // The anchor's fields of status's `checkpoints`: anchor_file, anchored_size and
    // anchored_at (once one is written), anchor_error.
    boost::json::object status() const;

private:
    void run();

    const std::filesystem::path m_path;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    std::vector<audit::CheckpointRecord> m_pending;
    bool m_stopping = false;
    State m_state;
    std::thread m_thread;
};

} // namespace flowgate::daemon
