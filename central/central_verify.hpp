// `flowgate audit verify --from postgresql://… --origin NAME`: one host's log in the
// central store verified as the file is (audit/verifier.hpp): its rows through the one
// ChainVerifier, from seq 1, each decoded from its canonical bytes; the tree rebuilt
// from their leaves, every stored node of the origin matched against it, none missing
// and none extra; each stored checkpoint held against the tree at its size (and, given
// the host's key, signed by it). The central store is an existing database, and so
// checked, not trusted: the search columns must say what the bytes say too.
#pragma once

#include "audit/signing_key.hpp"
#include "audit/verifier.hpp"
#include "central/pg.hpp"

#include <optional>
#include <string>

namespace flowgate::central {

// VerifyResult's fields as verify_log() fills them for a file, plus how many rows lie
// past the last checkpoint (not yet vouched for by a signature).
struct CentralVerifyResult {
    audit::VerifyResult log;
    std::uint64_t rows_past_checkpoints = 0;
};

CentralResult<CentralVerifyResult> verify_origin(Connection& conn, const std::string& origin,
                                                 const std::optional<audit::VerifierKey>& key);

} // namespace flowgate::central
