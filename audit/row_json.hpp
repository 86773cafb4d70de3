// A row as JSON: the columns of the field table (audit/record.hpp) under their export
// names, the time in ISO 8601 with its microseconds, integers as numbers, texts as stored.
// `flowgate audit export --all --format jsonl` writes rows in this form, and a proof
// document (audit/proof_document.hpp) carries its row in it, so that whoever holds the
// document can recompute the row's canonical bytes from it alone: the form must read
// back to exactly the row that was written.
#pragma once

#include "audit/record.hpp"
#include "audit/schema.hpp"

#include <boost/json/object.hpp>
#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::audit {

// "2024-05-01T09:30:00.123456Z": UTC, always six digits of microseconds.
std::string iso_time(std::int64_t time_us);
// "2024-05-01", "2024-05-01T09:30", "2024-05-01T09:30:15", "2024-05-01T09:30:15.123456"
// (Z optional, a space for the T allowed), read as UTC, in microseconds since the epoch.
std::optional<std::int64_t> parse_time(std::string_view text);

// The exported columns of a row of a store of schema `version` (those the version has,
// prev_hash left out), in the field table's order.
boost::json::object row_json(const AuditRowView& row, int version = schema_version);

template <class T>
using RowJsonResult =
    boost::outcome_v2::basic_result<T, std::string, boost::outcome_v2::policy::terminate>;

// The row row_json() made, or what keeps `object` from being one: a column missing, of
// the wrong type or out of range, a time not written as iso_time() writes it, a member
// that is not a column of that version. prev_hash, which the form leaves out, is empty.
RowJsonResult<AuditRecord> row_from_json(const boost::json::object& object,
                                         int version = schema_version);

} // namespace flowgate::audit
