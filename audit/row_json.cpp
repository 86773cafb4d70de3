// The JSON form of a row and its time text; see row_json.hpp.
#include "audit/row_json.hpp"

#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <type_traits>

namespace flowgate::audit {

namespace json = boost::json;

std::string iso_time(std::int64_t time_us) {
    std::int64_t seconds = time_us / 1'000'000;
    std::int64_t micros = time_us % 1'000'000;
    if (micros < 0) {
        micros += 1'000'000;
        --seconds;
    }
    const auto time = static_cast<std::time_t>(seconds);
    std::tm utc{};
    ::gmtime_r(&time, &utc);
    char text[64];
    const std::size_t size = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    char fraction[16];
    std::snprintf(fraction, sizeof fraction, ".%06lldZ", static_cast<long long>(micros));
    return std::string(text, size) + fraction;
}

std::optional<std::int64_t> parse_time(std::string_view text) {
    if (!text.empty() && text.back() == 'Z') {
        text.remove_suffix(1);
    }
    std::tm utc{};
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0;
    auto number = [&text](int& out, std::size_t digits, char separator) {
        if (text.size() < digits) {
            return false;
        }
        auto [end, error] = std::from_chars(text.data(), text.data() + digits, out);
        if (error != std::errc() || end != text.data() + digits) {
            return false;
        }
        text.remove_prefix(digits);
        if (separator != '\0') {
            if (text.empty() || text.front() != separator) {
                return false;
            }
            text.remove_prefix(1);
        }
        return true;
    };
    auto then = [&text](char separator) {
        if (text.empty() || text.front() != separator) {
            return false;
        }
        text.remove_prefix(1);
        return true;
    };
    if (!number(year, 4, '-') || !number(month, 2, '-') || !number(day, 2, '\0')) {
        return std::nullopt;
    }
    if (!text.empty()) {
        if (!then('T') && !then(' ')) {
            return std::nullopt;
        }
        if (!number(hour, 2, ':') || !number(minute, 2, '\0')) {
            return std::nullopt;
        }
        if (!text.empty()) {
            if (!then(':') || !number(second, 2, '\0')) {
                return std::nullopt;
            }
            if (!text.empty() && (!then('.') || !number(micros, 6, '\0') || micros < 0)) {
                return std::nullopt;
            }
            if (!text.empty()) {
                return std::nullopt;
            }
        }
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    utc.tm_year = year - 1900;
    utc.tm_mon = month - 1;
    utc.tm_mday = day;
    utc.tm_hour = hour;
    utc.tm_min = minute;
    utc.tm_sec = second;
    return static_cast<std::int64_t>(::timegm(&utc)) * 1'000'000 + micros;
}

namespace {

json::value field_json(const AuditField& field, std::int64_t value) {
    return field.role == FieldRole::time ? json::value(iso_time(value)) : json::value(value);
}
json::value field_json(const AuditField& /*field*/, std::uint64_t seq) {
    return seq;
}
json::value field_json(const AuditField& /*field*/, std::string_view text) {
    return json::string(text);
}

// Reads one column's value into the record's member; "" or what is wrong with it.
std::string read_field(const AuditField& field, const json::value& value, std::uint64_t& seq) {
    if (value.is_uint64()) {
        seq = value.get_uint64();
    } else if (value.is_int64() && value.get_int64() >= 0) {
        seq = static_cast<std::uint64_t>(value.get_int64());
    } else {
        return std::string(field.name) + " is not a non-negative integer";
    }
    if (seq > static_cast<std::uint64_t>(INT64_MAX)) {
        return std::string(field.name) + " is past 2^63 - 1";
    }
    return {};
}

std::string read_field(const AuditField& field, const json::value& value, std::int64_t& out) {
    if (field.role == FieldRole::time) {
        const std::optional<std::int64_t> time =
            value.is_string() ? parse_time(value.get_string()) : std::nullopt;
        if (!time || iso_time(*time) != value.get_string()) {
            return std::string(field.export_name()) +
                   " is not a UTC time as 2024-05-01T09:30:00.123456Z";
        }
        out = *time;
        return {};
    }
    if (!value.is_int64()) {
        return std::string(field.name) + " is not an integer";
    }
    out = value.get_int64();
    return {};
}

std::string read_field(const AuditField& field, const json::value& value, std::string& out) {
    if (!value.is_string()) {
        return std::string(field.name) + " is not a string";
    }
    out = value.get_string();
    return {};
}

} // namespace

json::object row_json(const AuditRowView& row, int version) {
    json::object out;
    for_each_field(
        [&out, version](const AuditField& field, const auto& value) {
            if (field.exported() && field.in_version(version)) {
                out[field.export_name()] = field_json(field, value);
            }
        },
        row);
    return out;
}

RowJsonResult<AuditRecord> row_from_json(const json::object& object, int version) {
    AuditRecord row;
    std::string failure;
    std::size_t columns = 0;
    for_each_field(
        [&](const AuditField& field, auto& member) {
            if (!failure.empty() || !field.exported() || !field.in_version(version)) {
                return;
            }
            ++columns;
            const json::value* value = object.if_contains(field.export_name());
            failure = value == nullptr ? "the row has no " + std::string(field.export_name())
                                       : read_field(field, *value, member);
        },
        row);
    if (!failure.empty()) {
        return failure;
    }
    if (object.size() != columns) {
        for (const auto& member : object) {
            bool known = false;
            for_each_field(
                [&](const AuditField& field, const auto& /*value*/) {
                    known = known || (field.exported() && field.in_version(version) &&
                                      field.export_name() == member.key());
                },
                AuditRowView{});
            if (!known) {
                return "the row has a member '" + std::string(member.key()) +
                       "' that is not a column of schema version " + std::to_string(version);
            }
        }
    }
    return row;
}

} // namespace flowgate::audit
