// Reading the private key file `flowgate audit keygen` writes, for the daemon that signs
// with it and the command that shows its verifier key: one reader, so that both take the
// same files and say the same things about the others. The file is opened once and its
// mode read from that descriptor, so what is checked is what was read.
#pragma once

#include "audit/signing_error.hpp"
#include "audit/signing_key.hpp"

#include <filesystem>
#include <sys/types.h>

namespace flowgate::audit {

// A private key text is about a hundred bytes; a file much longer is not one.
inline constexpr std::size_t max_key_file_bytes = 4096;

struct PrivateKeyFile {
    SigningKey key;
    mode_t mode = 0; // the file's permission bits (07777)

    // True when its group or others may read or write it (a key should be 0600 or 0400).
    bool open_to_others() const noexcept { return (mode & 077U) != 0; }
};

// The key in the file at `path`. Each failure is an unreadable_key error (or the key
// text's own, parse_private_key()) whose message starts with the path: a file that is
// missing or cannot be read (with the system's reason), one that is not a regular file,
// one longer than max_key_file_bytes, one that is not a private key text.
SigningResult<PrivateKeyFile> read_private_key_file(const std::filesystem::path& path);

} // namespace flowgate::audit
