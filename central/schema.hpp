// The central store's tables in PostgreSQL (docs/central-store.md): every host's log
// under its origin, each row as the host wrote it (its canonical bytes and its chain
// hash), the tree's stored nodes, the signed checkpoints and the policy texts, with
// columns copied out of the bytes for the auditors' searches.
#pragma once

#include "central/pg.hpp"

#include <string_view>

namespace flowgate::central {

// The statements that make the tables and indexes, each IF NOT EXISTS: what
// docs/central-store.md shows, and what ensure_schema() runs.
extern const std::string_view schema_sql;

// Makes the tables unless they are there: a role that may only INSERT and SELECT ships
// into tables its database's owner made (with this SQL, or a first ship as the owner).
CentralResult<void> ensure_schema(Connection& conn);

} // namespace flowgate::central
