// What the audit library's unit tests share: a typical decision row, a store made or
// opened or failed as a test failure, a store of schema version 1 as the first release
// wrote it, the rows and the verdict read back as an auditor reads them, and the sqlite3
// shell as someone editing the file would use it.
#pragma once

#include "audit/reader.hpp"
#include "audit/store.hpp"
#include "audit/verifier.hpp"
#include "tests/unit/temp_dir.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace flowgate::audit::testing {

namespace fs = std::filesystem;

using flowgate::testing::TempDir;

// A check row of caller 1000 + n about subject p-n, allowed or denied.
AuditRecord check_record(int n, AuditDecision decision = AuditDecision::allow);

// A new store made at DB (AuditStore::create), or an existing one opened; a failure fails
// the test.
std::unique_ptr<AuditStore> new_store(const fs::path& db, AuditOptions options = {});
std::unique_ptr<AuditStore> open_store(const fs::path& db, AuditOptions options = {});
// A new store at DB holding `rows` check rows, closed.
void write_store(const fs::path& db, int rows);

// The first release's schema (tests/unit/audit/data/schema-v1.sql).
std::string v1_schema_sql();
// A new store of schema version 1 at DB, as the first release made and wrote it: that
// schema, user_version 1, and the records (their seq, prev_hash and hash set here, a
// zero time_us stamped) chained and hashed the version-1 way, with the columns version 1
// has. Their request is stored as it is, as version 1 stored the bytes received.
void write_v1_store(const fs::path& db, const std::vector<AuditRecord>& records);
// A store of an earlier schema version (1 to 3) at DB, made and written as that version's
// writer did: its schema, its columns, its chain, and from version 3 its origin
// (test/flowgate/old) and stored tree nodes.
void write_old_store(const fs::path& db, int version, const std::vector<AuditRecord>& records);

// The seq of a committed row; a failure fails the test instead of terminating it, so
// that guards (the tmpfs mount) still run.
std::uint64_t appended(AuditStore& store, AuditRecord record);

std::unique_ptr<AuditReader> reader_of(const fs::path& db);
std::vector<AuditRecord> rows_of(const fs::path& db);
PolicyFiles policy_files_of(const fs::path& db, const std::string& policy_hash);

// The whole chain verified, as `flowgate audit verify` verifies it.
VerifyResult verified(const fs::path& db, const VerifyOptions& options = {});

// The whole chain verifies, with exactly `rows` rows.
void check_intact(const fs::path& db, std::uint64_t rows);

// The first fault verify finds ("" when none), in the words the store and the auditor
// both use.
std::string fault_of(const fs::path& db, const VerifyOptions& options = {});

struct ShellResult {
    int status = -1;
    std::string output; // stdout and stderr
};

// The audit_log columns (the field table's, as this schema version stores them) for a
// SELECT that copies or makes a row, with some of them replaced by SQL expressions:
// {{"seq", "seq + 1"}, {"kind", "'start'"}, …}. Given `integer` and `text`, every other
// column is that literal instead of itself. An interned column's expression is its text,
// looked up in audit_text (texts_stored_sql() stores one that is not there yet).
std::string columns_with(const std::map<std::string, std::string>& replaced,
                         const std::string& integer = {}, const std::string& text = {});
// SQL that stores each text (an SQL expression) in audit_text unless it is there.
std::string texts_stored_sql(const std::vector<std::string>& texts);

// A shell command's exit status and output (stdout and stderr).
ShellResult shell_run(const std::string& command);
// Words quoted for the shell.
std::string shell_quote(const std::string& text);
// Debian's python3 (which has python3-cryptography) where it is, else the one on PATH.
std::string python3();

// The sqlite3 shell as a second connection, the way someone editing the file would.
ShellResult sqlite3_shell_run(const fs::path& db, const std::string& sql);
// Its exit status.
int sqlite3_shell(const fs::path& db, const std::string& sql);
// SQL run past one append-only trigger, which is dropped first and put back after, as
// it was: the schema is then intact, and only the chain shows the change. Its exit
// status.
int sqlite3_shell_past_trigger(const fs::path& db, const std::string& trigger,
                               const std::string& sql);

} // namespace flowgate::audit::testing
