// The audit unit tests' shared fixture; see fixture.hpp.
#include "tests/unit/audit/fixture.hpp"

#include "audit/merkle.hpp"
#include "audit/request_text.hpp"
#include "audit/schema.hpp"
#include "audit/sqlite.hpp"
#include "audit/tree_store.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <type_traits>
#include <unistd.h>

namespace flowgate::audit::testing {

AuditRecord check_record(int n, AuditDecision decision) {
    AuditRecord record;
    record.kind = to_string(AuditKind::check);
    record.uid = 1000 + n;
    record.gid = 2000;
    record.pid = 4242;
    record.service = "kenshin";
    set_request(record,
                R"({"op":"check","id":)" + std::to_string(n) +
                    R"(,"purpose":"特定健診","recipient":"prevent","data":["checkup_results"],)"
                    R"("subject":"p-)" +
                    std::to_string(n) + R"(","context":{"consent":true}})");
    record.decision = to_string(decision);
    record.reason = decision == AuditDecision::allow ? "permitted" : "no_matching_rule";
    record.rule = "kenpo.row3.j";
    record.rule_source = "policies/kenpo.policy:118 (table row 3, case j)";
    record.legal_basis = "consent";
    record.obligations = R"(["art29_provision_record"])";
    record.policy_hash = "sha256:abc";
    record.purpose = "特定健診";
    record.activity = "lifestyle_programme";
    record.recipient = "prevent";
    record.direction = "send";
    record.data = R"(["checkup_results"])";
    record.subject = "p-" + std::to_string(n);
    return record;
}

std::unique_ptr<AuditStore> new_store(const fs::path& db, AuditOptions options) {
    auto store = AuditStore::create(db, options);
    if (!store) {
        FAIL("create failed: " << store.error().message);
    }
    return std::move(store).value();
}

std::unique_ptr<AuditStore> open_store(const fs::path& db, AuditOptions options) {
    auto store = AuditStore::open(db, options);
    if (!store) {
        FAIL("open failed: " << store.error().message);
    }
    return std::move(store).value();
}

void write_store(const fs::path& db, int rows) {
    auto store = new_store(db);
    for (int n = 1; n <= rows; ++n) {
        appended(*store, check_record(n));
    }
}

std::string v1_schema_sql() {
    std::ifstream in(FLOWGATE_SOURCE_DIR "/tests/unit/audit/data/schema-v1.sql");
    REQUIRE(in);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_old_store(const fs::path& db, int version, const std::vector<AuditRecord>& records) {
    REQUIRE(version < schema_version);
    auto opened =
        open_db(db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, std::chrono::milliseconds(1000));
    REQUIRE(opened);
    sqlite3* raw = opened.value().get();
    std::string schema = (version == 1 ? v1_schema_sql() : schema_sql(version)) +
                         "PRAGMA user_version = " + std::to_string(version) + ";";
    if (version >= 3) {
        schema += "INSERT INTO audit_origin (origin) VALUES ('test/flowgate/old');";
    }
    REQUIRE(exec(raw, schema.c_str(), AuditErrc::bad_schema, "making an old store"));
    std::string parameters;
    for_each_field(
        [&parameters, version](const AuditField& field, const auto& /*value*/) {
            if (field.in_version(version)) {
                parameters += parameters.empty() ? "?" : ", ?";
            }
        },
        AuditRowView{});
    auto insert = prepare(
        raw, "INSERT INTO audit_log (" + audit_columns(version) + ") VALUES (" + parameters + ")",
        AuditErrc::bad_schema);
    REQUIRE(insert);
    sqlite3_stmt* stmt = insert.value().get();
    ChainHash prev = genesis_hash;
    std::uint64_t seq = 0;
    for (AuditRecord row : records) {
        row.seq = ++seq;
        if (row.time_us == 0) {
            row.time_us = 1'700'000'000'000'000 + static_cast<std::int64_t>(seq);
        }
        row.prev_hash = to_hex(prev);
        const ChainHash hash = row_hash(prev, canonical_row_bytes(view_of(row), version), version);
        row.hash = to_hex(hash);
        int index = 0;
        for_each_field(
            [stmt, &index, version](const AuditField& field, const auto& value) {
                using Value = std::decay_t<decltype(value)>;
                if (!field.in_version(version)) {
                    return;
                }
                ++index;
                if constexpr (std::is_same_v<Value, std::string>) {
                    bind_text(stmt, index, value);
                } else {
                    sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(value));
                }
            },
            row);
        REQUIRE(step_once(stmt));
        prev = hash;
    }
    if (version >= 3) {
        // The tree's nodes of level 4 and up, as the writer of version 3 stored them.
        auto node = prepare(raw, "INSERT INTO audit_tree (end, level, hash) VALUES (?, ?, ?)",
                            AuditErrc::bad_schema);
        REQUIRE(node);
        TreeFrontier frontier;
        for (const AuditRecord& record : records) {
            AuditRecord row = record;
            row.seq = frontier.size() + 1;
            if (row.time_us == 0) {
                row.time_us = 1'700'000'000'000'000 + static_cast<std::int64_t>(row.seq);
            }
            for (const TreeNode& completed :
                 frontier.append(leaf_hash(canonical_row_bytes(view_of(row), version)))) {
                if (completed.id.level < tree_stored_from_level) {
                    continue;
                }
                sqlite3_bind_int64(node.value().get(), 1,
                                   static_cast<sqlite3_int64>(node_end(completed.id)));
                sqlite3_bind_int64(node.value().get(), 2, completed.id.level);
                sqlite3_bind_blob(node.value().get(), 3, completed.hash.data(),
                                  static_cast<int>(completed.hash.size()), SQLITE_TRANSIENT);
                REQUIRE(step_once(node.value().get()));
            }
        }
    }
}

