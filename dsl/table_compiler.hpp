// The table compiler: turns the structured disclosure table (policies/kenpo-table.csv,
// one line per case of the society's published table) and its parties sheet into the
// policy text of policies/kenpo.policy. Admins edit the table, not the generated
// policy; this is the one place that decides what a table line means as rules, so
// that the mapping from a case's legal basis to its conditions and obligations is
// written once (see basis_consequences()).
#pragma once

#include "diagnostic.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::dsl {

// policy_text is the whole generated file, deterministic for a given input (no
// timestamps). When diagnostics hold an error, policy_text is empty.
struct TableCompileResult {
    std::string policy_text;
    Diagnostics diagnostics;
};

// What a case's legal basis implies for its permit: the `when` condition (empty: none)
// and the obligations an allow carries.
struct BasisConsequence {
    std::string_view ground;
    std::string_view condition;
    std::vector<std::string_view> obligations;
    std::string_view meaning; // for documentation and error messages
};

// The legal bases a table line may name, in a fixed order.
std::span<const BasisConsequence> basis_consequences();

// Compiles the table text. `display_path` is the name diagnostics and the generated
// header use. Each diagnostic points at the offending cell (for `recipients` and `data`,
// at the offending item), with columns counted in characters. The parties sheet (columns
// id,type,label,role[,notes]) is optional: with an empty `parties_text` no party declarations are
// generated.
TableCompileResult compile_table(const std::string& display_path, const std::string& csv_text,
                                 const std::string& parties_path = {},
                                 const std::string& parties_text = {});

// The parties sheet that goes with a table: "dir/kenpo-table.csv" -> "dir/kenpo-parties.csv",
// any other "dir/x.csv" -> "dir/x-parties.csv".
std::string parties_sheet_path(const std::string& table_path);

// Reads the table at `table_path` and, if it exists, its parties sheet, and compiles
// them. A table that cannot be read is a diagnostic without position.
TableCompileResult compile_table_file(const std::string& table_path);

} // namespace flowgate::dsl
