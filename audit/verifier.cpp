// The chain verifier and the whole-log verify; see verifier.hpp and docs/audit-store.md.
// A verify reads every row once: the per-row work compares fixed-size hex buffers and
// hashes with a reused context, without an allocation.
#include "audit/verifier.hpp"

#include <charconv>
#include <cstring>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

// The ways a row fails to follow the one before, in the words every pass uses.
constexpr std::string_view not_linked = "does not link to the row before it (prev_hash is not "
                                        "that row's hash: a row was removed, inserted or "
                                        "reordered)";
constexpr std::string_view not_hex =
    "does not link to the row before it (prev_hash is not 64 hex digits)";

std::string missing(std::uint64_t seq) {
    return "missing: no row has seq " + std::to_string(seq) + " (rows were removed)";
}

} // namespace

std::string describe(const ChainFault& fault) {
    return "seq " + std::to_string(fault.seq) + ": " + fault.message;
}

std::string format_checkpoint(const Checkpoint& checkpoint) {
    return "seq " + std::to_string(checkpoint.seq) + " hash " + checkpoint.hash + "\n";
}

std::optional<Checkpoint> parse_checkpoint(std::string_view text) {
    auto word = [&text]() {
        const auto begin = text.find_first_not_of(" \t\r\n");
        if (begin == std::string_view::npos) {
            text = {};
            return std::string_view();
        }
        text.remove_prefix(begin);
        const auto end = std::min(text.find_first_of(" \t\r\n"), text.size());
        std::string_view out = text.substr(0, end);
        text.remove_prefix(end);
        return out;
    };
    Checkpoint checkpoint;
    if (word() != "seq") {
        return std::nullopt;
    }
    const std::string_view seq = word();
    auto [end, error] = std::from_chars(seq.data(), seq.data() + seq.size(), checkpoint.seq);
    if (error != std::errc() || end != seq.data() + seq.size() || checkpoint.seq == 0) {
        return std::nullopt;
    }
    if (word() != "hash") {
        return std::nullopt;
    }
    checkpoint.hash = std::string(word());
    if (!hash_from_hex(checkpoint.hash) || !word().empty()) {
        return std::nullopt;
    }
    return checkpoint;
}

ChainVerifier::ChainVerifier(std::uint64_t first_seq, const Checkpoint* checkpoint, int version)
    : m_first_seq(first_seq), m_version(version), m_expected_seq(first_seq),
      m_checkpoint(checkpoint) {
    to_hex(m_prev, m_prev_hex);
    if (m_checkpoint != nullptr) {
        m_checkpoint_hash = hash_from_hex(m_checkpoint->hash);
    }
    m_canonical.reserve(4096);
}

bool ChainVerifier::fail(std::uint64_t seq, std::string_view message) {
    m_fault = ChainFault{seq, std::string(message)};
    return false;
}

bool ChainVerifier::add(const AuditRowView& row) {
    if (m_fault) {
        return false;
    }
    if (row.seq != m_expected_seq) {
        if (row.seq > m_expected_seq) {
            return fail(m_expected_seq, missing(m_expected_seq));
        }
        return fail(m_expected_seq, "out of sequence: a row numbered " +
                                        std::to_string(static_cast<std::int64_t>(row.seq)) +
                                        " where seq " + std::to_string(m_expected_seq) +
                                        " belongs");
    }
    if (m_rows == 0 && m_first_seq != 1) {
        // The link into these rows is the caller's to check, against the row before.
        const auto given = hash_from_hex(row.prev_hash);
        if (!given) {
            return fail(row.seq, not_hex);
        }
        m_first_prev = std::string(row.prev_hash);
        m_prev = *given;
        std::memcpy(m_prev_hex, row.prev_hash.data(), sizeof m_prev_hex);
    }
    if (row.prev_hash != std::string_view(m_prev_hex, sizeof m_prev_hex)) {
        if (row.seq == 1) {
            return fail(row.seq, "does not start the chain (prev_hash is not 32 zero bytes)");
        }
        if (!hash_from_hex(row.prev_hash)) {
            return fail(row.seq, not_hex);
        }
        return fail(row.seq, not_linked);
    }
    if (!parse_audit_kind(row.kind) || !parse_audit_decision(row.decision)) {
        return fail(row.seq, "unknown kind '" + std::string(row.kind) + "' or decision '" +
                                 std::string(row.decision) + "': not a row flowgate writes");
    }
    canonical_row_bytes(row, m_version, m_canonical);
    const ChainHash digest = m_hasher.hash(m_prev, m_canonical);
    to_hex(digest, m_prev_hex);
    if (row.hash != std::string_view(m_prev_hex, sizeof m_prev_hex)) {
        return fail(row.seq, "altered: its hash does not match its contents");
    }
    if (m_checkpoint != nullptr && row.seq == m_checkpoint->seq) {
        m_checkpoint_seen = true;
        if (!m_checkpoint_hash || digest != *m_checkpoint_hash) {
            return fail(row.seq, "differs from the checkpoint (hash " + m_checkpoint->hash +
                                     "): the log was rebuilt or replaced since");
        }
    }
    m_prev = digest;
    ++m_expected_seq;
    ++m_rows;
    return true;
}

