// A small file read whole, for the texts that sit beside the store (the signing key, the
// anchor checkpoint): opened once without blocking, refused unless it is a regular file
// (a FIFO put where a file should be would wait for a writer, a device never end), and
// refused past a limit, read as one byte more than the limit to tell.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <sys/types.h>

namespace flowgate::audit {

struct SmallFile {
    enum class Fault { none, cannot_open, cannot_read, not_regular, too_large };
    Fault fault = Fault::none;
    int error_number = 0; // errno, for cannot_open and cannot_read
    std::string text;     // the whole file, when fault is none
    mode_t mode = 0;      // its permission bits (07777), from the descriptor read
};

SmallFile read_small_file(const std::filesystem::path& path, std::size_t limit);

} // namespace flowgate::audit
