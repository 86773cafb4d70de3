// What the auditor's commands are handed: the store (opened read-only), documents and
// checkpoint files (or the standard input), read whole up to a bound, and the log's
// verifier key, given as its text or as a file holding it. Failures are messages for the
// auditor.
#pragma once

#include "audit/reader.hpp"
#include "audit/signing_key.hpp"

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace flowgate::cli {

struct InputError {
    std::string message;
};

template <class T>
using InputResult =
    boost::outcome_v2::basic_result<T, InputError, boost::outcome_v2::policy::terminate>;

// A proof document is a few KiB; a person's records with their proofs a few MiB at most.
inline constexpr std::size_t max_proof_document_bytes = std::size_t{64} << 20U;

// The whole file at `path` ("-": the standard input), at most max_bytes of it.
InputResult<std::string> read_input(const std::string& path, std::size_t max_bytes);

// The verifier key `argument` is (<name>+<key ID>+<key>), or the one in the file it names.
InputResult<audit::VerifierKey> read_verifier_key(const std::string& argument);

// "flowgate audit: error: <message>" on stderr.
void report_error(const std::string& message);

// The store at `path`, read-only; none (reported) when it cannot be opened.
std::unique_ptr<audit::AuditReader> open_or_report(const std::string& path);

// A store opened for a pass with a progress count: the reader and its last seq (the
// total). None, reported, when the file cannot be opened or read.
struct OpenedLog {
    std::unique_ptr<audit::AuditReader> reader;
    std::uint64_t last_seq = 0;
};
std::optional<OpenedLog> open_log_or_report(const std::string& path);

} // namespace flowgate::cli
