// The thread that copies the write-ahead log into the database file. Done inside a
// commit, copying would stall that batch's answers; so the writer turns SQLite's own
// checkpoints off and this thread copies on a connection of its own, now and then,
// without blocking the writer (PASSIVE), in the idle scheduling class so that it never
// preempts the serving thread or the writer. The writer restarts a long WAL itself
// (store.cpp), from what copied_frames() says this thread left; and when it cannot,
// because this thread, starved of processor time by a sustained load, holds the
// checkpoint's lock in the middle of a round or a reader's snapshot in the middle of a
// read, it hurries it (hurry()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <sys/types.h>
#include <thread>

namespace flowgate::audit {

class Checkpointer {
public:
    // `hurry_from_frames`: while the WAL is at least this long, copy again almost at once.
    Checkpointer(std::filesystem::path path, std::chrono::milliseconds busy_timeout,
                 std::size_t hurry_from_frames);
    // Stops the thread.
    ~Checkpointer();
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    void start();
    // Wakes the thread and waits for it to end; a round in progress is finished first.
    void stop();

    // The WAL frames the last round copied (0 when it could not copy).
    std::size_t copied_frames() const noexcept {
        return m_copied_frames.load(std::memory_order_relaxed);
    }

    // Moves the thread from the idle scheduling class to the normal one, so that a round
    // it is in the middle of ends soon; it goes back to idle by itself once the WAL is
    // short again. From any thread; false if the system refused (without CAP_SYS_NICE
    // that needs an RLIMIT_NICE of at least 20: the systemd unit's LimitNICE=+0) or
    // the thread is not running.
    bool hurry();
    // Whether the thread is in the normal class because of hurry().
    bool hurried() const noexcept { return m_hurried.load(std::memory_order_relaxed); }

private:
    void run();

    const std::filesystem::path m_path;
    const std::chrono::milliseconds m_busy_timeout;
    const std::size_t m_hurry_from_frames;

    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stopping = false;
    std::thread m_thread;
    std::atomic<std::size_t> m_copied_frames{0};
    std::atomic<pid_t> m_tid{0};        // the thread's, once it runs
    std::atomic<bool> m_hurried{false}; // moved to the normal class by hurry()
};

} // namespace flowgate::audit
