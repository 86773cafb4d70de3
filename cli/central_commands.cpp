// The commands of the central store in PostgreSQL: `flowgate audit verify --from URI
// --origin NAME` (central/central_verify.hpp); `audit records|export|replay --from URI
// [--origin NAME]`, the file's tools (cli/audit_tools.hpp) over every host's rows, or
// one host's, each naming its host; and `flowgate audit ship DB --to URI`: the host's log
// copied into the central store (central/shipper.hpp), once (from cron) or, with
// --follow, as the daemon writes it (as a systemd service beside flowgated). An
// integrity fault stops it (exit 1): the central copy is evidence, and a gap or a row
// that differs is for an auditor to look at, not for a retry to paper over. PostgreSQL
// being down is not a fault: --follow waits and tries again; a single run exits 2.
#include "audit/proof_document.hpp"
#include "audit/signed_note.hpp"
#include "central/central_log.hpp"
#include "central/central_verify.hpp"
#include "central/shipper.hpp"
#include "cli/audit_inputs.hpp"
#include "cli/audit_report.hpp"
#include "cli/audit_tools.hpp"
#include "cli/commands.hpp"
#include "cli/policy_report.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <span>
#include <thread>

namespace flowgate::cli {

namespace {

volatile std::sig_atomic_t g_stopping = 0;

extern "C" void request_stop(int /*signal*/) {
    g_stopping = 1;
}

struct ShipArgs {
    std::string db;
    std::string to;
    std::string key;
    bool follow = false;
    std::size_t batch = 10'000;
    std::size_t connections = 2;
    double interval_seconds = 1.0;
};

// A number above zero and at most `most` (`what` says which kind), or what is wrong with
// it: CLI11's PositiveNumber names a range up to the largest double, 309 digits long.
template <typename Number>
CLI::Validator above_zero(std::string_view what, Number most = std::numeric_limits<Number>::max()) {
    std::string wanted = "must be " + std::string(what) + " above 0";
    if (most != std::numeric_limits<Number>::max()) {
        char digits[32];
        const auto written = std::to_chars(digits, digits + sizeof digits, most);
        wanted += " and at most " + std::string(digits, written.ptr);
    }
    return CLI::Validator(
        [wanted, most](const std::string& text) -> std::string {
            Number value = 0;
            const char* end = text.data() + text.size();
            const auto [stop, error] = std::from_chars(text.data(), end, value);
            if (error != std::errc{} || stop != end || !(value > 0 && value <= most)) {
                return wanted + ", not '" + text + "'";
            }
            return {};
        },
        wanted.substr(wanted.find("above")));
}

// Sleeps up to `seconds`, waking early when asked to stop.
void pause_for(double seconds) {
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(seconds));
    while (g_stopping == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

int status_of(const central::CentralError& error) {
    return error.code == central::CentralErrc::integrity ? exit_deny : exit_error;
}

int run_ship(const ShipArgs& args) {
    central::ShipOptions options;
    options.batch_rows = std::max<std::size_t>(args.batch, 1);
    if (!args.key.empty()) {
        auto key = read_verifier_key(args.key);
        if (!key) {
            report_error(key.error().message);
            return exit_error;
        }
        options.key = key.value();
    }
    if (args.follow) {
        std::signal(SIGTERM, request_stop);
        std::signal(SIGINT, request_stop);
    }
    std::vector<central::Connection> conns;
    double backoff = args.interval_seconds;
    bool waiting = false;
    while (true) {
        central::CentralResult<central::ShipReport> shipped =
            central::CentralError{central::CentralErrc::unavailable, ""};
        while (conns.size() < args.connections) {
            auto opened = central::Connection::open(args.to);
            if (!opened) {
                shipped = opened.error();
                conns.clear();
                break;
            }
            conns.push_back(std::move(opened).value());
        }
        if (!conns.empty()) {
            // Each round a fresh snapshot of the host's store.
            shipped = central::ship_store(args.db, conns, options);
        }
        if (shipped) {
            const central::ShipReport& report = shipped.value();
            if (waiting) {
                std::cerr << "flowgate audit ship: PostgreSQL is back, shipping " << report.origin
                          << std::endl;
                waiting = false;
            }
            backoff = args.interval_seconds;
            if (!args.follow || report.rows > 0) {
                std::cout << "shipped " << report.rows << " rows and " << report.checkpoints
                          << " checkpoints of " << report.origin << ": the central store holds "
                          << report.central_after << " rows of it" << std::endl;
            }
            if (!args.follow) {
                return exit_allow;
            }
        } else {
            const central::CentralError& error = shipped.error();
            if (!args.follow || error.code != central::CentralErrc::unavailable) {
                report_error("ship: " + error.message);
                return status_of(error);
            }
            if (!waiting) {
                std::cerr << "flowgate audit ship: waiting for PostgreSQL: " << error.message
                          << std::endl;
                waiting = true;
            }
            conns.clear();
            backoff = std::min(backoff * 2, 30.0);
        }
        if (g_stopping != 0) {
            return exit_allow;
        }
        pause_for(waiting ? backoff : args.interval_seconds);
        if (g_stopping != 0) {
            return exit_allow;
        }
    }
}

// The central store, and the origins to read there: `origin` alone when given (it must
// be there), else every one.
struct CentralSource {
    central::Connection conn;
    std::vector<std::string> origins;
};

std::optional<CentralSource> open_origins(const std::string& uri, const std::string& origin) {
    auto conn = central::Connection::open(uri);
    if (!conn) {
        report_error(conn.error().message);
        return std::nullopt;
    }
    auto origins = central::central_origins(conn.value());
    if (!origins) {
        report_error(origins.error().message);
        return std::nullopt;
    }
    if (!origin.empty()) {
        if (std::find(origins.value().begin(), origins.value().end(), origin) ==
            origins.value().end()) {
            report_error("the central store holds no rows of origin '" + origin + "'");
            return std::nullopt;
        }
        origins.value() = {origin};
    }
    return CentralSource{std::move(conn).value(), std::move(origins).value()};
}

// The policies a host shipped with its rows, for the file's tools (PolicyCache).
PolicyFilesSource shipped_policies(central::Connection& conn, const std::string& origin) {
    return [&conn, origin](const std::string& hash) -> audit::AuditResult<audit::PolicyFiles> {
        auto files = central::central_policy_files(conn, origin, hash);
        if (!files) {
            return audit::AuditError{audit::AuditErrc::unavailable, files.error().message};
        }
        return std::move(files).value();
    };
}

// For each origin in turn: begin(origin), then visit(origin, row) for its rows in seq
// order, each decoded from its shipped bytes. False, said on stderr, when the store
// cannot be read, a row's bytes are not a row, or visit gives a reason to stop.
bool visit_rows(
    central::Connection& conn, const std::vector<std::string>& origins,
    const std::function<void(const std::string&)>& begin,
    const std::function<std::optional<std::string>(const std::string&, const audit::AuditRowView&)>&
        visit) {
    for (const std::string& name : origins) {
        begin(name);
        std::optional<std::string> failure;
        auto read =
            central::for_each_central_row(conn, name, [&](const central::CentralRow& central_row) {
                if (!central_row.decoded) {
                    failure = "origin '" + name + "', seq " + std::to_string(central_row.seq) +
                              ": the shipped bytes are not a row";
                } else {
                    failure = visit(name, central_row.row);
                }
                return !failure;
            });
        if (!read) {
            report_error(read.error().message);
            return false;
        }
        if (failure) {
            report_error(*failure);
            return false;
        }
    }
    return true;
}

} // namespace

int run_central_records(const std::string& uri, const std::string& origin,
                        const RecordFilter& filter, const std::string& format) {
    auto source = open_origins(uri, origin);
    if (!source) {
        return exit_error;
    }
    central::Connection& conn = source->conn;
    const std::vector<std::string>& origins = source->origins;
    // The rules of what is a record are the file's (ProvisionSelector), under the
    // policies each host shipped with its rows.
    std::optional<ProvisionSelector> selector;
    std::vector<ProvisionRecord> records;
    const bool read = visit_rows(
        conn, origins,
        [&](const std::string& name) { selector.emplace(shipped_policies(conn, name), filter); },
        [&](const std::string& name, const audit::AuditRowView& row) -> std::optional<std::string> {
            if ((filter.since_us && row.time_us < *filter.since_us) ||
                (filter.until_us && row.time_us >= *filter.until_us)) {
                return std::nullopt;
            }
            auto selected = selector->select(row);
            if (!selected) {
                return "origin '" + name + "': " + selected.error().message;
            }
            if (selected.value()) {
                selected.value()->origin = name;
                records.push_back(std::move(*selected.value()));
            }
            return std::nullopt;
        });
    if (!read) {
        return exit_error;
    }
    print_records(records, format, true);
    return exit_allow;
}

int run_central_replay(const std::string& uri, const std::string& origin,
                       const std::string& candidate_path, bool as_json) {
    ReplayOptions options;
    if (!load_candidate(candidate_path, options)) {
        return exit_error;
    }
    auto source = open_origins(uri, origin);
    if (!source) {
        return exit_error;
    }
    central::Connection& conn = source->conn;
    const std::vector<std::string>& origins = source->origins;
    // One replayer per host: its differences are named by the host, then added up.
    ReplayReport report;
    std::optional<RowReplayer> replayer;
    std::string replaying;
    const auto finish = [&] {
        if (replayer) {
            ReplayReport& part = replayer->report();
            for (ReplayDifference& difference : part.differences) {
                difference.origin = replaying;
            }
            add_report(report, part);
        }
    };
    const bool read = visit_rows(
        conn, origins,
        [&](const std::string& name) {
            finish();
            replayer.emplace(shipped_policies(conn, name), options);
            replaying = name;
        },
        [&](const std::string&, const audit::AuditRowView& row) -> std::optional<std::string> {
            replayer->row(row);
            return std::nullopt;
        });
    if (!read) {
        return exit_error;
    }
    finish();
    return print_replay(report, options, as_json);
}

namespace {

// Of `keys`, the one that signed the origin's newest checkpoint; none when no key given
// did (or the origin has no checkpoint).
central::CentralResult<std::optional<audit::VerifierKey>>
signer_of(central::Connection& conn, const std::string& origin,
          const std::vector<audit::VerifierKey>& keys) {
    auto newest = conn.exec("SELECT note FROM flowgate_checkpoint WHERE origin = $1 ORDER BY "
                            "tree_size DESC, time_us DESC LIMIT 1",
                            central::Params().text(origin));
    if (!newest) {
        return newest.error();
    }
    if (PQntuples(newest.value().get()) == 0) {
        return std::optional<audit::VerifierKey>();
    }
    const std::string note = PQgetvalue(newest.value().get(), 0, 0);
    for (const audit::VerifierKey& key : keys) {
        if (audit::open_note(note, std::span<const audit::VerifierKey>(&key, 1))) {
            return std::optional<audit::VerifierKey>(key);
        }
    }
    return std::optional<audit::VerifierKey>();
}

} // namespace

int run_central_report(const std::string& uri, const std::string& origin,
                       const std::vector<std::string>& key_arguments,
                       const AuditReportOptions& options, const std::string& output) {
    std::vector<audit::VerifierKey> keys;
    for (const std::string& argument : key_arguments) {
        auto read = read_verifier_key(argument);
        if (!read) {
            report_error(read.error().message);
            return exit_error;
        }
        keys.push_back(read.value());
    }
    auto source = open_origins(uri, origin);
    if (!source) {
        return exit_error;
    }
    central::Connection& conn = source->conn;
    const std::vector<std::string>& origins = source->origins;
    // Each host's log verified as `verify --from` does, against the key given that signed
    // it; with keys given, a host signed by none of them does not verify.
    std::vector<HostVerification> hosts;
    for (const std::string& name : origins) {
        auto key = signer_of(conn, name, keys);
        if (!key) {
            report_error(key.error().message);
            return exit_error;
        }
        auto verified = central::verify_origin(conn, name, key.value());
        if (!verified) {
            report_error(verified.error().message);
            return exit_error;
        }
        HostVerification host{name, {}};
        host.verification.result = std::move(verified.value().log);
        if (key.value()) {
            host.verification.key_name = key.value()->name;
        } else if (!keys.empty() && !host.verification.result.fault &&
                   !host.verification.result.tree_fault) {
            host.verification.result.tree_fault =
                "its newest checkpoint is signed by none of the keys given";
        }
        hosts.push_back(std::move(host));
    }
    // The period's figures, each host's under its own policies, then added up.
    AuditPeriod period;
    period.since_us = options.since_us;
    period.until_us = options.until_us;
    std::optional<PeriodSummary> summary;
    std::string summarizing;
    const auto finish = [&] {
        if (summary) {
            AuditPeriod part = summary->finish();
            for (PolicyEvent& event : part.events) {
                event.origin = summarizing;
            }
            add_period(period, part);
        }
    };
    const bool read = visit_rows(
        conn, origins,
        [&](const std::string& name) {
            finish();
            summary.emplace(shipped_policies(conn, name), options);
            summarizing = name;
        },
        [&](const std::string& name, const audit::AuditRowView& row) -> std::optional<std::string> {
            auto done = summary->row(row);
            if (!done) {
                return "origin '" + name + "': " + done.error().message;
            }
            return std::nullopt;
        });
    if (!read) {
        return exit_error;
    }
    finish();
    // The store as the page names it: the database and its host, never the connection
    // string (which may hold a password).
    PGconn* native = conn.native();
    const std::string store =
        "PostgreSQL database " + std::string(PQdb(native)) + " on " + std::string(PQhost(native));
    if (!write_report_file(output, audit_report_html(store, hosts, period))) {
        return exit_error;
    }
    std::ostream& out = output == "-" ? std::cerr : std::cout;
    bool ok = true;
    for (const HostVerification& host : hosts) {
        ok = ok && host.verification.ok();
        for (const std::string& sentence : verification_sentences(host.verification)) {
            out << host.origin << ": " << sentence << "\n";
        }
    }
    out << store << ": " << period_line(period) << "\n";
    return ok ? exit_allow : exit_deny;
}

int run_central_verify(const std::string& uri, const std::string& origin,
                       const std::string& key_argument) {
    std::optional<audit::VerifierKey> key;
    if (!key_argument.empty()) {
        auto read = read_verifier_key(key_argument);
        if (!read) {
            report_error(read.error().message);
            return exit_error;
        }
        key = read.value();
    }
    auto conn = central::Connection::open(uri);
    if (!conn) {
        report_error(conn.error().message);
        return exit_error;
    }
    auto verified = central::verify_origin(conn.value(), origin, key);
    if (!verified) {
        report_error(verified.error().message);
        return exit_error;
    }
    const audit::VerifyResult& result = verified.value().log;
    if (result.rows == 0 && !result.fault) {
        report_error("the central store holds no rows of origin '" + origin + "'");
        return exit_error;
    }
    if (result.fault) {
        std::cout << origin << ": FAILED at seq " << result.fault->seq << ": "
                  << result.fault->message << "\n";
        return exit_deny;
    }
    if (result.tree_fault) {
        std::cout << origin << ": FAILED: the chain is intact, but " << *result.tree_fault << "\n";
        return exit_deny;
    }
    std::cout << origin << ": ok, " << result.rows << " rows chain from seq 1 to seq "
              << result.tail.seq << "\n";
    std::cout << origin << ": tree ok, " << result.tree_nodes << " stored nodes and "
              << result.checkpoints << " stored checkpoints match its rows"
              << (key ? ", each signed by " + key->name : std::string()) << "; root "
              << audit::base64_of(result.tree_root) << "\n";
    if (verified.value().rows_past_checkpoints > 0) {
        std::cout << origin << ": " << verified.value().rows_past_checkpoints
                  << " rows after the last checkpoint, which no checkpoint covers yet\n";
    }
    std::cout << audit::format_checkpoint(result.tail);
    return exit_allow;
}

void register_ship_commands(CLI::App& audit, Outcome& outcome) {
    auto args = std::make_shared<ShipArgs>();
    CLI::App* ship = audit.add_subcommand("ship", ship_description);
    ship->add_option("DB", args->db, "The audit store file (read-only)")->required();
    ship->add_option("--to", args->to,
                     "The central store: a libpq connection string (postgresql://…; PG* "
                     "variables, ~/.pgpass and sslmode apply)")
        ->required();
    ship->add_option("--key", args->key,
                     "The log's verifier key, or a file holding it: each checkpoint shipped "
                     "must be signed by it");
    ship->add_flag("--follow", args->follow,
                   "Keep shipping as the daemon writes; wait and retry while PostgreSQL is "
                   "down; stop on SIGTERM");
    ship->add_option("--batch", args->batch, "Rows per transaction")
        ->check(above_zero<std::size_t>("a whole number"));
    ship->add_option("--connections", args->connections,
                     "Batches in flight at once, each over its own connection (committed in "
                     "order)")
        ->check(CLI::Range(1, 16));
    ship->add_option("--interval", args->interval_seconds,
                     "With --follow: seconds between looks at the store")
        ->check(above_zero<double>("a number of seconds", 86'400));
    ship->callback([args, &outcome] { outcome.status = run_ship(*args); });
}

} // namespace flowgate::cli
