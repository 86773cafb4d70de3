// The libpq wrapper of pg.hpp: errors sorted into "try again" (the server is down or
// the connection broke) and "refused" (the server answered no), the only distinction
// the shipper acts on.
#include "central/pg.hpp"

#include <algorithm>
#include <cstring>

namespace flowgate::central {

namespace outcome = boost::outcome_v2;

Params& Params::text(std::string_view value) {
    m_values.emplace_back(value);
    m_formats.push_back(0);
    return *this;
}

Params& Params::bytes(std::string_view value) {
    m_values.emplace_back(value);
    m_formats.push_back(1);
    return *this;
}

Params& Params::number(std::int64_t value) {
    return text(std::to_string(value));
}

CentralResult<Connection> Connection::open(const std::string& conninfo) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    if (conn == nullptr) {
        return CentralError{CentralErrc::unavailable, "cannot allocate a PostgreSQL connection"};
    }
    Connection out(conn);
    if (PQstatus(conn) != CONNECTION_OK) {
        return out.error("connecting");
    }
    // Notices (a table that exists already) are not for the auditor's terminal.
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    return out;
}

CentralError Connection::error(std::string_view doing, const PGresult* result) const {
    std::string message = result != nullptr ? PQresultErrorMessage(result) : "";
    if (message.empty()) {
        message = PQerrorMessage(m_conn.get());
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
        message.pop_back();
    }
    const bool broken = PQstatus(m_conn.get()) != CONNECTION_OK;
    return CentralError{broken ? CentralErrc::unavailable : CentralErrc::refused,
                        "PostgreSQL, " + std::string(doing) + ": " + message};
}

CentralResult<PgResult> Connection::exec(const std::string& sql, const Params& params,
                                         bool binary) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    for (const std::string& v : params.m_values) {
        values.push_back(v.data());
        lengths.push_back(static_cast<int>(v.size()));
    }
    PgResult result(PQexecParams(m_conn.get(), sql.c_str(), static_cast<int>(values.size()),
                                 nullptr, values.data(), lengths.data(), params.m_formats.data(),
                                 binary ? 1 : 0));
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return error(sql.substr(0, sql.find_first_of(" (")), result.get());
    }
    return result;
}

CentralResult<void> Connection::exec_script(const std::string& sql) {
    PgResult result(PQexec(m_conn.get(), sql.c_str()));
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
        return error("making the schema", result.get());
    }
    return outcome::success();
}

CentralResult<void> Connection::copy_in(const std::string& sql, std::string_view data) {
    if (auto started = copy_start(sql); !started) {
        return started;
    }
    if (auto sent = copy_send(data); !sent) {
        return sent;
    }
    return copy_end();
}

CentralResult<void> Connection::copy_start(const std::string& sql) {
    PgResult started(PQexec(m_conn.get(), sql.c_str()));
    if (!started || PQresultStatus(started.get()) != PGRES_COPY_IN) {
        return error("COPY", started.get());
    }
    return outcome::success();
}

CentralResult<void> Connection::copy_send(std::string_view data) {
    constexpr std::size_t chunk = std::size_t{1} << 20U;
    for (std::size_t at = 0; at < data.size(); at += chunk) {
        const std::size_t n = std::min(chunk, data.size() - at);
        if (PQputCopyData(m_conn.get(), data.data() + at, static_cast<int>(n)) != 1) {
            return error("COPY");
        }
    }
    return outcome::success();
}

CentralResult<void> Connection::copy_end() {
    if (PQputCopyEnd(m_conn.get(), nullptr) != 1) {
        return error("COPY");
    }
    PgResult ended(PQgetResult(m_conn.get()));
    const bool ok = ended && PQresultStatus(ended.get()) == PGRES_COMMAND_OK;
    CentralResult<void> out = outcome::success();
    if (!ok) {
        out = error("COPY", ended.get());
    }
    while (PgResult rest{PQgetResult(m_conn.get())}) {
    }
    return out;
}

void Connection::copy_abandon(const std::string& why) {
    if (PQputCopyEnd(m_conn.get(), why.c_str()) == 1) {
        while (PgResult rest{PQgetResult(m_conn.get())}) {
        }
    }
}

std::string_view value(const PgResult& result, int row, int column) {
    return {PQgetvalue(result.get(), row, column),
            static_cast<std::size_t>(PQgetlength(result.get(), row, column))};
}

std::int64_t binary_integer(const PgResult& result, int row, int column) {
    const std::string_view bytes = value(result, row, column);
    std::uint64_t out = 0;
    for (const char c : bytes) {
        out = (out << 8U) | static_cast<unsigned char>(c);
    }
    if (bytes.size() < 8 && !bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0x80U)) {
        out |= ~std::uint64_t{0} << (8 * bytes.size()); // sign-extend int2 and int4
    }
    return static_cast<std::int64_t>(out);
}

void BinaryCopy::clear() {
    // The signature, then a flags field and a header extension length, both 0.
    m_out.assign("PGCOPY\n\377\r\n\0", 11);
    be(0, 4);
    be(0, 4);
    m_rows = 0;
    m_closed = false;
}

void BinaryCopy::be(std::uint64_t value, int width) {
    for (int shift = 8 * (width - 1); shift >= 0; shift -= 8) {
        m_out += static_cast<char>((value >> static_cast<unsigned>(shift)) & 0xffU);
    }
}

void BinaryCopy::row(std::int16_t fields) {
    ++m_rows;
    be(static_cast<std::uint16_t>(fields), 2);
}

void BinaryCopy::int8(std::int64_t value) {
    be(8, 4);
    be(static_cast<std::uint64_t>(value), 8);
}

void BinaryCopy::int2(std::int16_t value) {
    be(2, 4);
    be(static_cast<std::uint16_t>(value), 2);
}

void BinaryCopy::text(std::string_view text) {
    const auto nuls = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\0'));
    be(text.size() - nuls, 4);
    if (nuls == 0) {
        m_out += text;
        return;
    }
    for (const char c : text) {
        if (c != '\0') {
            m_out += c;
        }
    }
}

void BinaryCopy::bytes(std::string_view bytes) {
    be(bytes.size(), 4);
    m_out += bytes;
}

std::string_view BinaryCopy::data() {
    if (!m_closed) {
        be(0xffffU, 2); // the trailer: a field count of -1
        m_closed = true;
    }
    return m_out;
}

} // namespace flowgate::central
