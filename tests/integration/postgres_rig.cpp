// The PostgreSQL server of postgres_rig.hpp.
#include "tests/integration/postgres_rig.hpp"

#include <catch2/catch.hpp>

#include <pwd.h>
#include <unistd.h>

namespace flowgate::integration {

namespace {

const fs::path server_bin = "/usr/lib/postgresql/15/bin";

} // namespace

std::optional<std::string> postgres_missing() {
    for (const char* tool : {"initdb", "pg_ctl", "postgres", "psql"}) {
        if (::access((server_bin / tool).c_str(), X_OK) != 0) {
            return std::string(postgres_skip_marker) + ": " + (server_bin / tool).string() +
                   " is absent (install postgresql-15: scripts/install-deps.sh)";
        }
    }
    if (::geteuid() == 0 && ::getpwnam("postgres") == nullptr) {
        return std::string(postgres_skip_marker) +
               ": running as root and there is no postgres user to run the server as";
    }
    return std::nullopt;
}

Postgres::Postgres() {
    std::string pattern = (fs::temp_directory_path() / "flowgate-pg-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    m_dir = pattern;
    if (::geteuid() == 0) {
        const passwd* user = ::getpwnam("postgres");
        REQUIRE(user != nullptr);
        REQUIRE(::chown(m_dir.c_str(), user->pw_uid, user->pw_gid) == 0);
    }
    const CommandResult made =
        run_command(m_dir, as_server(shell_quoted((server_bin / "initdb").string()) + " -D " +
                                     shell_quoted((m_dir / "data").string()) +
                                     " -U flowgate -A trust -E UTF8 --locale=C --no-sync"));
    INFO(made.out << made.err);
    REQUIRE(made.status == 0);
    start();
}

Postgres::~Postgres() {
    run_command(m_dir,
                as_server(shell_quoted((server_bin / "pg_ctl").string()) + " -D " +
                          shell_quoted((m_dir / "data").string()) + " -m immediate -w stop"));
    std::error_code ignored;
    fs::remove_all(m_dir, ignored);
}

std::string Postgres::as_server(const std::string& command) const {
    // run_command's output files go to the directory, which the server's user owns.
    if (::geteuid() == 0) {
        return "cd " + shell_quoted(m_dir.string()) + " && runuser -u postgres -- " + command;
    }
    return command;
}

void Postgres::start() {
    const std::string options = "-k " + m_dir.string() + " -c listen_addresses='' -c fsync=off";
    const CommandResult started =
        run_command(m_dir, as_server(shell_quoted((server_bin / "pg_ctl").string()) + " -D " +
                                     shell_quoted((m_dir / "data").string()) + " -l " +
                                     shell_quoted((m_dir / "server.log").string()) + " -w -o " +
                                     shell_quoted(options) + " start"));
    INFO(started.out << started.err << read_text(m_dir / "server.log"));
    REQUIRE(started.status == 0);
}

void Postgres::stop() {
    const CommandResult stopped =
        run_command(m_dir, as_server(shell_quoted((server_bin / "pg_ctl").string()) + " -D " +
                                     shell_quoted((m_dir / "data").string()) + " -m fast -w stop"));
    INFO(stopped.out << stopped.err);
    REQUIRE(stopped.status == 0);
}

std::string Postgres::uri() const {
    return "postgresql://flowgate@/postgres?host=" + m_dir.string();
}

CommandResult Postgres::psql(const std::string& sql) const {
    return run_command(m_dir, shell_quoted((server_bin / "psql").string()) +
                                  " -X -v ON_ERROR_STOP=1 -At " + shell_quoted(uri()) + " -c " +
                                  shell_quoted(sql));
}

} // namespace flowgate::integration
