// The shipper; see shipper.hpp and docs/central-store.md.
#include "central/shipper.hpp"

#include "audit/canonical.hpp"
#include "audit/merkle.hpp"
#include "audit/tree_store.hpp"
#include "audit/verifier.hpp"
#include "central/schema.hpp"

#include <future>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace flowgate::central {

namespace outcome = boost::outcome_v2;

namespace {

CentralError host_error(const audit::AuditError& error) {
    return CentralError{CentralErrc::host, "the host's store: " + error.message};
}

// How much of a batch's rows is made before it goes to the server.
constexpr std::size_t copy_part_bytes = std::size_t{64} << 10U;

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

// Where a lane's rows chain and the tree stands, carried from one batch to the next.
struct Position {
    std::uint64_t seq = 0;
    std::unique_ptr<audit::ChainVerifier> verifier;
    audit::TreeFrontier frontier;
};

// One batch in flight: its rows (from, to], read from its own reader and copied over its
// own connection in its own transaction.
struct Lane {
    audit::AuditReader* reader = nullptr;
    Connection* conn = nullptr;
    bool first = false; // the round's first lane, which goes on from the central tail
    std::uint64_t from = 0;
    std::uint64_t to = 0;
    Position at;
    std::string first_prev; // the stored prev_hash of the lane's first row
    std::string last_hash;  // the hash of its last row
    std::set<std::string> policies;
    std::uint64_t checkpoints = 0;
    bool committed = false;
    std::optional<CentralError> error;
};

class Shipment {
public:
    Shipment(std::span<const ShipLane> lanes, const ShipOptions& options)
        : m_lanes(lanes), m_options(options) {}

    CentralResult<ShipReport> run();

private:
    CentralResult<void> resume(const CentralTail& tail);
    CentralResult<bool> round();
    CentralResult<Position> position_at(audit::AuditReader& reader, std::uint64_t seq) const;
    CentralResult<void> stage(Lane& lane);
    void finish(Lane& lane, const Lane* before, std::shared_future<bool> before_done,
                std::promise<bool>& done);
    CentralResult<void> checkpoints(Lane& lane, std::uint64_t from,
                                    const std::map<std::uint64_t, audit::TreeHash>& roots);
    CentralResult<void> policies(Lane& lane);

