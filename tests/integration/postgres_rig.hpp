// A real PostgreSQL server for the tests of the central store: Debian's postgresql-15,
// made with initdb and run with pg_ctl in a temporary directory, listening only on a
// Unix socket there (no TCP port to collide over). initdb and postgres refuse to run as
// root, so under root (as CI runs) they run as the postgres user, the directory handed
// over to it. Where the server binaries are absent, postgres_missing() says why, and
// each test prints it and passes as skipped (ctest reads the message).
#pragma once

#include "tests/integration/daemon_rig.hpp"

#include <optional>
#include <string>

namespace flowgate::integration {

// What ctest's SKIP_REGULAR_EXPRESSION matches.
inline constexpr const char* postgres_skip_marker = "SKIPPED: no PostgreSQL server";

// Why no server can be started here, or nothing when one can.
std::optional<std::string> postgres_missing();

class Postgres {
public:
    // initdb, then start(); the test stops (REQUIRE) if either fails.
    Postgres();
    ~Postgres(); // stops the server and removes its directory
    Postgres(const Postgres&) = delete;
    Postgres& operator=(const Postgres&) = delete;

    void start();
    void stop();

    // The libpq URI of its database (a postgresql:// URI with the socket directory).
    std::string uri() const;
    // Runs SQL with psql (-At: unaligned, tuples only): status and output.
    CommandResult psql(const std::string& sql) const;

private:
    std::string as_server(const std::string& command) const;
    fs::path m_dir;
};

} // namespace flowgate::integration
