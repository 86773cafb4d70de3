// Reading a private key file; see key_file.hpp.
#include "audit/key_file.hpp"

#include "audit/small_file.hpp"

#include <cstring>
#include <string>

namespace flowgate::audit {

namespace {

SigningError unreadable(const std::filesystem::path& path, const std::string& why) {
    return {SigningErrc::unreadable_key, path.string() + ": " + why};
}

} // namespace

SigningResult<PrivateKeyFile> read_private_key_file(const std::filesystem::path& path) {
    const SmallFile file = read_small_file(path, max_key_file_bytes);
    switch (file.fault) {
    case SmallFile::Fault::none:
        break;
    case SmallFile::Fault::cannot_open:
        return unreadable(path, std::string("cannot open the key file: ") +
                                    std::strerror(file.error_number));
    case SmallFile::Fault::cannot_read:
        return unreadable(path, std::string("cannot read the key file: ") +
                                    std::strerror(file.error_number));
    case SmallFile::Fault::not_regular:
        return unreadable(path, "not a regular file, so not a key file");
    case SmallFile::Fault::too_large:
        return unreadable(path, "longer than a private key file");
    }
    auto key = parse_private_key(file.text);
    if (!key) {
        return SigningError{key.error().code, path.string() + ": " + key.error().message};
    }
    return PrivateKeyFile{std::move(key).value(), file.mode};
}

} // namespace flowgate::audit
