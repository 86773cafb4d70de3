// One daemon per store and per socket path: an exclusive flock on a file beside the
// path (PATH.lock), taken before the path is used and held for the daemon's life. The
// kernel releases it when the process ends however it ends (kill -9 included), so
// there is never a stale lock to clear by hand.
//
// Why a file of its own and not the store itself: SQLite locks the database file with
// POSIX record locks, which belong to the process and are all dropped when any
// descriptor of that file is closed, so a descriptor of ours on the database would be
// a hazard to SQLite's own locking; and an auditor's read-only tools must keep opening
// the store, with SQLite's locks working as usual, while the daemon runs. A lock on
// the path also holds while no store exists yet (--init-store) and whatever happens
// to the file at the path.
#pragma once

#include <optional>
#include <string>

namespace flowgate::daemon {

class PathLock {
public:
    PathLock() = default;
    ~PathLock();
    PathLock(PathLock&& other) noexcept;
    PathLock& operator=(PathLock&& other) noexcept;
    PathLock(const PathLock&) = delete;
    PathLock& operator=(const PathLock&) = delete;

    // Takes the lock on PATH.lock (made if missing; never removed, since removing a lock
    // file races with whoever opens it next) and writes this process's id into it.
    // Returns why not: another process holds it (with the pid the file names), or the
    // file cannot be opened or locked. Never waits.
    std::optional<std::string> acquire(const std::string& path);

    bool held() const { return m_fd >= 0; }

private:
    int m_fd = -1;
};

} // namespace flowgate::daemon