    std::span<const ShipLane> m_lanes;
    const ShipOptions& m_options;
    Connection& m_conn = *m_lanes.front().conn; // the one that locks and reads the tail
    int m_version = 0;
    std::uint64_t m_host_last = 0;
    std::vector<audit::StoredCheckpoint> m_host_checkpoints;
    std::optional<Position> m_at;
    std::set<std::string> m_policies_seen;
    std::string m_tail_hash; // the central store's last row's hash, empty when it has none
    ShipReport m_report;
};

CentralResult<Position> Shipment::position_at(audit::AuditReader& reader, std::uint64_t seq) const {
    Position at;
    at.seq = seq;
    at.verifier = std::make_unique<audit::ChainVerifier>(seq + 1, nullptr, m_version);
    audit::StoredTree tree(reader.connection(), m_version);
    auto frontier = audit::TreeFrontier::from_source(seq, tree);
    if (!frontier) {
        return host_error(audit::tree_error(frontier.error(), tree));
    }
    at.frontier = frontier.value();
    return at;
}

CentralResult<void> Shipment::resume(const CentralTail& tail) {
    audit::AuditReader& reader = *m_lanes.front().reader;
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
        auto rows = reader.rows(range);
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
    auto at = position_at(reader, tail.seq);
    if (!at) {
        return at.error();
    }
    m_at = std::move(at).value();
    return outcome::success();
}

// A lane's batch, short of its policy texts and its COMMIT: the rows, streamed to the
// server as they are read and checked (whatever goes wrong before their end abandons the
// COPY, and with it the transaction), the tree nodes they complete and the checkpoints
// they reach.
CentralResult<void> Shipment::stage(Lane& lane) {
    Connection& conn = *lane.conn;
    Position& at = lane.at;
    const std::uint64_t from = at.seq;
    if (auto begun = conn.exec("BEGIN"); !begun) {
        return begun.error();
    }
    std::set<std::uint64_t> sizes;
    for (const audit::StoredCheckpoint& stored : m_host_checkpoints) {
        if (stored.tree_size > from && stored.tree_size <= lane.to) {
            sizes.insert(stored.tree_size);
        }
    }
    std::map<std::uint64_t, audit::TreeHash> roots; // the batch's roots at checkpoint sizes
    BinaryCopy rows_copy;
    BinaryCopy nodes_copy;
    std::string canonical;
    bool linked = true;
    const bool rows = lane.to > from;
    if (rows) {
        if (auto started = conn.copy_start(
                "COPY flowgate_log (origin, seq, schema_version, canonical, prev_hash, hash, "
                "time_us, kind, decision, purpose, recipient, subject) FROM STDIN (FORMAT binary)");
            !started) {
            return started.error();
        }
    }
    std::optional<CentralError> sending;
    audit::AuditRowRange range;
    range.from_seq = static_cast<std::int64_t>(from + 1);
    range.to_seq = static_cast<std::int64_t>(lane.to);
    auto walked = lane.reader->for_each_row(range, [&](const audit::AuditRowView& row) {
        if (!at.verifier->add(row)) {
            return false;
        }
        if (at.verifier->rows() == 1) {
            lane.first_prev = std::string(row.prev_hash);
            // The first lane's rows go on from the central store's last row; a later
            // lane's link to the lane before is checked once that one is staged (finish()).
            if (lane.first && !m_tail_hash.empty() && row.prev_hash != m_tail_hash) {
                linked = false;
                return false;
            }
        }
        lane.last_hash.assign(row.hash);
        audit::canonical_row_bytes(row, m_version, canonical);
        for (const audit::TreeNode& node : at.frontier.append(at.verifier->leaf())) {
            if (node.id.level >= audit::tree_stored_from_level) {
                nodes_copy.row(4);
                nodes_copy.text(m_report.origin);
                nodes_copy.int8(static_cast<std::int64_t>(audit::node_end(node.id)));
                nodes_copy.int2(static_cast<std::int16_t>(node.id.level));
                nodes_copy.bytes(audit::hash_bytes(node.hash));
            }
        }
        if (sizes.contains(row.seq)) {
            roots[row.seq] = at.frontier.root();
        }
        rows_copy.row(12);
        rows_copy.text(m_report.origin);
        rows_copy.int8(static_cast<std::int64_t>(row.seq));
        rows_copy.int2(static_cast<std::int16_t>(m_version));
        rows_copy.bytes(canonical);
        rows_copy.text(row.prev_hash);
        rows_copy.text(row.hash);
        rows_copy.int8(row.time_us);
        for (const std::string_view text :
             {row.kind, row.decision, row.purpose, row.recipient, row.subject}) {
            rows_copy.text(text);
        }
        if (!row.policy_hash.empty() && !m_policies_seen.contains(std::string(row.policy_hash))) {
            lane.policies.emplace(row.policy_hash);
        }
        if (rows_copy.part().size() >= copy_part_bytes) {
            if (auto sent = conn.copy_send(rows_copy.part()); !sent) {
                sending = sent.error();
                return false;
            }
            rows_copy.sent();
        }
        return true;
    });
    std::optional<CentralError> failed;
    if (sending) {
        failed = *sending;
    } else if (!walked) {
        failed = host_error(walked.error());
    } else if (!linked) {
        failed = integrity("seq " + std::to_string(from + 1) + " of origin '" + m_report.origin +
                           "' does not link to the central store's seq " + std::to_string(from));
    } else {
        at.verifier->end_at(lane.to);
        if (at.verifier->fault()) {
            failed = integrity("the host's log '" + m_report.origin + "' at " +
                               audit::describe(*at.verifier->fault()));
        }
    }
    if (failed) {
        if (rows) {
            conn.copy_abandon(failed->message);
        }
        return *failed;
    }
    if (rows) {
        if (auto sent = conn.copy_send(rows_copy.data()); !sent) {
            return sent.error();
        }
        if (auto copied = conn.copy_end(); !copied) {
            return copied.error();
        }
        if (!nodes_copy.empty()) {
            if (auto copied = conn.copy_in(
                    "COPY flowgate_tree (origin, end_size, level, hash) FROM STDIN (FORMAT binary)",
                    nodes_copy.data());
                !copied) {
                return copied.error();
            }
        }
    }
    // The first lane also ships any older checkpoint the central store lacks.
    if (auto shipped = checkpoints(lane, lane.first ? 0 : from, roots); !shipped) {
        return shipped.error();
    }
    at.seq = lane.to;
    return outcome::success();
}

// Commits a staged lane once the lane before it has committed, its rows linked to that
// lane's; otherwise rolls it back. `done` says whether it committed.
void Shipment::finish(Lane& lane, const Lane* before, std::shared_future<bool> before_done,
                      std::promise<bool>& done) {
    auto staged = stage(lane);
    const bool before_committed = before == nullptr || before_done.get();
    if (staged && before != nullptr && before_committed && lane.first_prev != before->last_hash) {
        staged =
            integrity("seq " + std::to_string(before->to + 1) + " of origin '" + m_report.origin +
                      "' does not link to seq " + std::to_string(before->to));
    }
    // The policy texts last: a lane that copied the same text before this one would
    // make this one's copy wait for its commit.
    if (staged && before_committed) {
        staged = policies(lane);
    }
    if (staged && before_committed) {
        auto committed = lane.conn->exec("COMMIT");
        lane.committed = static_cast<bool>(committed);
        if (!committed) {
            lane.error = committed.error();
        }
    } else {
        if (!staged) {
            lane.error = staged.error();
        }
        if (PQtransactionStatus(lane.conn->native()) != PQTRANS_IDLE &&
            PQstatus(lane.conn->native()) == CONNECTION_OK) {
            (void)lane.conn->exec("ROLLBACK");
        }
    }
    done.set_value(lane.committed);
}

// One round: up to a batch per lane, their transactions committed in seq order, with an
// advisory lock per origin held across them (two shippers of an origin take turns). False
// once there is nothing more to ship.
CentralResult<bool> Shipment::round() {
    auto locked = m_conn.exec("SELECT pg_advisory_lock(hashtextextended($1, 0))",
                              Params().text(m_report.origin));
    if (!locked) {
        return locked.error();
    }
    auto unlock = [&] {
        if (PQstatus(m_conn.native()) == CONNECTION_OK) {
            (void)m_conn.exec("SELECT pg_advisory_unlock(hashtextextended($1, 0))",
                              Params().text(m_report.origin));
        }
    };
    auto tail = central_tail(m_conn, m_report.origin);
    if (!tail) {
        unlock();
        return tail.error();
    }
    if (m_report.batches == 0) {
        m_report.central_before = tail.value().seq;
    }
    if (!m_at || m_at->seq != tail.value().seq) {
        if (auto resumed = resume(tail.value()); !resumed) {
            unlock();
            return resumed.error();
        }
    }
    m_tail_hash = tail.value().seq > 0 ? tail.value().hash : std::string();
    // The batches of this round: the first goes on from the tail; each other starts
    // where the one before it ends, its chain and tree taken from the host.
    std::vector<Lane> lanes;
    std::uint64_t seq = m_at->seq;
    for (const ShipLane& parts : m_lanes) {
        if (!lanes.empty() && seq >= m_host_last) {
            break;
        }
        Lane lane;
        lane.reader = parts.reader;
        lane.conn = parts.conn;
        lane.first = lanes.empty();
        lane.from = seq;
        lane.to = std::min<std::uint64_t>(seq + m_options.batch_rows, m_host_last);
        if (lanes.empty()) {
            lane.at = std::move(*m_at);
            m_at.reset();
        } else {
            auto at = position_at(*lane.reader, seq);
            if (!at) {
                unlock();
                return at.error();
            }
            lane.at = std::move(at).value();
        }
        seq = lane.to;
        lanes.push_back(std::move(lane));
    }
    std::vector<std::promise<bool>> done(lanes.size());
    std::vector<std::shared_future<bool>> committed;
    for (std::promise<bool>& promise : done) {
        committed.push_back(promise.get_future().share());
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < lanes.size(); ++i) {
        threads.emplace_back(
            [&, i] { finish(lanes[i], &lanes[i - 1], committed[i - 1], done[i]); });
    }
    finish(lanes.front(), nullptr, {}, done.front());
    for (std::thread& thread : threads) {
        thread.join();
    }
    unlock();
    // What committed, in order; the first failure is the round's error.
    std::optional<CentralError> error;
    for (Lane& lane : lanes) {
        if (!lane.committed) {
            if (!error && lane.error) {
                error = lane.error;
            }
            continue;
        }
        m_policies_seen.insert(lane.policies.begin(), lane.policies.end());
        m_report.rows += lane.to - lane.from;
        m_report.checkpoints += lane.checkpoints;
        m_report.central_after = lane.to;
        ++m_report.batches;
        m_at = std::move(lane.at);
    }
    if (error) {
        return *error;
    }
    return m_at->seq < m_host_last;
}

// Ships the host's checkpoints of trees of more than `from` and at most the lane's rows
// that the central store does not hold, each checked first.
CentralResult<void> Shipment::checkpoints(Lane& lane, std::uint64_t from,
                                          const std::map<std::uint64_t, audit::TreeHash>& roots) {
    Connection& conn = *lane.conn;
    auto central =
        conn.exec("SELECT tree_size::text, time_us::text, note FROM "
                  "flowgate_checkpoint WHERE origin = $1 AND tree_size > $2",
                  Params().text(m_report.origin).number(static_cast<std::int64_t>(from)));
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
        if (stored.tree_size <= from || stored.tree_size > lane.to) {
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
            stored, m_report.origin, lane.to, m_options.key,
            [&](std::uint64_t size) -> audit::AuditResult<audit::TreeHash> {
                if (const auto root = roots.find(size); root != roots.end()) {
                    return root->second;
                }
                return lane.reader->tree_root(size);
            });
        if (!fault) {
            return host_error(fault.error());
        }
        if (!fault.value().empty()) {
            return integrity("origin '" + m_report.origin + "': " + fault.value());
        }
        auto inserted = conn.exec("INSERT INTO flowgate_checkpoint (origin, tree_size, time_us, "
                                  "note) VALUES ($1, $2, $3, $4)",
                                  Params()
                                      .text(m_report.origin)
                                      .number(static_cast<std::int64_t>(stored.tree_size))
                                      .number(stored.time_us)
                                      .text(stored.note));
        if (!inserted) {
            return inserted.error();
        }
        ++lane.checkpoints;
    }
    return outcome::success();
}

