// The shipper; see shipper.hpp and docs/central-store.md.
#include "central/shipper.hpp"

#include "audit/canonical.hpp"
#include "audit/merkle.hpp"
#include "audit/tree_store.hpp"
#include "audit/verifier.hpp"
#include "central/schema.hpp"

#include <map>
#include <memory>
#include <set>

namespace flowgate::central {

namespace outcome = boost::outcome_v2;

namespace {

CentralError host_error(const audit::AuditError& error) {
    return CentralError{CentralErrc::host, "the host's store: " + error.message};
}

CentralError integrity(std::string message) {
    return CentralError{CentralErrc::integrity, std::move(message)};
}

// Where the central copy of the origin's log ends, as one transaction sees it.
struct CentralTail {
    std::uint64_t seq = 0;
    std::string hash;
    std::string canonical;
};

CentralResult<CentralTail> central_tail(Connection& conn, const std::string& origin) {
    auto last = conn.exec("SELECT seq, hash, canonical FROM flowgate_log WHERE origin = $1 "
                          "ORDER BY seq DESC LIMIT 1",
                          Params().text(origin), true);
    if (!last) {
        return last.error();
    }
    CentralTail tail;
    if (PQntuples(last.value().get()) == 1) {
        tail.seq = static_cast<std::uint64_t>(binary_integer(last.value(), 0, 0));
        tail.hash = std::string(value(last.value(), 0, 1));
        tail.canonical = std::string(value(last.value(), 0, 2));
    }
    return tail;
}

// What a run of batches carries from one to the next: where the host's rows chain and
// the tree stands.
struct Position {
    std::uint64_t seq = 0;
    std::unique_ptr<audit::ChainVerifier> verifier;
    audit::TreeFrontier frontier;
};

class Shipment {
public:
    Shipment(audit::AuditReader& reader, Connection& conn, const ShipOptions& options)
        : m_reader(reader), m_conn(conn), m_options(options) {}

    CentralResult<ShipReport> run();

private:
    CentralResult<void> resume(const CentralTail& tail);
    CentralResult<bool> batch();
    CentralResult<void> checkpoints(std::uint64_t shipped);
    CentralResult<void> policies(const std::set<std::string>& hashes);

