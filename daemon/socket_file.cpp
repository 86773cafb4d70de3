// The socket file one daemon owns; see socket_file.hpp.
#include "daemon/socket_file.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

namespace flowgate::daemon {

namespace {

enum class Listener { none, someone, unknown };

// Whether a process accepts connections on the socket at PATH: a connection refused
// means the file is stale. Non-blocking, so a listener with a full backlog counts as
// one rather than making us wait.
Listener listener_on(const std::string& path, std::string& error) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
        error = "the socket path is too long";
        return Listener::unknown;
    }
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error = std::strerror(errno);
        return Listener::unknown;
    }
    const int connected =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int reason = errno;
    ::close(fd);
    if (connected == 0 || reason == EAGAIN || reason == EINPROGRESS) {
        return Listener::someone;
    }
    if (reason == ECONNREFUSED || reason == ENOENT) {
        return Listener::none;
    }
    error = std::strerror(reason);
    return Listener::unknown;
}

} // namespace

SocketFile::~SocketFile() {
    if (!m_identity) {
        return;
    }
    struct stat now {};
    if (::lstat(m_path.c_str(), &now) == 0 && now.st_dev == m_identity->first &&
        now.st_ino == m_identity->second) {
        ::unlink(m_path.c_str());
    } else {
        spdlog::warn("event=socket_left path={} reason=\"the path no longer names the socket "
                     "this daemon bound\"",
                     m_path);
    }
}

std::optional<std::string> SocketFile::claim(const std::string& path) {
    if (auto refused = m_lock.acquire(path)) {
        return refused;
    }
    m_path = path;
    struct stat existing {};
    if (::lstat(path.c_str(), &existing) != 0) {
        return std::nullopt;
    }
    if (!S_ISSOCK(existing.st_mode)) {
        return path + " exists and is not a socket";
    }
    std::string error;
    switch (listener_on(path, error)) {
    case Listener::someone:
        return "another process is listening on " + path + "; a live socket is never replaced";
    case Listener::unknown:
        return "cannot tell whether a process listens on " + path + ": " + error;
    case Listener::none:
        break;
    }
    spdlog::info("event=stale_socket_removed path={}", path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return "cannot remove the stale socket " + path + ": " + std::strerror(errno);
    }
    return std::nullopt;
}

void SocketFile::bound() {
    struct stat info {};
    if (::lstat(m_path.c_str(), &info) == 0) {
        m_identity = std::pair{info.st_dev, info.st_ino};
    }
}

} // namespace flowgate::daemon
