// What someone with the store's file and flowgate's own code could make of it: a new
// store of the same origin holding whatever rows they like, its hash chain, Merkle tree
// and checkpoints all computed by flowgate's writer, so that the file checks clean on its
// own (`flowgate audit verify`). Only what is kept outside the file — the daemon's
// anchor, a checkpoint an auditor kept — can show it. The tests make such stores to see
// that the daemon refuses them.
#pragma once

#include "audit/record.hpp"

#include <filesystem>
#include <functional>
#include <vector>

namespace flowgate::integration {

// Writes a new store at `forged` (which must not exist) with the origin and the policy
// files of `source` and the rows `edit` makes of source's rows (times kept; seqs, chains
// and the tree the writer's).
void forge_store(const std::filesystem::path& source, const std::filesystem::path& forged,
                 const std::function<void(std::vector<audit::AuditRecord>&)>& edit);

} // namespace flowgate::integration
