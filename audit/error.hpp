// The one error vocabulary of the audit library: every operation on the file, the
// writer's and the auditor's alike, fails with one of these codes and a message for
// the operator, returned as a value.
#pragma once

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <string>
#include <string_view>

namespace flowgate::audit {

// What an error about a missing or empty store tells the operator to do: stores are
// made only on purpose (AuditStore::create), never as a side effect of opening one.
inline constexpr std::string_view create_store_hint =
    "create one with `flowgated --init-store` (as the user flowgated runs as)";

enum class AuditErrc {
    unavailable,  // the store cannot be read or written now (disk full, I/O error, locked)
    broken_chain, // the rows do not chain: altered, removed or inserted out of sequence
    bad_schema,   // the file is not a flowgate audit store of this version
    cannot_open,  // the file cannot be opened or created
    closed,       // the store was closed before the record was submitted
};

struct AuditError {
    AuditErrc code = AuditErrc::unavailable;
    std::string message; // for operators: the SQLite message, or the row that fails
};

template <class T>
using AuditResult =
    boost::outcome_v2::basic_result<T, AuditError, boost::outcome_v2::policy::terminate>;

} // namespace flowgate::audit