void write_v1_store(const fs::path& db, const std::vector<AuditRecord>& records) {
    write_old_store(db, 1, records);
}

std::uint64_t appended(AuditStore& store, AuditRecord record) {
    auto result = store.append(std::move(record));
    if (!result) {
        FAIL("append failed: " << result.error().message);
    }
    return result.value();
}

std::unique_ptr<AuditReader> reader_of(const fs::path& db) {
    auto reader = AuditReader::open(db);
    if (!reader) {
        FAIL("open failed: " << reader.error().message);
    }
    return std::move(reader).value();
}

std::vector<AuditRecord> rows_of(const fs::path& db) {
    auto rows = reader_of(db)->rows();
    if (!rows) {
        FAIL("read failed: " << rows.error().message);
    }
    return std::move(rows).value();
}

PolicyFiles policy_files_of(const fs::path& db, const std::string& policy_hash) {
    auto files = reader_of(db)->policy_files(policy_hash);
    if (!files) {
        FAIL("read failed: " << files.error().message);
    }
    return std::move(files).value();
}

VerifyResult verified(const fs::path& db, const VerifyOptions& options) {
    auto result = verify_file(db, options);
    if (!result) {
        FAIL("verify failed: " << result.error().message);
    }
    return std::move(result).value();
}

void check_intact(const fs::path& db, std::uint64_t rows) {
    const auto result = verified(db);
    CHECK_FALSE(result.fault);
    CHECK(result.rows == rows);
}

std::string fault_of(const fs::path& db, const VerifyOptions& options) {
    const auto result = verified(db, options);
    return result.fault ? describe(*result.fault) : std::string();
}

std::string columns_with(const std::map<std::string, std::string>& replaced,
                         const std::string& integer, const std::string& text) {
    std::string out;
    for_each_field(
        [&](const AuditField& field, const auto& value) {
            using Value = std::decay_t<decltype(value)>;
            if (!field.in_version(schema_version)) {
                return;
            }
            out += out.empty() ? "" : ", ";
            const std::string name(field.name);
            const bool interned = field.interned(schema_version);
            auto value_of = [&](const std::string& expression) {
                return interned ? "(SELECT id FROM audit_text WHERE text = " + expression + ")"
                                : expression;
            };
            if (const auto found = replaced.find(name); found != replaced.end()) {
                out += value_of(found->second);
            } else if (std::is_integral_v<Value> && !integer.empty()) {
                out += integer;
            } else if (!std::is_integral_v<Value> && !text.empty()) {
                out += value_of(text);
            } else {
                out += interned ? name + "_id" : name;
            }
        },
        AuditRowView{});
    return out;
}

std::string texts_stored_sql(const std::vector<std::string>& texts) {
    std::string out;
    for (const std::string& text : texts) {
        out += "INSERT OR IGNORE INTO audit_text (id, text) SELECT COALESCE(MAX(id), 0) + 1, " +
               text + " FROM audit_text;\n";
    }
    return out;
}

std::string shell_quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

std::string python3() {
    return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

ShellResult sqlite3_shell_run(const fs::path& db, const std::string& sql) {
    return shell_run("sqlite3 " + shell_quote(db.string()) + " " + shell_quote(sql));
}

ShellResult shell_run(const std::string& command) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    ShellResult result;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe)) {
        result.output += buffer;
    }
    const int status = ::pclose(pipe);
    REQUIRE(status != -1);
    result.status = WEXITSTATUS(status);
    return result;
}

int sqlite3_shell(const fs::path& db, const std::string& sql) {
    return sqlite3_shell_run(db, sql).status;
}

int sqlite3_shell_past_trigger(const fs::path& db, const std::string& trigger,
                               const std::string& sql) {
    ShellResult guard =
        sqlite3_shell_run(db, "SELECT sql FROM sqlite_schema WHERE name = '" + trigger + "'");
    REQUIRE(guard.status == 0);
    REQUIRE(guard.output.ends_with("END\n"));
    guard.output.pop_back();
    return sqlite3_shell(db, "DROP TRIGGER " + trigger + "; " + sql + "; " + guard.output + ";");
}

} // namespace flowgate::audit::testing
