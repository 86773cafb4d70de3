// `flowgate audit ship`: copies a host's log, as its read-only reader sees it, into the
// central store in PostgreSQL, under the log's origin. It continues from the last seq
// the central store holds for that origin, in one transaction per batch (rows, the
// tree's nodes they complete, the checkpoints they reach, the policies they name), so a
// shipper killed at any point leaves whole batches and resumes where they end; two
// shippers of one origin take turns (an advisory lock per origin). What it copies it
// checks first, the central copy being evidence too: the rows must chain on from the
// central store's last row, which must be byte for byte the host's row of that seq, and
// each checkpoint must be one of the tree of the rows shipped (and, given a key, signed
// by it). Otherwise it stops with an integrity error and copies nothing more.
#pragma once

#include "audit/reader.hpp"
#include "audit/signing_key.hpp"
#include "central/pg.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace flowgate::central {

struct ShipOptions {
    std::size_t batch_rows = 10'000;
    // The host's verifier key: every checkpoint shipped must be signed by it.
    std::optional<audit::VerifierKey> key;
};

struct ShipReport {
    std::string origin;
    std::uint64_t central_before = 0; // the central store's last seq of the origin, before
    std::uint64_t central_after = 0;  // and after
    std::uint64_t rows = 0;           // rows shipped
    std::uint64_t checkpoints = 0;    // checkpoints shipped
    std::uint64_t batches = 0;        // transactions committed
};

// A reader of the host's store and a connection to the central store: one batch in
// flight. A shipment over several has as many batches in flight at once, each in its own
// transaction, which the server stores in parallel (a backend each); they commit in seq
// order, a batch only once the one before it has, so the central store still only ever
// holds whole batches from seq 1 on.
struct ShipLane {
    audit::AuditReader* reader = nullptr;
    Connection* conn = nullptr;
};

// Ships what the first lane's reader's snapshot holds past the central store's copy of
// its log; the other lanes' readers must have been opened after it (they see at least
// its rows). Makes the central tables first if they are not there (ensure_schema()).
CentralResult<ShipReport> ship(std::span<const ShipLane> lanes, const ShipOptions& options);
// The store at `db`, a reader of it opened for each connection.
CentralResult<ShipReport> ship_store(const std::filesystem::path& db,
                                     std::vector<Connection>& conns, const ShipOptions& options);

} // namespace flowgate::central
