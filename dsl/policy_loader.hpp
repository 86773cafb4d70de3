// Reading a policy from disk (or from texts already in memory, as replay and tests
// have them) through the whole pipeline: parse every file, check, compile. The result
// is a ready policy or every diagnostic — never a policy that had an error. A policy
// is read only from regular files, opened without blocking and bounded in size, so
// that a FIFO, a device or a huge file where a policy file should be is an error
// naming it, not a load that hangs or exhausts memory.
#pragma once

#include "compiler.hpp"
#include "diagnostic.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::dsl {

struct LoadResult {
    std::shared_ptr<const CompiledPolicy> policy; // null when there are diagnostics
    Diagnostics diagnostics;                      // sorted; empty on success

    explicit operator bool() const { return policy != nullptr; }
};

// The most bytes a policy may hold, all its files together (16 MiB, some 500 times the
// bundled policy; such a policy loads in a few seconds). A fixed limit rather than a
// setting, so that `flowgate policy check` and the daemon agree on what loads.
inline constexpr std::size_t max_policy_bytes = 16 * 1024 * 1024;

// The files a policy path names, in the order they are read: `path` itself when it is
// not a directory, else the directory's policy files (not recursive) in file-name order,
// each as `path` joined with its name. A policy file is an entry named *.policy that is
// a regular file or a symbolic link to one; a directory, FIFO, socket or device of that
// name is not. A link that leads nowhere (or whose target cannot be examined) is listed,
// so that reading it fails under its name instead of the policy quietly losing a file.
// nullopt when the directory cannot be listed in full. `flowgate policy fmt` formats
// exactly the files that load_policy reads.
std::optional<std::vector<std::filesystem::path>> policy_files(const std::filesystem::path& path);

// One policy file's bytes, read as load_policy reads it: opened without blocking
// (O_NONBLOCK, so a FIFO with no writer does not wait), examined on the open
// descriptor (so a file swapped for another kind between listing and reading is
// caught), and read only if it is a regular file (a link to one is fine) of at most
// `limit` bytes. Otherwise nullopt, with one diagnostic naming the file appended.
std::optional<std::string> read_policy_file(const std::filesystem::path& path,
                                            Diagnostics& diagnostics,
                                            std::size_t limit = max_policy_bytes);

// `path` is one *.policy file or a directory of them, read as policy_files() lists them
// and read_policy_file() reads each (at most max_policy_bytes in all). Diagnostics name
// each file as policy_files() gives it (e.g. "policies/base.policy").
LoadResult load_policy(const std::filesystem::path& path);

// The same pipeline over files already read; `name` is what diagnostics and rule
// locations show.
LoadResult load_policy(std::vector<PolicyText> files);

// "sha256:<hex>" over each file's bare name and bytes, in order. The bare name keeps
// the hash independent of where the policy directory lives.
std::string policy_hash(const std::vector<PolicyText>& files);

} // namespace flowgate::dsl
