// Reading a policy from disk (or from texts already in memory, as replay and tests
// have them) through the whole pipeline: parse every file, check, compile. The result
// is a ready policy or every diagnostic — never a policy that had an error.
#pragma once

#include "compiler.hpp"
#include "diagnostic.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace flowgate::dsl {

struct LoadResult {
    std::shared_ptr<const CompiledPolicy> policy; // null when there are diagnostics
    Diagnostics diagnostics;                      // sorted; empty on success

    explicit operator bool() const { return policy != nullptr; }
};

// `path` is one *.policy file or a directory whose *.policy files (not recursive) are
// read in file-name order. Diagnostics name each file as `path` joined with its name,
// as given (e.g. "policies/base.policy").
LoadResult load_policy(const std::filesystem::path& path);

// The same pipeline over files already read; `name` is what diagnostics and rule
// locations show.
LoadResult load_policy(std::vector<PolicyText> files);

// "sha256:<hex>" over each file's bare name and bytes, in order. The bare name keeps
// the hash independent of where the policy directory lives.
std::string policy_hash(const std::vector<PolicyText>& files);

} // namespace flowgate::dsl
