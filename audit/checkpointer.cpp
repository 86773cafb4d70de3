// The checkpointer thread; see checkpointer.hpp.
#include "audit/checkpointer.hpp"

#include "audit/sqlite.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

namespace flowgate::audit {

namespace {

// How often the WAL is copied, and how soon again while it is long.
constexpr std::chrono::milliseconds checkpoint_interval{100};
constexpr std::chrono::milliseconds hurried_checkpoint_interval{2};

} // namespace

Checkpointer::Checkpointer(std::filesystem::path path, std::chrono::milliseconds busy_timeout,
                           std::size_t hurry_from_frames)
    : m_path(std::move(path)), m_busy_timeout(busy_timeout),
      m_hurry_from_frames(hurry_from_frames) {}

Checkpointer::~Checkpointer() {
    stop();
}

void Checkpointer::start() {
    m_thread = std::thread([this] { run(); });
}

void Checkpointer::stop() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    if (m_thread.joinable()) {
        m_thread.join();
    }
    m_tid.store(0, std::memory_order_release);
}

bool Checkpointer::hurry() {
    const pid_t tid = m_tid.load(std::memory_order_acquire);
    if (tid == 0 || m_hurried.load(std::memory_order_relaxed)) {
        return tid != 0;
    }
    sched_param normal{};
    if (sched_setscheduler(tid, SCHED_OTHER, &normal) != 0) {
        return false;
    }
    m_hurried.store(true, std::memory_order_relaxed);
    return true;
}

// A failure (a full disk, say) is retried on the next round; the writer's health is
// what the daemon reports.
void Checkpointer::run() {
    // Copying is background work: it runs when the serving thread and the writer leave
    // a processor free (if the system lets it: without, at the normal policy). Should
    // that starve it, the writer copies the WAL itself, and hurries it (hurry()) when
    // the starved thread holds what the writer's copy needs.
    pthread_setname_np(pthread_self(), "wal-checkpoint");
    sched_param idle{};
    sched_setscheduler(static_cast<pid_t>(::gettid()), SCHED_IDLE, &idle);
    m_tid.store(static_cast<pid_t>(::gettid()), std::memory_order_release);
    Db db;
    auto pause = checkpoint_interval;
    for (;;) {
        {
            std::unique_lock lock(m_mutex);
            m_wake.wait_for(lock, pause, [&] { return m_stopping; });
            if (m_stopping) {
                return;
            }
        }
        if (!db) {
            auto opened =
                open_db(m_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, m_busy_timeout);
            if (!opened) {
                continue;
            }
            db = std::move(opened).value();
            // A connection learns that the file is in WAL mode on its first read; until
            // then a checkpoint call on it does nothing at all.
            if (sqlite3_exec(db.get(), "SELECT COUNT(*) FROM sqlite_schema", nullptr, nullptr,
                             nullptr) != SQLITE_OK) {
                db.reset();
                continue;
            }
        }
        int frames = 0;
        int copied = 0;
        const int rc = sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                                 &frames, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
            spdlog::debug("audit checkpoint failed: {}", sqlite3_errmsg(db.get()));
            db.reset();
        }
        m_copied_frames.store(rc == SQLITE_OK && copied > 0 ? static_cast<std::size_t>(copied) : 0,
                              std::memory_order_relaxed);
        // A long WAL: go on copying, so that the writer is soon left only a little.
        const bool long_wal = static_cast<std::size_t>(std::max(frames, 0)) >= m_hurry_from_frames;
        pause = long_wal ? hurried_checkpoint_interval : checkpoint_interval;
        // Hurried, and the WAL found short again: back to background work.
        if (rc == SQLITE_OK && !long_wal && m_hurried.load(std::memory_order_relaxed)) {
            sched_setscheduler(static_cast<pid_t>(::gettid()), SCHED_IDLE, &idle);
            m_hurried.store(false, std::memory_order_relaxed);
        }
    }
}

} // namespace flowgate::audit
