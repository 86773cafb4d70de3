// Reading a private key file; see key_file.hpp.
#include "audit/key_file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace flowgate::audit {

namespace {

SigningError unreadable(const std::filesystem::path& path, const std::string& why) {
    return {SigningErrc::unreadable_key, path.string() + ": " + why};
}

SigningError system_error(const std::filesystem::path& path, const char* what) {
    return unreadable(path, std::string(what) + ": " + std::strerror(errno));
}

// Closes the descriptor however the read ends.
struct Descriptor {
    int fd = -1;
    ~Descriptor() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

} // namespace

SigningResult<PrivateKeyFile> read_private_key_file(const std::filesystem::path& path) {
    // O_NONBLOCK: a FIFO put where the key should be is refused, not waited on.
    Descriptor file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
    if (file.fd < 0) {
        return system_error(path, "cannot open the key file");
    }
    struct stat status {};
    if (::fstat(file.fd, &status) != 0) {
        return system_error(path, "cannot read the key file");
    }
    if (!S_ISREG(status.st_mode)) {
        return unreadable(path, "not a regular file, so not a key file");
    }
    std::string text(max_key_file_bytes + 1, '\0');
    std::size_t size = 0;
    while (size < text.size()) {
        const ssize_t n = ::read(file.fd, text.data() + size, text.size() - size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return system_error(path, "cannot read the key file");
        }
        if (n == 0) {
            break;
        }
        size += static_cast<std::size_t>(n);
    }
    if (size > max_key_file_bytes) {
        return unreadable(path, "longer than a private key file");
    }
    text.resize(size);
    auto key = parse_private_key(text);
    if (!key) {
        return SigningError{key.error().code, path.string() + ": " + key.error().message};
    }
    return PrivateKeyFile{std::move(key).value(), static_cast<mode_t>(status.st_mode & 07777U)};
}

} // namespace flowgate::audit
