// flowgated: the command line, the log and the configuration; start-up, serving and
// stopping are run_daemon's (daemon/startup.hpp), making a new store init_store's
// (--init-store). SIGHUP reloads the policy, SIGTERM stops. Only start-up may fail; a
// request never does.
#include "daemon/config.hpp"
#include "daemon/protocol.hpp"
#include "daemon/startup.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <string>

using namespace flowgate::daemon;

int main(int argc, char** argv) {
    CLI::App app{"flowgated: the flowgate data-flow authorization daemon"};
    std::string config_path;
    std::string socket;
    std::string policy;
    std::string audit_db;
    std::string log_level;
    std::string signing_key;
    bool init = false;
    app.add_option("--config", config_path, "The configuration file (TOML)");
    app.add_option("--socket", socket, "The Unix socket to listen on");
    app.add_option("--policy", policy, "The policy directory or file");
    app.add_option("--audit-db", audit_db, "The audit store (SQLite file)");
    app.add_option("--signing-key", signing_key,
                   "The private key file checkpoints are signed with (flowgate audit keygen)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or critical");
    app.add_flag("--init-store", init,
                 "Create a new, empty audit store at the configured path and exit (refuses an "
                 "existing one); run once, as the daemon's user, before the first start");
    CLI11_PARSE(app, argc, argv);

    auto logger = spdlog::stderr_color_mt("flowgated");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f %l %v");
    spdlog::set_default_logger(logger);

    ConfigResult loaded = load_config(config_path);
    if (!loaded.config) {
        std::cerr << loaded.error << "\n";
        return 1;
    }
    Config config = *loaded.config;
    if (!socket.empty()) {
        config.socket_path = socket;
    }
    if (!policy.empty()) {
        config.policy_path = policy;
    }
    if (!audit_db.empty()) {
        config.audit_db_path = audit_db;
    }
    if (!signing_key.empty()) {
        config.signing_key_path = signing_key;
    }
    if (!log_level.empty()) {
        config.log_level = log_level;
    }
    spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
    if (level == spdlog::level::off && config.log_level != "off") {
        std::cerr << "flowgated: unknown log level '" << config.log_level << "'\n";
        return 1;
    }
    spdlog::set_level(level);
    const int status = init ? init_store(config) : run_daemon(std::move(config));
    if (policy_loads_running() > 0) {
        // A load a reload gave up on still runs on its thread: the store is closed and the
        // socket removed, so end here, without running the static destructors (OpenSSL's
        // tables, the loggers) under it.
        spdlog::shutdown();
        std::_Exit(status);
    }
    return status;
}
