// Reading a small file whole; see small_file.hpp.
#include "audit/small_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace flowgate::audit {

namespace {

// Closes the descriptor however the read ends.
struct Descriptor {
    int fd = -1;
    ~Descriptor() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

SmallFile failed(SmallFile::Fault fault, int error_number = 0) {
    SmallFile out;
    out.fault = fault;
    out.error_number = error_number;
    return out;
}

} // namespace

SmallFile read_small_file(const std::filesystem::path& path, std::size_t limit) {
    Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
    if (file.fd < 0) {
        return failed(SmallFile::Fault::cannot_open, errno);
    }
    struct stat status {};
    if (::fstat(file.fd, &status) != 0) {
        return failed(SmallFile::Fault::cannot_read, errno);
    }
    if (!S_ISREG(status.st_mode)) {
        return failed(SmallFile::Fault::not_regular);
    }
    SmallFile out;
    out.mode = static_cast<mode_t>(status.st_mode & 07777U);
    out.text.assign(limit + 1, '\0');
    std::size_t size = 0;
    while (size < out.text.size()) {
        const ssize_t n = ::read(file.fd, out.text.data() + size, out.text.size() - size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return failed(SmallFile::Fault::cannot_read, errno);
        }
        if (n == 0) {
            break;
        }
        size += static_cast<std::size_t>(n);
    }
    if (size > limit) {
        return failed(SmallFile::Fault::too_large);
    }
    out.text.resize(size);
    return out;
}

} // namespace flowgate::audit
