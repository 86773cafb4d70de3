// flowgated: reads its configuration, loads and checks the policy, opens the audit
// store (refusing a broken chain), and serves the v1 protocol on a Unix socket until
// SIGTERM. SIGHUP reloads the policy. Only start-up may fail; a request never does.
#include "audit/store.hpp"
#include "daemon/audit_records.hpp"
#include "daemon/config.hpp"
#include "daemon/protocol.hpp"
#include "daemon/server.hpp"
#include "dsl/diagnostic.hpp"
#include "dsl/policy_loader.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <systemd/sd-daemon.h>

namespace {

using namespace flowgate;
using namespace flowgate::daemon;
using namespace flowgate::audit;

int serve(Config config) {
    dsl::LoadResult loaded = dsl::load_policy(config.policy_path);
    if (!loaded) {
        std::cerr << dsl::format(loaded.diagnostics);
        spdlog::critical("event=start_failed reason=policy_invalid policy={} errors={}",
                         config.policy_path, loaded.diagnostics.size());
        return 1;
    }
    boost::asio::io_context io(1);
    AuditOptions options;
    // Answers are written on the serving thread: committed batches go back to it whole.
    options.deliver = [&io](UniqueFunction<void()> work) {
        boost::asio::post(io, std::move(work));
    };
    options.durability =
        config.durability == Durability::full ? AuditDurability::full : AuditDurability::relaxed;
    auto opened = AuditStore::open(config.audit_db_path, options);
    if (!opened) {
        spdlog::critical("event=start_failed reason=audit_store path={} error=\"{}\"",
                         config.audit_db_path, opened.error().message);
        return 1;
    }
    std::unique_ptr<AuditStore> audit = std::move(opened).value();
    if (auto stored = audit->store_policy(loaded.policy->hash(), policy_files(*loaded.policy));
        !stored) {
        spdlog::critical("event=start_failed reason=audit_store error=\"{}\"",
                         stored.error().message);
        return 1;
    }
    std::string detail = "version " + std::string(daemon_version()) + ", durability " +
                         std::string(to_string(audit->durability()));
    if (auto started = audit->append(event_record(AuditKind::start, loaded.policy->hash(), detail));
        !started ||
        !audit->append(event_record(AuditKind::load, loaded.policy->hash(), config.policy_path))) {
        spdlog::critical("event=start_failed reason=audit_store path={}", config.audit_db_path);
        return 1;
    }

    Protocol protocol(io, config, *audit, loaded.policy);
    Server server(io, config.limits, protocol);
    protocol.set_server(&server);

    int inherited = sd_listen_fds(1);
    std::optional<std::string> error;
    if (inherited > 1) {
        error = "systemd passed " + std::to_string(inherited) + " sockets; expected one";
    } else if (inherited == 1) {
        error = server.adopt(SD_LISTEN_FDS_START);
    } else {
        error = server.listen(config.socket_path, config.socket_mode, config.socket_group);
    }
    if (error) {
        spdlog::critical("event=start_failed reason=socket error=\"{}\"", *error);
        return 1;
    }

    boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
    boost::asio::signal_set reload_signal(io, SIGHUP);
    std::function<void()> wait_for_hup = [&] {
        reload_signal.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) {
                return;
            }
            protocol.reload("signal", [](const boost::json::object&) {});
            wait_for_hup();
        });
    };
    wait_for_hup();
    stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
        if (ec) {
            return;
        }
        sd_notify(0, "STOPPING=1");
        spdlog::info("event=stopping signal={} in_flight_connections={}", signal,
                     server.connections());
        reload_signal.cancel();
        server.stop([&] { io.stop(); });
    });

    server.start();
    sd_notify(0, "READY=1");
    spdlog::info("event=ready socket={} policy={} hash={} audit_db={} durability={}",
                 inherited == 1 ? std::string("(socket activation)") : config.socket_path,
                 config.policy_path, loaded.policy->hash(), config.audit_db_path,
                 to_string(audit->durability()));
    io.run();

    auto stopped =
        audit->append(event_record(AuditKind::stop, protocol.policy()->hash(), "signal"));
    audit->close();
    if (!stopped) {
        spdlog::error("event=stop_not_recorded error=\"{}\"", stopped.error().message);
    }
    spdlog::info("event=stopped");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"flowgated: the flowgate data-flow authorization daemon"};
    std::string config_path;
    std::string socket;
    std::string policy;
    std::string audit_db;
    std::string log_level;
    app.add_option("--config", config_path, "The configuration file (TOML)");
    app.add_option("--socket", socket, "The Unix socket to listen on");
    app.add_option("--policy", policy, "The policy directory or file");
    app.add_option("--audit-db", audit_db, "The audit store (SQLite file)");
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or critical");
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
    if (!log_level.empty()) {
        config.log_level = log_level;
    }
    spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
    if (level == spdlog::level::off && config.log_level != "off") {
        std::cerr << "flowgated: unknown log level '" << config.log_level << "'\n";
        return 1;
    }
    spdlog::set_level(level);
    std::signal(SIGPIPE, SIG_IGN);
    return serve(std::move(config));
}
