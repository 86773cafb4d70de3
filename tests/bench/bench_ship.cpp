// Shipping a host's log to PostgreSQL: rows per second that `flowgate audit ship` copies
// into the central store (the target: 50,000 a second to a local PostgreSQL on 2 cores,
// so that one shipper keeps up with a busy host). The log is written first by the real
// AuditStore in relaxed durability (not timed), with rows the size of the daemon's;
// the shipping is the library call the command makes, in its default batches, into an
// empty central store, checks included (every row's chain link and hash, the tree, each
// checkpoint), over as many connections as the command opens by default (2) or as given.
// Run a Release build against a database of your own:
//     bench_ship ROWS 'postgresql:///bench?host=/tmp/pg' [CONNECTIONS]
#include "audit/reader.hpp"
#include "audit/store.hpp"
#include "central/pg.hpp"
#include "central/shipper.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <time.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace flowgate;

namespace {

bool write_log(const fs::path& db, std::size_t rows) {
    audit::AuditOptions options;
    options.durability = audit::AuditDurability::relaxed;
    auto store = audit::AuditStore::create(db, options);
    if (!store) {
        std::fprintf(stderr, "cannot create %s: %s\n", db.c_str(), store.error().message.c_str());
        return false;
    }
    std::atomic<std::size_t> committed{0};
    constexpr std::size_t chunk = 20000;
    for (std::size_t i = 0; i < rows;) {
        const std::size_t end = std::min(rows, i + chunk);
        for (; i < end; ++i) {
            audit::AuditRecord record;
            record.uid = 1001;
            record.gid = 1001;
            record.pid = 4242;
            record.service = "claims";
            record.subject = "p-" + std::to_string(i % 500000);
            record.request = R"({"op":"check","id":)" + std::to_string(i) +
                             R"(,"purpose":"health_checkup","activity":"provide_results",)"
                             R"("recipient":"prevent","data":["checkup_results"],"subject":")" +
                             record.subject + R"(","context":{"consent":true}})";
            record.request_bytes = static_cast<std::int64_t>(record.request.size());
            record.decision = i % 3 == 0 ? "deny" : "allow";
            record.reason = i % 3 == 0 ? "no_matching_rule" : "permitted";
            record.rule = "permit_checkup_prevent";
            record.rule_source = "policies/kenpo.policy:118 (table row 3, case j)";
            record.legal_basis = "appi_27_1_consent";
            record.obligations = R"(["art29_record"])";
            record.policy_hash = "sha256:0000";
            record.purpose = "health_checkup";
            record.activity = "provide_results";
            record.recipient = "prevent";
            record.direction = "send";
            record.data = R"(["checkup_results"])";
            record.time_us = 1'700'000'000'000'000 + static_cast<std::int64_t>(i) * 1000;
            store.value()->submit(std::move(record),
                                  [&](audit::AuditResult<std::uint64_t>) { ++committed; });
        }
        while (committed.load() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    return true;
}

double process_cpu_seconds() {
    timespec now{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// Processor time of a process of this machine (the PostgreSQL backend serving us), from
// /proc/PID/stat's utime and stime; 0 when it cannot be read (a remote server).
double other_cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14 || i == 15) {
            ticks += std::stod(field);
        }
    }
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: bench_ship ROWS URI [CONNECTIONS] (an empty database)\n");
        return 2;
    }
    const std::size_t rows = std::strtoull(argv[1], nullptr, 10);
    const std::size_t connections = argc == 4 ? std::strtoull(argv[3], nullptr, 10) : 2;
    const fs::path dir = fs::temp_directory_path() / ("bench-ship-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path db = dir / "audit.db";
    if (!write_log(db, rows)) {
        return 1;
    }
    std::vector<central::Connection> conns;
    std::vector<int> backends;
    for (std::size_t i = 0; i < std::max<std::size_t>(connections, 1); ++i) {
        auto conn = central::Connection::open(argv[2]);
        if (!conn) {
            std::fprintf(stderr, "cannot open the database: %s\n", conn.error().message.c_str());
            return 1;
        }
        backends.push_back(PQbackendPID(conn.value().native()));
        conns.push_back(std::move(conn).value());
    }
    auto backends_cpu = [&] {
        double sum = 0;
        for (const int pid : backends) {
            sum += other_cpu_seconds(pid);
        }
        return sum;
    };
    const double backend_before = backends_cpu();
    const double cpu_before = process_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    auto shipped = central::ship_store(db, conns, {});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double cpu = process_cpu_seconds() - cpu_before;
    const double backend_cpu = backends_cpu() - backend_before;
    fs::remove_all(dir);
    if (!shipped) {
        std::fprintf(stderr, "ship: %s\n", shipped.error().message.c_str());
        return 1;
    }
    std::printf("ship: %llu rows and %llu checkpoints over %zu connections in %.2f s: %.0f "
                "rows/s\n",
                static_cast<unsigned long long>(shipped.value().rows),
                static_cast<unsigned long long>(shipped.value().checkpoints), conns.size(), seconds,
                static_cast<double>(shipped.value().rows) / seconds);
    // On a shared machine the wall-clock figure depends on what else runs; the processor
    // time does not.
    std::printf("ship: processor time %.2f s in the shipper, %.2f s in the PostgreSQL "
                "backends: %.0f rows per processor-second of all\n",
                cpu, backend_cpu,
                static_cast<double>(shipped.value().rows) / std::max(cpu + backend_cpu, 1e-9));
    return 0;
}
