// Reading the central store back; see central_log.hpp. Rows come in pages of a fixed
// size by seq (keyset pagination on the primary key), so a log of millions of rows is
// read in constant memory and without a long-lived cursor.
#include "central/central_log.hpp"

#include "audit/canonical.hpp"

namespace flowgate::central {

namespace outcome = boost::outcome_v2;

namespace {

constexpr int page_rows = 10'000;

// The text as a search column holds it (no NUL: pg.hpp's BinaryCopy::text).
std::string searchable(std::string_view text) {
    std::string out(text);
    std::erase(out, '\0');
    return out;
}

} // namespace

CentralResult<std::vector<std::string>> central_origins(Connection& conn) {
    auto rows = conn.exec("SELECT DISTINCT origin FROM flowgate_log ORDER BY origin");
    if (!rows) {
        return rows.error();
    }
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(rows.value().get()); ++i) {
        out.emplace_back(value(rows.value(), i, 0));
    }
    return out;
}

CentralResult<audit::PolicyFiles> central_policy_files(Connection& conn, const std::string& origin,
                                                       const std::string& policy_hash) {
    auto rows = conn.exec("SELECT file, content FROM flowgate_policy WHERE origin = $1 AND "
                          "policy_hash = $2 ORDER BY file",
                          Params().text(origin).text(policy_hash));
    if (!rows) {
        return rows.error();
    }
    audit::PolicyFiles files;
    for (int i = 0; i < PQntuples(rows.value().get()); ++i) {
        files.emplace(std::string(value(rows.value(), i, 0)),
                      std::string(value(rows.value(), i, 1)));
    }
    return files;
}

CentralResult<void> for_each_central_row(Connection& conn, const std::string& origin,
                                         const std::function<bool(const CentralRow&)>& visit) {
    std::int64_t after = INT64_MIN;
    while (true) {
        auto page = conn.exec("SELECT seq, schema_version, canonical, prev_hash, hash, time_us, "
                              "kind, decision, purpose, recipient, subject FROM flowgate_log "
                              "WHERE origin = $1 AND seq > $2 ORDER BY seq LIMIT " +
                                  std::to_string(page_rows),
                              Params().text(origin).number(after), true);
        if (!page) {
            return page.error();
        }
        const PgResult& result = page.value();
        const int rows = PQntuples(result.get());
        for (int i = 0; i < rows; ++i) {
            CentralRow row;
            row.seq = static_cast<std::uint64_t>(binary_integer(result, i, 0));
            row.schema_version = static_cast<int>(binary_integer(result, i, 1));
            row.canonical = value(result, i, 2);
            if (auto decoded = audit::parse_canonical_row(row.canonical, row.schema_version)) {
                row.decoded = true;
                row.row = *decoded;
            }
            row.row.prev_hash = value(result, i, 3);
            row.row.hash = value(result, i, 4);
            row.search_time_us = binary_integer(result, i, 5);
            row.search_kind = value(result, i, 6);
            row.search_decision = value(result, i, 7);
            row.search_purpose = value(result, i, 8);
            row.search_recipient = value(result, i, 9);
            row.search_subject = value(result, i, 10);
            after = static_cast<std::int64_t>(row.seq);
            if (!visit(row)) {
                return outcome::success();
            }
        }
        if (rows < page_rows) {
            return outcome::success();
        }
    }
}

std::string search_column_mismatch(const CentralRow& row) {
    if (row.search_time_us != row.row.time_us) {
        return "its column time_us (" + std::to_string(row.search_time_us) +
               ") is not its bytes' (" + std::to_string(row.row.time_us) + ")";
    }
    const std::pair<std::string_view, std::pair<std::string_view, std::string_view>> columns[] = {
        {"kind", {row.search_kind, row.row.kind}},
        {"decision", {row.search_decision, row.row.decision}},
        {"purpose", {row.search_purpose, row.row.purpose}},
        {"recipient", {row.search_recipient, row.row.recipient}},
        {"subject", {row.search_subject, row.row.subject}},
    };
    for (const auto& [name, texts] : columns) {
        if (texts.first != searchable(texts.second)) {
            return "its column " + std::string(name) + " ('" + std::string(texts.first) +
                   "') is not its bytes' ('" + searchable(texts.second) + "')";
        }
    }
    return "";
}

} // namespace flowgate::central
