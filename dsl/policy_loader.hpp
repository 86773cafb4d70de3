// Reading a policy from disk (or from texts already in memory, as replay and tests
// have them) through the whole pipeline: parse every file, check, compile. The result
// is a ready policy or every diagnostic — never a policy that had an error.
#pragma once

#include "compiler.hpp"
#include "diagnostic.hpp"

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

// The files a policy path names, in the order they are read: `path` itself when it is
// not a directory, else the directory's policy files (not recursive) in file-name order,
// each as `path` joined with its name. A policy file is an entry named *.policy that is
// a regular file or a symbolic link to one; a directory, FIFO, socket or device of that
// name is not. A link that leads nowhere (or whose target cannot be examined) is listed,
// so that reading it fails under its name instead of the policy quietly losing a file.
// nullopt when the directory cannot be listed in full. `flowgate policy fmt` formats
// exactly the files that load_policy reads.
std::optional<std::vector<std::filesystem::path>> policy_files(const std::filesystem::path& path);

// `path` is one *.policy file or a directory of them, read as policy_files() lists them.
// Diagnostics name each file as policy_files() gives it (e.g. "policies/base.policy").
LoadResult load_policy(const std::filesystem::path& path);

// The same pipeline over files already read; `name` is what diagnostics and rule
// locations show.
LoadResult load_policy(std::vector<PolicyText> files);

// "sha256:<hex>" over each file's bare name and bytes, in order. The bare name keeps
// the hash independent of where the policy directory lives.
std::string policy_hash(const std::vector<PolicyText>& files);

} // namespace flowgate::dsl
