// The socket file flowgated binds, owned by one daemon: claimed only when nobody
// listens on it (a live socket is never replaced, only a stale one left by a daemon
// that died), and removed at exit only if the path still names the socket this daemon
// bound (same device and inode), so a stopping daemon never takes the path from
// another. A lock beside it (PathLock) makes the claim and the bind one step for two
// daemons started at once.
#pragma once

#include "daemon/path_lock.hpp"

#include <optional>
#include <string>
#include <sys/types.h>

namespace flowgate::daemon {

class SocketFile {
public:
    SocketFile() = default;
    ~SocketFile(); // removes the file if it is still the one bound
    SocketFile(const SocketFile&) = delete;
    SocketFile& operator=(const SocketFile&) = delete;

    // Locks PATH.lock, then makes PATH free to bind: nothing there, or a stale socket
    // (removed). Returns why not: the lock is held, PATH is not a socket (a regular
    // file, a directory, a link), or something accepts connections on it.
    std::optional<std::string> claim(const std::string& path);

    // After the bind: remembers which file is ours.
    void bound();

private:
    PathLock m_lock;
    std::string m_path;
    std::optional<std::pair<dev_t, ino_t>> m_identity;
};

} // namespace flowgate::daemon