// The policies the lane's rows name that no batch of an earlier round shipped; those a
// lane before it in this round shipped are there already (ON CONFLICT DO NOTHING).
CentralResult<void> Shipment::policies(Lane& lane) {
    for (const std::string& hash : lane.policies) {
        auto files = lane.reader->policy_files(hash);
        if (!files) {
            return host_error(files.error());
        }
        for (const auto& [file, content] : files.value()) {
            auto inserted = lane.conn->exec(
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
    audit::AuditReader& reader = *m_lanes.front().reader;
    auto origin = reader.origin();
    if (!origin) {
        return host_error(origin.error());
    }
    if (origin.value().empty()) {
        return CentralError{CentralErrc::host,
                            "the host's store is of schema version " +
                                std::to_string(reader.schema_version()) +
                                ", which has no origin and no checkpoints: it cannot be shipped"};
    }
    m_report.origin = origin.value();
    m_version = reader.schema_version();
    auto last = reader.last_seq();
    if (!last) {
        return host_error(last.error());
    }
    m_host_last = last.value();
    for (const ShipLane& lane : m_lanes.subspan(1)) {
        auto there = lane.reader->last_seq();
        if (!there) {
            return host_error(there.error());
        }
        if (there.value() < m_host_last) {
            return CentralError{CentralErrc::host,
                                "the host's store: a lane's reader sees fewer rows than the "
                                "first (readers must be opened first to last)"};
        }
    }
    auto stored = reader.checkpoints();
    if (!stored) {
        return host_error(stored.error());
    }
    m_host_checkpoints = std::move(stored).value();
    if (auto made = ensure_schema(m_conn); !made) {
        return made.error();
    }
    while (true) {
        auto more = round();
        if (!more) {
            return more.error();
        }
        if (!more.value()) {
            return m_report;
        }
    }
}

} // namespace

CentralResult<ShipReport> ship(std::span<const ShipLane> lanes, const ShipOptions& options) {
    if (lanes.empty()) {
        return CentralError{CentralErrc::refused, "shipping needs a connection"};
    }
    return Shipment(lanes, options).run();
}

CentralResult<ShipReport> ship_store(const std::filesystem::path& db,
                                     std::vector<Connection>& conns, const ShipOptions& options) {
    std::vector<std::unique_ptr<audit::AuditReader>> readers;
    std::vector<ShipLane> lanes;
    for (Connection& conn : conns) {
        auto reader = audit::AuditReader::open(db);
        if (!reader) {
            return host_error(reader.error());
        }
        readers.push_back(std::move(reader).value());
        lanes.push_back(ShipLane{readers.back().get(), &conn});
    }
    return ship(lanes, options);
}

} // namespace flowgate::central
