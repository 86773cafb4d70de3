// The little of libpq the central store needs, owned: a connection, a result, and the
// error every operation on the central store returns. Connection strings are libpq's
// own (a postgresql:// URI or key=value words, with the PG* environment variables,
// ~/.pgpass and sslmode as PostgreSQL documents them): they are passed to libpq as they
// are, and nothing of ours is added to them.
#pragma once

#include <libpq-fe.h>

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::central {

enum class CentralErrc {
    unavailable, // PostgreSQL cannot be reached now, or the connection broke: try again
    refused,     // PostgreSQL answered with an error (permissions, a constraint, SQL)
    integrity,   // the central copy is not the host's log: a gap, a row that differs, a
                 // checkpoint that does not verify
    host,        // the host's store cannot be read
};

struct CentralError {
    CentralErrc code = CentralErrc::refused;
    std::string message;
};

template <class T>
using CentralResult =
    boost::outcome_v2::basic_result<T, CentralError, boost::outcome_v2::policy::terminate>;

struct ResultFree {
    void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, ResultFree>;

// Parameters of a query, as text or as bytes (bytea), all sent in binary-safe form.
class Params {
public:
    Params& text(std::string_view value);
    Params& bytes(std::string_view value);
    Params& number(std::int64_t value);

private:
    friend class Connection;
    std::vector<std::string> m_values;
    std::vector<int> m_formats; // 0 text, 1 binary
};

// One connection; one thread at a time.
class Connection {
public:
    static CentralResult<Connection> open(const std::string& conninfo);

    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;
    ~Connection() = default;

    // Runs one statement; `binary`: results in binary form (bytea as its bytes, integers
    // big-endian).
    CentralResult<PgResult> exec(const std::string& sql, const Params& params = {},
                                 bool binary = false);
    // Runs statements separated by semicolons, without parameters.
    CentralResult<void> exec_script(const std::string& sql);
    // COPY ... FROM STDIN with `data` in the format the statement names.
    CentralResult<void> copy_in(const std::string& sql, std::string_view data);
    // The same in parts, so that the server stores the first rows while the rest are
    // made: copy_start(), copy_send() as often as there is data, then copy_end(), or
    // copy_abandon() to make the server discard the COPY (its transaction fails).
    CentralResult<void> copy_start(const std::string& sql);
    CentralResult<void> copy_send(std::string_view data);
    CentralResult<void> copy_end();
    void copy_abandon(const std::string& why);

    PGconn* native() const noexcept { return m_conn.get(); }

private:
    struct ConnFree {
        void operator()(PGconn* conn) const { PQfinish(conn); }
    };
    explicit Connection(PGconn* conn) : m_conn(conn) {}
    CentralError error(std::string_view doing, const PGresult* result = nullptr) const;
    std::unique_ptr<PGconn, ConnFree> m_conn;
};

// Field accessors of a result row.
std::string_view value(const PgResult& result, int row, int column);
// A binary int8, int4 or int2 column.
std::int64_t binary_integer(const PgResult& result, int row, int column);

// Rows in COPY's binary format, for `COPY ... FROM STDIN (FORMAT binary)`: the server
// takes each field as it is stored, with nothing to parse (a bytea's bytes, not its hex).
// Each row is row(n) followed by its n fields in the columns' order.
class BinaryCopy {
public:
    BinaryCopy() { clear(); }
    void clear();
    bool empty() const { return m_rows == 0; }
    void row(std::int16_t fields);
    void int8(std::int64_t value);
    void int2(std::int16_t value);
    // A text field without its NUL characters, which a text column cannot hold (the
    // canonical bytes keep them).
    void text(std::string_view text);
    void bytes(std::string_view bytes);
    // The data, with its trailer.
    std::string_view data();
    // The data so far, to be sent ahead of the rest (Connection::copy_send()), and
    // sent(): it went, the rows go on.
    std::string_view part() const { return m_out; }
    void sent() { m_out.clear(); }

private:
    void be(std::uint64_t value, int width);
    std::string m_out;
    std::size_t m_rows = 0;
    bool m_closed = false;
};

} // namespace flowgate::central