bool ChainVerifier::end_at(std::uint64_t last_seq) {
    if (m_fault) {
        return false;
    }
    if (m_expected_seq <= last_seq) {
        return fail(m_expected_seq, missing(m_expected_seq));
    }
    return true;
}

namespace {

// What one part of the log says about the chain.
struct PartCheck {
    std::optional<ChainFault> fault;
    std::uint64_t rows = 0;
    std::string first_prev; // the first row's stored prev_hash, if it was in sequence
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    ChainHash last_hash{};
    bool checkpoint_seen = false;
};

AuditResult<PartCheck> check_part(AuditReader& reader, const Part& part,
                                  const std::optional<Checkpoint>& checkpoint,
                                  RowCounter& counter) {
    ChainVerifier verifier(part.start, checkpoint ? &*checkpoint : nullptr,
                           reader.schema_version());
    auto walked = reader.for_each_row(part.range, [&](const AuditRowView& row) {
        counter.row();
        return verifier.add(row);
    });
    if (!walked) {
        return walked.error();
    }
    if (part.end) {
        verifier.end_at(*part.end);
    }
    PartCheck out;
    out.fault = verifier.fault();
    out.rows = verifier.rows();
    out.first_prev = std::string(verifier.first_prev());
    out.first_seq = part.start;
    out.last_seq = verifier.last_seq();
    out.last_hash = verifier.last_hash();
    out.checkpoint_seen = verifier.checkpoint_seen();
    return out;
}

} // namespace

AuditResult<VerifyResult> verify_log(AuditReader& reader, const VerifyOptions& options) {
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    auto parts =
        run_parts<PartCheck>(reader, last.value(), options.pass,
                             [&options](AuditReader& own, const Part& part, RowCounter& counter) {
                                 return check_part(own, part, options.checkpoint, counter);
                             });
    if (!parts) {
        return parts.error();
    }
    // Each part took its first row's link as given: the seams are checked here, in seq
    // order, so the first fault reported is the first a single pass would find.
    VerifyResult result;
    ChainHash prev = genesis_hash;
    bool checkpoint_seen = false;
    for (const PartCheck& part : parts.value()) {
        if (!part.first_prev.empty() && part.first_prev != to_hex(prev)) {
            result.fault = ChainFault{part.first_seq, std::string(not_linked)};
            break;
        }
        result.rows += part.rows;
        checkpoint_seen = checkpoint_seen || part.checkpoint_seen;
        if (part.rows > 0) {
            prev = part.last_hash;
            result.tail.seq = part.last_seq;
        }
        if (part.fault) {
            result.fault = part.fault;
            break;
        }
    }
    result.tail.hash = to_hex(prev);
    if (!result.fault && options.checkpoint && !checkpoint_seen) {
        result.fault = ChainFault{result.tail.seq + 1, "truncated: the log ends at seq " +
                                                           std::to_string(result.tail.seq) +
                                                           " but the checkpoint holds seq " +
                                                           std::to_string(options.checkpoint->seq)};
    }
    return result;
}

AuditResult<VerifyResult> verify_file(const std::filesystem::path& path,
                                      const VerifyOptions& options) {
    auto reader = AuditReader::open(path);
    if (!reader) {
        return reader.error();
    }
    return verify_log(*reader.value(), options);
}

} // namespace flowgate::audit
