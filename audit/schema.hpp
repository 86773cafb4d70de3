// The audit file's tables in SQL: the schema (the audit_log columns derived from the
// field table in record.hpp, the append-only triggers, the policy texts), its version,
// the check that a file holds exactly that schema, and a row's columns bound into an
// INSERT or read out of a SELECT. The writer writes only the current version; the
// readers also read the stores of earlier versions, each with the columns it has.
// docs/audit-store.md documents the same schema; unit tests check a created store
// against the field table and the document against the generated SQL.
#pragma once

#include "audit/error.hpp"
#include "audit/interned_texts.hpp"
#include "audit/record.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace flowgate::audit {

// PRAGMA user_version of a store this library writes, and of the oldest it still reads.
// Version 2 added request_encoding, request_bytes and request_sha256; version 3 the
// Merkle tree's stored nodes (audit_tree), the checkpoints (audit_checkpoint) and the
// log's origin (audit_origin), with the same audit_log; version 4 stores each text of the
// interned columns once (audit_text, the rows holding ids), no prev_hash (the row
// before's hash), and shows the rows as before in the view audit_rows: the same fields,
// the same canonical bytes and hashes.
inline constexpr int schema_version = 4;
inline constexpr int oldest_readable_schema_version = 1;

// The schema of a new store: CREATE TABLE and CREATE TRIGGER statements.
const std::string& schema_sql();
// The schema as a store of an earlier version holds it (its columns, the same triggers).
std::string schema_sql(int version);

// "seq, time_us, kind_id, …, hash": the audit_log columns in the field table's order, for
// a SELECT or an INSERT; with a version, the columns a store of that version has.
const std::string& audit_columns();
std::string audit_columns(int version);

// "INSERT INTO audit_log (…) VALUES (?, …)", for bind_row().
const std::string& insert_row_sql();

// Binds every column of the row, in the field table's order, to parameters 1, 2, …,
// an interned column as its text's id (stored by `texts` if new); the texts must outlive
// the statement's next step. False when a text's id could not be had. (Rows are read
// back by audit/row_select.hpp.)
bool bind_row(sqlite3_stmt* stmt, const AuditRowView& row, TextIds& texts);

// The origin line of a new log's checkpoints: "<hostname>/flowgate/<UTC time of
// creation, YYYYMMDDTHHMMSSZ>", so that two logs, of two hosts or one after another on
// one host, have two names.
std::string default_log_origin();

// Creates the schema (and sets its version) in an empty database, in one transaction,
// with the log's origin (default_log_origin() when empty); refuses a database that holds
// anything.
AuditResult<void> create_schema(sqlite3* db, std::string_view origin = {});

// Fails with bad_schema unless the file holds exactly what create_schema() makes: this
// schema version, and every table, trigger and index with the same SQL, none missing,
// none added. The message names each difference ("missing trigger audit_log_no_update",
// "trigger audit_log_in_sequence changed", "unexpected trigger ignore_inserts"), so that
// a store whose append-only protection was removed or changed is refused, not served.
// A store of an earlier version is refused too, saying that the tools still read it and
// how to start a new one: it is the record of its period, never rewritten.
AuditResult<void> check_schema(sqlite3* db, const std::filesystem::path& path);

// The file's schema version; fails with bad_schema unless the file is an audit store of
// a version this library reads (oldest_readable_schema_version to schema_version).
AuditResult<int> readable_schema_version(sqlite3* db, const std::filesystem::path& path);

} // namespace flowgate::audit
