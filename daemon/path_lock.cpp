// The flock beside a path; see path_lock.hpp.
#include "daemon/path_lock.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <sys/file.h>
#include <unistd.h>
#include <utility>

namespace flowgate::daemon {

namespace {

// The holder's pid as it wrote it, or "" when the file holds none.
std::string holder_of(int fd) {
    char text[32] = {};
    const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
    std::string_view pid(text, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) {
        pid.remove_suffix(1);
    }
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string_view::npos) {
        return "";
    }
    return std::string(pid);
}

} // namespace

PathLock::~PathLock() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
}

PathLock::PathLock(PathLock&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}

PathLock& PathLock::operator=(PathLock&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
}

std::optional<std::string> PathLock::acquire(const std::string& path) {
    const std::string lock_path = path + ".lock";
    // O_NOFOLLOW: a symbolic link planted at the lock's name is refused, not followed.
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        return "cannot open the lock file " + lock_path + ": " + std::strerror(errno);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        const std::string holder = holder_of(fd);
        ::close(fd);
        if (error == EWOULDBLOCK) {
            return path + " is in use by another flowgated" +
                   (holder.empty() ? std::string() : " (pid " + holder + ")") + ": it holds " +
                   lock_path;
        }
        return "cannot lock " + lock_path + ": " + std::strerror(error);
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        // The lock holds all the same; only the pid a second daemon would name is missing.
        spdlog::warn("event=lock_pid_not_written path={} error=\"{}\"", lock_path,
                     std::strerror(errno));
    }
    if (m_fd >= 0) {
        ::close(m_fd);
    }
    m_fd = fd;
    return std::nullopt;
}

} // namespace flowgate::daemon
