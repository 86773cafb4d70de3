// Start-up, serving and stop; see startup.hpp. Everything that can refuse a start comes
// first, and nothing is recorded until it all succeeded: the signing key (if one is
// given) is read, the policy loads, the store's lock is taken, the store opens (its
// schema and chain checked) and holds its anchor's tree, the socket is taken;
// only then are the policy's texts stored and the start and load events committed, and
// only then does the socket take a request. A start that does not serve records
// nothing.
#include "daemon/startup.hpp"

#include "audit/schema.hpp"
#include "audit/store.hpp"
#include "daemon/anchor.hpp"
#include "daemon/audit_records.hpp"
#include "daemon/checkpoint_key.hpp"
#include "daemon/path_lock.hpp"
#include "daemon/protocol.hpp"
#include "daemon/server.hpp"
#include "dsl/diagnostic.hpp"
#include "dsl/policy_loader.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <systemd/sd-daemon.h>

namespace flowgate::daemon {
namespace asio = boost::asio;
using audit::AuditDurability;
using audit::AuditKind;
using audit::AuditOptions;
using audit::AuditStore;

namespace {

// The policy to serve first; null, once its diagnostics are on stderr, if it does not
// load.
std::shared_ptr<const dsl::CompiledPolicy> load_first_policy(const Config& config) {
    dsl::LoadResult loaded = dsl::load_policy(config.policy_path);
    if (!loaded) {
        std::cerr << dsl::format(loaded.diagnostics);
        spdlog::critical("event=start_failed reason=policy_invalid policy={} errors={}",
                         config.policy_path, loaded.diagnostics.size());
        return nullptr;
    }
    return loaded.policy;
}

// How the store hands committed batches back to the serving thread, how durably it
// writes, what it signs its checkpoints with, and who keeps the anchor.
AuditOptions store_options(const Config& config, asio::io_context& io, const CheckpointKey& signing,
                           AnchorKeeper& anchor) {
    AuditOptions options;
    options.signing_key = signing.key;
    options.on_checkpoint = [&anchor](const audit::CheckpointRecord& checkpoint) {
        anchor.offer(checkpoint);
    };
    // Answers are written on the serving thread: committed batches go back to it whole.
    options.deliver = [&io](audit::UniqueFunction<void()> work) {
        asio::post(io, std::move(work));
    };
    options.presize_wal = true;
    options.durability =
        config.durability == Durability::full ? AuditDurability::full : AuditDurability::relaxed;
    return options;
}

// The lock that makes this daemon the store's only one, or nullopt (logged) if another
// holds it.
std::optional<PathLock> lock_store(const Config& config, std::string_view failed_event) {
    PathLock lock;
    if (auto refused = lock.acquire(config.audit_db_path)) {
        spdlog::critical("event={} reason=store_in_use path={} error=\"{}\"", failed_event,
                         config.audit_db_path, *refused);
        return std::nullopt;
    }
    return lock;
}

// The store; null if it is missing or cannot be opened, or its schema or its chain's
// tail is not what flowgate writes.
std::unique_ptr<AuditStore> open_store(const Config& config, asio::io_context& io,
                                       const CheckpointKey& signing, AnchorKeeper& anchor) {
    auto opened =
        AuditStore::open(config.audit_db_path, store_options(config, io, signing, anchor));
    if (!opened) {
        spdlog::critical("event=start_failed reason=audit_store path={} error=\"{}\"",
                         config.audit_db_path, opened.error().message);
        return nullptr;
    }
    return std::move(opened).value();
}

// Whether the store holds the tree its anchor says it does (logged either way).
bool store_matches_anchor(const Config& config, const CheckpointKey& signing) {
    const std::string anchor = anchor_path(config);
    if (auto refused = check_anchor(anchor, config.audit_db_path, signing)) {
        spdlog::critical("event=start_failed reason=anchor path={} anchor={} error=\"{}\"",
                         config.audit_db_path, anchor, *refused);
        return false;
    }
    return true;
}

// The policy's texts, then the start and load events, each committed; false if the
// store refused one.
bool record_start(AuditStore& audit, const dsl::CompiledPolicy& policy, const Config& config) {
    if (auto stored = audit.store_policy(policy.hash(), policy_files(policy)); !stored) {
        spdlog::critical("event=start_failed reason=audit_store error=\"{}\"",
                         stored.error().message);
        return false;
    }
    std::string detail = "version " + std::string(daemon_version()) + ", durability " +
                         std::string(to_string(audit.durability()));
    if (auto started = audit.append(event_record(AuditKind::start, policy.hash(), detail));
        !started ||
        !audit.append(event_record(AuditKind::load, policy.hash(), config.policy_path))) {
        spdlog::critical("event=start_failed reason=audit_store path={}", config.audit_db_path);
        return false;
    }
    return true;
}

// The listening socket: the one systemd passed (socket activation), or the configured
// path bound. What the ready line calls it, or nullopt if there is none to serve on.
std::optional<std::string> take_socket(Server& server, const Config& config) {
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
        return std::nullopt;
    }
    return inherited == 1 ? std::string("(socket activation)") : config.socket_path;
}

// SIGHUP reloads the policy, as often as it comes; SIGTERM or SIGINT stop the server,
// which drains its sessions and then ends the loop.
class Signals {
public:
    Signals(asio::io_context& io, Protocol& protocol, Server& server)
        : m_io(io), m_protocol(protocol), m_server(server), m_stop(io, SIGTERM, SIGINT),
          m_reload(io, SIGHUP) {
        wait_for_reload();
        wait_for_stop();
    }

private:
    void wait_for_reload() {
        m_reload.async_wait([this](const boost::system::error_code& ec, int) {
            if (ec) {
                return;
            }
            m_protocol.reload("signal", [](const boost::json::object&) {});
            wait_for_reload();
        });
    }

