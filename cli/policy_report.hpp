// `flowgate policy report`: the compiled policy rendered back as the disclosure table
// the society publishes (個人情報取扱事例), with a matrix per purpose of what the daemon
// answers for each recipient and data category, the hard limits, and the policy's hash
// and files. Everything is read from the CompiledPolicy and every matrix cell is the
// evaluator's answer, so the published notice and the enforced policy are one artifact.
#pragma once

#include "dsl/compiler.hpp"

#include <string>
#include <vector>

namespace flowgate::cli {

// What the daemon answers for a check of one category to one recipient under one
// purpose (no activity named): allowed with no context, allowed only with some
// context (consent, or a legal ground relied on), or denied whatever the context.
enum class CellState { allow, conditional, deny };

struct MatrixCell {
    dsl::Id recipient = dsl::no_id;
    dsl::Id category = dsl::no_id;
    bool inbound = false; // the recipient is the sender (direction receive)
    CellState state = CellState::deny;
    // For a conditional cell, the context that allows it: "consent" or the ground's id.
    std::string context;
    const dsl::Rule* rule = nullptr; // the allowing rule, or the deny's rule if any
    std::string reason;              // the decision's reason
    bool stops_on_objection = false; // allowed, but denied with an objection on file
};

struct PurposeMatrix {
    std::vector<std::pair<dsl::Id, bool>> rows; // (recipient, inbound), as activities list them
    std::vector<dsl::Id> categories;            // in declaration order
    std::vector<MatrixCell> cells;              // row-major
};

PurposeMatrix purpose_matrix(const dsl::CompiledPolicy& policy, dsl::Id purpose);

std::string policy_report_html(const dsl::CompiledPolicy& policy);

} // namespace flowgate::cli

namespace flowgate::cli {

// Writes `page` to `path` ("-": standard output), printing why on stderr when it
// cannot; false then.
bool write_report_file(const std::string& path, const std::string& page);

} // namespace flowgate::cli
