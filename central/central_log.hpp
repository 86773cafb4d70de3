// The central store read back: the origins it holds, and one origin's rows, each
// decoded from the canonical bytes the host hashed (audit/canonical.hpp), so that what
// the auditor's tools see is what the chain covers. The columns copied out for searches
// come along, for a check that they still say what the bytes say.
#pragma once

#include "audit/record.hpp"
#include "central/pg.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::central {

// One central row, valid during the visit.
struct CentralRow {
    std::uint64_t seq = 0;           // the row's key in the central store
    int schema_version = 0;          // of the host's store when it was shipped
    std::string_view canonical;      // the bytes as shipped
    bool decoded = false;            // the bytes are a row's (parse_canonical_row)
    audit::AuditRowView row;         // decoded, with prev_hash and hash from their columns
    std::int64_t search_time_us = 0; // the search columns
    std::string_view search_kind, search_decision, search_purpose, search_recipient, search_subject;
};

// Origins in the central store, in order.
CentralResult<std::vector<std::string>> central_origins(Connection& conn);

// Calls `visit` for each row of `origin`, in seq order, until it returns false.
CentralResult<void> for_each_central_row(Connection& conn, const std::string& origin,
                                         const std::function<bool(const CentralRow&)>& visit);

// The policy texts `origin` shipped under `policy_hash`: each file's path as its host
// loaded it (rules name their source by it) to its text; empty when none are.
CentralResult<audit::PolicyFiles> central_policy_files(Connection& conn, const std::string& origin,
                                                       const std::string& policy_hash);

// Why the row's search columns are not what its bytes say, or "" when they are.
std::string search_column_mismatch(const CentralRow& row);

} // namespace flowgate::central