    void wait_for_stop() {
        m_stop.async_wait([this](const boost::system::error_code& ec, int signal) {
            if (ec) {
                return;
            }
            sd_notify(0, "STOPPING=1");
            spdlog::info("event=stopping signal={} in_flight_connections={}", signal,
                         m_server.connections());
            m_reload.cancel();
            m_server.stop([this] { m_io.stop(); });
        });
    }

    asio::io_context& m_io;
    Protocol& m_protocol;
    Server& m_server;
    asio::signal_set m_stop;
    asio::signal_set m_reload;
};

// The stop event, under the policy serving last, then the store closed.
void record_stop(AuditStore& audit, const dsl::CompiledPolicy& policy) {
    auto stopped = audit.append(event_record(AuditKind::stop, policy.hash(), "signal"));
    audit.close();
    if (!stopped) {
        spdlog::error("event=stop_not_recorded error=\"{}\"", stopped.error().message);
    }
}

} // namespace

int run_daemon(Config config) {
    // A client that goes away mid-answer is the session's error, not the process's end.
    std::signal(SIGPIPE, SIG_IGN);
    std::optional<CheckpointKey> signing = load_checkpoint_key(config, "start_failed");
    if (!signing) {
        return 1;
    }
    std::shared_ptr<const dsl::CompiledPolicy> policy = load_first_policy(config);
    if (!policy) {
        return 1;
    }
    std::optional<PathLock> store_lock = lock_store(config, "start_failed");
    if (!store_lock) {
        return 1;
    }
    asio::io_context io(1);
    // Before the store: its last checkpoint, at close, goes to the anchor.
    AnchorKeeper anchor(anchor_path(config));
    std::unique_ptr<AuditStore> audit = open_store(config, io, *signing, anchor);
    if (!audit || !store_matches_anchor(config, *signing)) {
        return 1;
    }

    Protocol protocol(io, config, *audit, policy, *signing, anchor);
    Server server(io, config.limits, protocol);
    protocol.set_server(&server);
    std::optional<std::string> socket = take_socket(server, config);
    if (!socket || !record_start(*audit, *policy, config)) {
        return 1;
    }
    Signals signals(io, protocol, server);

    server.start();
    log_checkpoint_key(*signing);
    sd_notify(0, "READY=1");
    spdlog::info("event=ready socket={} policy={} hash={} audit_db={} durability={}", *socket,
                 config.policy_path, policy->hash(), config.audit_db_path,
                 to_string(audit->durability()));
    io.run();

    record_stop(*audit, *protocol.policy());
    anchor.stop();
    spdlog::info("event=stopped");
    return 0;
}

int init_store(const Config& config) {
    std::optional<CheckpointKey> signing = load_checkpoint_key(config, "init_failed");
    if (!signing) {
        return 1;
    }
    std::optional<PathLock> store_lock = lock_store(config, "init_failed");
    if (!store_lock) {
        return 1;
    }
    const std::string anchor_file = anchor_path(config);
    std::error_code ignored;
    if (std::filesystem::exists(std::filesystem::symlink_status(anchor_file, ignored))) {
        spdlog::critical("event=init_failed reason=anchor_exists path={} anchor={} error=\"an "
                         "anchor is there already, the checkpoint of an earlier log: move it "
                         "away with that log's store (keep both), then run --init-store "
                         "again\"",
                         config.audit_db_path, anchor_file);
        return 1;
    }
    asio::io_context io(1);
    AnchorKeeper anchor(anchor_file);
    const std::string origin = audit::default_log_origin();
    auto created = AuditStore::create(config.audit_db_path,
                                      store_options(config, io, *signing, anchor), origin);
    if (!created) {
        spdlog::critical("event=init_failed reason=audit_store path={} error=\"{}\"",
                         config.audit_db_path, created.error().message);
        return 1;
    }
    // The new log's first row says that it began; the checkpoint stored with it is the
    // first anchor.
    auto began = created.value()->append(event_record(
        AuditKind::init, "", "new log " + origin + ", flowgated " + std::string(daemon_version())));
    created.value()->close();
    anchor.stop();
    const AnchorKeeper::State anchored = anchor.state();
    if (!began || !anchored.size) {
        spdlog::critical("event=init_failed reason={} path={} anchor={} error=\"{}\"",
                         !began ? "audit_store" : "anchor", config.audit_db_path, anchor_file,
                         !began ? began.error().message : anchored.last_error);
        spdlog::critical("event=init_failed the new store at {} holds no anchored first row: "
                         "remove it (with its -wal) before running --init-store again",
                         config.audit_db_path);
        return 1;
    }
    spdlog::info("event=store_created path={} anchor={} origin={} durability={}",
                 config.audit_db_path, anchor_file, origin,
                 to_string(config.durability == Durability::full ? AuditDurability::full
                                                                 : AuditDurability::relaxed));
    log_checkpoint_key(*signing);
    return 0;
}

} // namespace flowgate::daemon