    audit::AuditReader& m_reader;
    Connection& m_conn;
    const ShipOptions& m_options;
    int m_version = 0;
    std::uint64_t m_host_last = 0;
    std::vector<audit::StoredCheckpoint> m_host_checkpoints;
    std::optional<Position> m_at;
    std::map<std::uint64_t, audit::TreeHash> m_roots; // the batch's roots at checkpoint sizes
    std::set<std::string> m_policies_seen;
    ShipReport m_report;
    BinaryCopy m_rows_copy;
    BinaryCopy m_nodes_copy;
};

CentralResult<void> Shipment::resume(const CentralTail& tail) {
    if (tail.seq > m_host_last) {
        return integrity("the central store holds " + std::to_string(tail.seq) +
                         " rows of origin '" + m_report.origin + "', the host's store only " +
                         std::to_string(m_host_last) +
                         ": the host's log was truncated or rebuilt, or is another");
    }
    if (tail.seq > 0) {
        audit::AuditRowRange range;
        range.from_seq = static_cast<std::int64_t>(tail.seq);
        range.to_seq = range.from_seq;
        auto rows = m_reader.rows(range);
        if (!rows) {
            return host_error(rows.error());
        }
        if (rows.value().size() != 1 ||
            audit::canonical_row_bytes(audit::view_of(rows.value().front()), m_version) !=
                tail.canonical ||
            rows.value().front().hash != tail.hash) {
            return integrity("seq " + std::to_string(tail.seq) + " of origin '" + m_report.origin +
                             "': the host's row differs from the central store's copy");
        }
    }
    Position at;
    at.seq = tail.seq;
    at.verifier = std::make_unique<audit::ChainVerifier>(tail.seq + 1, nullptr, m_version);
    audit::StoredTree tree(m_reader.connection(), m_version);
    auto frontier = audit::TreeFrontier::from_source(tail.seq, tree);
    if (!frontier) {
        return host_error(audit::tree_error(frontier.error(), tree));
    }
    at.frontier = frontier.value();
    m_at = std::move(at);
    return outcome::success();
}

// One transaction: false once there is nothing more to ship.
CentralResult<bool> Shipment::batch() {
    if (auto begun = m_conn.exec("BEGIN"); !begun) {
        return begun.error();
    }
    auto locked = m_conn.exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                              Params().text(m_report.origin));
    if (!locked) {
        return locked.error();
    }
    auto tail = central_tail(m_conn, m_report.origin);
    if (!tail) {
        return tail.error();
    }
    if (m_report.batches == 0) {
        m_report.central_before = tail.value().seq;
    }
    if (!m_at || m_at->seq != tail.value().seq) {
        if (auto resumed = resume(tail.value()); !resumed) {
            return resumed.error();
        }
    }
    Position& at = *m_at;
    const std::uint64_t last = std::min<std::uint64_t>(at.seq + m_options.batch_rows, m_host_last);
    m_rows_copy.clear();
    m_nodes_copy.clear();
    m_roots.clear();
    std::set<std::uint64_t> sizes;
    for (const audit::StoredCheckpoint& stored : m_host_checkpoints) {
        if (stored.tree_size > at.seq && stored.tree_size <= last) {
            sizes.insert(stored.tree_size);
        }
    }
    std::set<std::string> policies;
    std::optional<audit::ChainFault> fault;
    std::string canonical;
    bool linked = true;
    audit::AuditRowRange range;
    range.from_seq = static_cast<std::int64_t>(at.seq + 1);
    range.to_seq = static_cast<std::int64_t>(last);
    auto walked = m_reader.for_each_row(range, [&](const audit::AuditRowView& row) {
        if (!at.verifier->add(row)) {
            return false;
        }
        if (at.verifier->rows() == 1 && at.seq > 0 && row.prev_hash != tail.value().hash) {
            linked = false;
            return false;
        }
        audit::canonical_row_bytes(row, m_version, canonical);
        for (const audit::TreeNode& node : at.frontier.append(at.verifier->leaf())) {
            if (node.id.level >= audit::tree_stored_from_level) {
                m_nodes_copy.row(4);
                m_nodes_copy.text(m_report.origin);
                m_nodes_copy.int8(static_cast<std::int64_t>(audit::node_end(node.id)));
                m_nodes_copy.int2(static_cast<std::int16_t>(node.id.level));
                m_nodes_copy.bytes(audit::hash_bytes(node.hash));
            }
        }
        if (sizes.contains(row.seq)) {
            m_roots[row.seq] = at.frontier.root();
        }
        m_rows_copy.row(12);
        m_rows_copy.text(m_report.origin);
        m_rows_copy.int8(static_cast<std::int64_t>(row.seq));
        m_rows_copy.int2(static_cast<std::int16_t>(m_version));
        m_rows_copy.bytes(canonical);
        m_rows_copy.text(row.prev_hash);
        m_rows_copy.text(row.hash);
        m_rows_copy.int8(row.time_us);
        for (const std::string_view text :
             {row.kind, row.decision, row.purpose, row.recipient, row.subject}) {
            m_rows_copy.text(text);
        }
        if (!row.policy_hash.empty() && !m_policies_seen.contains(std::string(row.policy_hash))) {
            policies.emplace(row.policy_hash);
        }
        return true;
    });
    if (!walked) {
        return host_error(walked.error());
    }
    if (!linked) {
        return integrity("seq " + std::to_string(at.seq + 1) + " of origin '" + m_report.origin +
                         "' does not link to the central store's seq " + std::to_string(at.seq));
    }
    at.verifier->end_at(last);
    if (at.verifier->fault()) {
        return integrity("the host's log '" + m_report.origin + "' at " +
                         audit::describe(*at.verifier->fault()));
    }
    if (last > at.seq) {
        if (auto copied = m_conn.copy_in(
                "COPY flowgate_log (origin, seq, schema_version, canonical, prev_hash, hash, "
                "time_us, kind, decision, purpose, recipient, subject) FROM STDIN (FORMAT binary)",
                m_rows_copy.data());
            !copied) {
            return copied.error();
        }
        if (!m_nodes_copy.empty()) {
            if (auto copied = m_conn.copy_in(
                    "COPY flowgate_tree (origin, end_size, level, hash) FROM STDIN (FORMAT binary)",
                    m_nodes_copy.data());
                !copied) {
                return copied.error();
            }
        }
    }
    if (auto shipped =
            policies.empty() ? CentralResult<void>(outcome::success()) : this->policies(policies);
        !shipped) {
        return shipped.error();
    }
    if (auto shipped = checkpoints(last); !shipped) {
        return shipped.error();
    }
    if (auto committed = m_conn.exec("COMMIT"); !committed) {
        return committed.error();
    }
    m_policies_seen.insert(policies.begin(), policies.end());
    m_report.rows += last - at.seq;
    m_report.central_after = last;
    ++m_report.batches;
    at.seq = last;
    return last < m_host_last;
}

// Ships the host's checkpoints of trees of at most `shipped` rows that the central store
// does not hold, each checked first.
CentralResult<void> Shipment::checkpoints(std::uint64_t shipped) {
    auto central = m_conn.exec("SELECT tree_size::text, time_us::text, note FROM "
                               "flowgate_checkpoint WHERE origin = $1",
                               Params().text(m_report.origin));
    if (!central) {
        return central.error();
    }
    std::map<std::pair<std::string, std::string>, std::string> held;
    for (int i = 0; i < PQntuples(central.value().get()); ++i) {
        held.emplace(std::pair{std::string(value(central.value(), i, 0)),
                               std::string(value(central.value(), i, 1))},
                     std::string(value(central.value(), i, 2)));
    }
    for (const audit::StoredCheckpoint& stored : m_host_checkpoints) {
        if (stored.tree_size > shipped) {
            continue;
        }
        const auto key =
            std::pair{std::to_string(stored.tree_size), std::to_string(stored.time_us)};
        if (const auto there = held.find(key); there != held.end()) {
            if (there->second != stored.note) {
                return integrity("the checkpoint of size " + key.first + " stored at " +
                                 key.second + " of origin '" + m_report.origin +
                                 "' differs from the central store's copy");
            }
            continue;
        }
        auto fault = audit::stored_checkpoint_fault(
            stored, m_report.origin, shipped, m_options.key,
            [&](std::uint64_t size) -> audit::AuditResult<audit::TreeHash> {
                if (const auto root = m_roots.find(size); root != m_roots.end()) {
                    return root->second;
                }
                return m_reader.tree_root(size);
            });
        if (!fault) {
            return host_error(fault.error());
        }
        if (!fault.value().empty()) {
            return integrity("origin '" + m_report.origin + "': " + fault.value());
        }
        auto inserted = m_conn.exec("INSERT INTO flowgate_checkpoint (origin, tree_size, time_us, "
                                    "note) VALUES ($1, $2, $3, $4)",
                                    Params()
                                        .text(m_report.origin)
                                        .number(static_cast<std::int64_t>(stored.tree_size))
                                        .number(stored.time_us)
                                        .text(stored.note));
        if (!inserted) {
            return inserted.error();
        }
        ++m_report.checkpoints;
    }
    return outcome::success();
}

CentralResult<void> Shipment::policies(const std::set<std::string>& hashes) {
    for (const std::string& hash : hashes) {
        auto files = m_reader.policy_files(hash);
        if (!files) {
            return host_error(files.error());
        }
        for (const auto& [file, content] : files.value()) {
            auto inserted = m_conn.exec(
                "INSERT INTO flowgate_policy (origin, policy_hash, file, content) VALUES ($1, $2, "
                "$3, $4) ON CONFLICT DO NOTHING",
                Params().text(m_report.origin).text(hash).text(file).text(content));
            if (!inserted) {
                return inserted.error();
            }
        }
    }
    return outcome::success();
}

CentralResult<ShipReport> Shipment::run() {
    auto origin = m_reader.origin();
    if (!origin) {
        return host_error(origin.error());
    }
    if (origin.value().empty()) {
        return CentralError{CentralErrc::host,
                            "the host's store is of schema version " +
                                std::to_string(m_reader.schema_version()) +
                                ", which has no origin and no checkpoints: it cannot be shipped"};
    }
    m_report.origin = origin.value();
    m_version = m_reader.schema_version();
    auto last = m_reader.last_seq();
    if (!last) {
        return host_error(last.error());
    }
    m_host_last = last.value();
    auto stored = m_reader.checkpoints();
    if (!stored) {
        return host_error(stored.error());
    }
    m_host_checkpoints = std::move(stored).value();
    if (auto made = ensure_schema(m_conn); !made) {
        return made.error();
    }
    while (true) {
        auto more = batch();
        if (!more) {
            if (PQtransactionStatus(m_conn.native()) != PQTRANS_IDLE &&
                PQstatus(m_conn.native()) == CONNECTION_OK) {
                (void)m_conn.exec("ROLLBACK");
            }
            return more.error();
        }
        if (!more.value()) {
            return m_report;
        }
    }
}

} // namespace

CentralResult<ShipReport> ship(audit::AuditReader& reader, Connection& conn,
                               const ShipOptions& options) {
    return Shipment(reader, conn, options).run();
}

} // namespace flowgate::central
