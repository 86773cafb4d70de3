// Proof documents: their JSON form and their offline check; see proof_document.hpp and
// docs/audit-store.md ("Proofs").
#include "audit/proof_document.hpp"

#include "audit/canonical.hpp"
#include "audit/request_text.hpp"
#include "audit/row_json.hpp"
#include "audit/schema.hpp"
#include "audit/signed_note.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <set>

namespace flowgate::audit {

namespace json = boost::json;
namespace outcome_v2 = boost::outcome_v2;

namespace {

constexpr std::string_view inclusion_kind = "inclusion";
constexpr std::string_view consistency_kind = "consistency";
constexpr std::string_view subject_kind = "subject";

std::string base64_of(const TreeHash& hash) {
    return base64_encode(std::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
}

json::array base64_list(const std::vector<TreeHash>& hashes) {
    json::array out;
    out.reserve(hashes.size());
    for (const TreeHash& hash : hashes) {
        out.emplace_back(base64_of(hash));
    }
    return out;
}

// The members of a row proof, into `out` (an inclusion document's, or a subject
// document's record).
void put_row_proof(const RowProof& proof, json::object& out) {
    out["schema_version"] = proof.schema_version;
    out["row"] = row_json(view_of(proof.row), proof.schema_version);
    out["leaf_index"] = proof.leaf_index;
    out["leaf_hash"] = base64_of(proof.leaf_hash);
    out["inclusion_path"] = base64_list(proof.inclusion_path);
}

json::object to_json(const InclusionDocument& document) {
    json::object out{{"proof", inclusion_kind}};
    put_row_proof(document.proof, out);
    out["tree_size"] = document.tree_size;
    out["checkpoint"] = document.checkpoint;
    return out;
}

json::object to_json(const ConsistencyDocument& document) {
    return json::object{{"proof", consistency_kind},
                        {"old_size", document.old_size},
                        {"old_root", base64_of(document.old_root)},
                        {"new_size", document.new_size},
                        {"new_root", base64_of(document.new_root)},
                        {"consistency_path", base64_list(document.consistency_path)},
                        {"old_checkpoint", document.old_checkpoint},
                        {"new_checkpoint", document.new_checkpoint}};
}

json::object to_json(const SubjectDocument& document) {
    json::array records;
    for (const RowProof& proof : document.records) {
        json::object record;
        put_row_proof(proof, record);
        records.push_back(std::move(record));
    }
    return json::object{{"proof", subject_kind},
                        {"subject", document.subject},
                        {"tree_size", document.tree_size},
                        {"checkpoint", document.checkpoint},
                        {"records", std::move(records)}};
}

ProofError invalid(std::string message) {
    return {ProofErrc::invalid, std::move(message)};
}

// Reads the members of one JSON object, each at most once; the first fault is kept, named
// with the object's place in the document ("records[2].leaf_hash ...").
class Members {
public:
    Members(const json::object& object, std::string where)
        : m_object(object), m_where(std::move(where)) {}

    const json::value* take(std::string_view key) {
        m_taken.insert(std::string(key));
        const json::value* value = m_object.if_contains(key);
        if (value == nullptr) {
            fail(std::string(key), "is missing");
        }
        return value;
    }
    void size(std::string_view key, std::uint64_t& out) {
        const json::value* value = take(key);
        if (value != nullptr && value->is_uint64()) {
            out = value->get_uint64();
        } else if (value != nullptr && value->is_int64() && value->get_int64() >= 0) {
            out = static_cast<std::uint64_t>(value->get_int64());
        } else if (value != nullptr) {
            fail(std::string(key), "is not a non-negative integer");
        }
    }
    void text(std::string_view key, std::string& out) {
        const json::value* value = take(key);
        if (value != nullptr && value->is_string()) {
            out = value->get_string();
        } else if (value != nullptr) {
            fail(std::string(key), "is not a string");
        }
    }
    void hash(std::string_view key, TreeHash& out) {
        const json::value* value = take(key);
        if (value != nullptr && !decode(*value, out)) {
            fail(std::string(key), "is not the base64 of 32 bytes");
        }
    }
    void hashes(std::string_view key, std::vector<TreeHash>& out) {
        const json::value* value = take(key);
        if (value == nullptr) {
            return;
        }
        if (!value->is_array()) {
            fail(std::string(key), "is not an array");
            return;
        }
        const json::array& list = value->get_array();
        out.resize(list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (!decode(list[i], out[i])) {
                fail(std::string(key) + "[" + std::to_string(i) + "]",
                     "is not the base64 of 32 bytes");
                return;
            }
        }
    }
    const json::object* object(std::string_view key) {
        const json::value* value = take(key);
        if (value != nullptr && !value->is_object()) {
            fail(std::string(key), "is not an object");
            return nullptr;
        }
        return value == nullptr ? nullptr : &value->get_object();
    }
    const json::array* array(std::string_view key) {
        const json::value* value = take(key);
        if (value != nullptr && !value->is_array()) {
            fail(std::string(key), "is not an array");
            return nullptr;
        }
        return value == nullptr ? nullptr : &value->get_array();
    }
    // The place of a member, for a fault found in it by someone else.
    std::string place(std::string_view key) const { return m_where + std::string(key); }
    void fail_with(std::string message) {
        if (m_failure.empty()) {
            m_failure = std::move(message);
        }
    }
    // The first fault, or one for a member the form does not have.
    ProofResult<void> finish() {
        for (const auto& member : m_object) {
            if (m_failure.empty() && !m_taken.contains(std::string(member.key()))) {
                fail(std::string(member.key()), "is not a member of this document");
            }
        }
        if (!m_failure.empty()) {
            return invalid(m_failure);
        }
        return outcome_v2::success();
    }

private:
    static bool decode(const json::value& value, TreeHash& out) {
        if (!value.is_string()) {
            return false;
        }
        const std::optional<std::string> bytes = base64_decode(value.get_string());
        if (!bytes || bytes->size() != out.size()) {
            return false;
        }
        std::copy(bytes->begin(), bytes->end(), out.begin());
        return true;
    }
    void fail(const std::string& key, std::string_view why) {
        fail_with(m_where + key + " " + std::string(why));
    }

    const json::object& m_object;
    std::string m_where;
    std::set<std::string> m_taken;
    std::string m_failure;
};

void read_row_proof(Members& members, RowProof& proof) {
    const json::value* version = members.take("schema_version");
    if (version != nullptr && version->is_int64() && version->get_int64() >= 1 &&
        version->get_int64() <= schema_version) {
        proof.schema_version = static_cast<int>(version->get_int64());
    } else if (version != nullptr) {
        members.fail_with(members.place("schema_version") + " is not a schema version of " +
                          "this flowgate (1 to " + std::to_string(schema_version) + ")");
    }
    const json::object* row = members.object("row");
    if (row != nullptr && proof.schema_version != 0) {
        auto parsed = row_from_json(*row, proof.schema_version);
        if (parsed) {
            proof.row = std::move(parsed).value();
        } else {
            members.fail_with(members.place("row") + ": " + parsed.error());
        }
    }
    members.size("leaf_index", proof.leaf_index);
    members.hash("leaf_hash", proof.leaf_hash);
    members.hashes("inclusion_path", proof.inclusion_path);
}

ProofResult<ProofDocument> read_document(const json::object& object, std::string_view kind) {
    Members members(object, "");
    members.take("proof");
    if (kind == inclusion_kind) {
        InclusionDocument document;
        read_row_proof(members, document.proof);
        members.size("tree_size", document.tree_size);
        members.text("checkpoint", document.checkpoint);
        if (auto done = members.finish(); !done) {
            return done.error();
        }
        return ProofDocument(std::move(document));
    }
    if (kind == consistency_kind) {
        ConsistencyDocument document;
        members.size("old_size", document.old_size);
        members.hash("old_root", document.old_root);
        members.size("new_size", document.new_size);
        members.hash("new_root", document.new_root);
        members.hashes("consistency_path", document.consistency_path);
        members.text("old_checkpoint", document.old_checkpoint);
        members.text("new_checkpoint", document.new_checkpoint);
        if (auto done = members.finish(); !done) {
            return done.error();
        }
        return ProofDocument(std::move(document));
    }
    SubjectDocument document;
    members.text("subject", document.subject);
    members.size("tree_size", document.tree_size);
    members.text("checkpoint", document.checkpoint);
    if (const json::array* records = members.array("records")) {
        document.records.resize(records->size());
        for (std::size_t i = 0; i < records->size(); ++i) {
            const std::string where = "records[" + std::to_string(i) + "]";
            if (!(*records)[i].is_object()) {
                members.fail_with(where + " is not an object");
                break;
            }
            Members record((*records)[i].get_object(), where + ".");
            read_row_proof(record, document.records[i]);
            if (auto done = record.finish(); !done) {
                members.fail_with(done.error().message);
                break;
            }
        }
    }
    if (auto done = members.finish(); !done) {
        return done.error();
    }
    return ProofDocument(std::move(document));
}

// The checkpoint of a signed note, its signature by `key` verified.
ProofResult<TreeCheckpoint> open_checkpoint(std::string_view note, const VerifierKey& key,
                                            std::string_view which) {
    auto opened = open_note(note, std::span<const VerifierKey>(&key, 1));
    if (!opened) {
        return invalid(std::string(which) + ": " + opened.error().message);
    }
    auto checkpoint = parse_tree_checkpoint(opened.value().text);
    if (!checkpoint) {
        return invalid(std::string(which) + ": " + checkpoint.error().message);
    }
    return std::move(checkpoint).value();
}

ProofResult<void> check_row_proof(const RowProof& proof, const TreeCheckpoint& checkpoint,
                                  const std::string& where) {
    if (proof.row.seq == 0 || proof.leaf_index != proof.row.seq - 1) {
        return invalid(where + "leaf_index " + std::to_string(proof.leaf_index) +
                       " is not the row's seq (" + std::to_string(proof.row.seq) + ") less one");
    }
    if (leaf_hash(canonical_row_bytes(view_of(proof.row), proof.schema_version)) !=
        proof.leaf_hash) {
        return invalid(where + "the row does not hash to leaf_hash: the row or its leaf "
                               "hash was altered");
    }
    const ProofCheck included = verify_inclusion(proof.leaf_index, checkpoint.size, proof.leaf_hash,
                                                 proof.inclusion_path, checkpoint.root);
    if (!included) {
        return invalid(where +
                       "the inclusion path does not lead from the leaf to the checkpoint's "
                       "root: " +
                       std::string(included.reason));
    }
    return outcome_v2::success();
}

ProofResult<void> check_size(std::string_view member, std::uint64_t size,
                             const TreeCheckpoint& checkpoint, std::string_view which) {
    if (size != checkpoint.size) {
        return invalid(std::string(member) + " " + std::to_string(size) + " is not the " +
                       std::string(which) + "'s tree size " + std::to_string(checkpoint.size));
    }
    return outcome_v2::success();
}

// The document's `checkpoint`, signed by `key`, of the document's `tree_size`.
ProofResult<TreeCheckpoint> open_sized_checkpoint(std::string_view note, std::uint64_t tree_size,
                                                  const VerifierKey& key) {
    auto checkpoint = open_checkpoint(note, key, "checkpoint");
    if (!checkpoint) {
        return checkpoint.error();
    }
    if (auto sized = check_size("tree_size", tree_size, checkpoint.value(), "checkpoint"); !sized) {
        return sized.error();
    }
    return checkpoint;
}

ProofResult<VerifiedProof> verify(const InclusionDocument& document, const VerifierKey& key) {
    auto checkpoint = open_sized_checkpoint(document.checkpoint, document.tree_size, key);
    if (!checkpoint) {
        return checkpoint.error();
    }
    if (auto checked = check_row_proof(document.proof, checkpoint.value(), ""); !checked) {
        return checked.error();
    }
    return VerifiedProof{std::string(inclusion_kind),
                         std::move(checkpoint).value(),
                         key.name,
                         0,
                         {document.proof.row.seq}};
}

ProofResult<VerifiedProof> verify(const SubjectDocument& document, const VerifierKey& key) {
    auto checkpoint = open_sized_checkpoint(document.checkpoint, document.tree_size, key);
    if (!checkpoint) {
        return checkpoint.error();
    }
    VerifiedProof verified{
        std::string(subject_kind), std::move(checkpoint).value(), key.name, 0, {}};
    for (std::size_t i = 0; i < document.records.size(); ++i) {
        const RowProof& proof = document.records[i];
        const std::string where = "records[" + std::to_string(i) + "]: ";
        if (proof.row.subject != document.subject) {
            return invalid(where + "the row is about '" + proof.row.subject + "', not '" +
                           document.subject + "'");
        }
        if (std::find(verified.seqs.begin(), verified.seqs.end(), proof.row.seq) !=
            verified.seqs.end()) {
            return invalid(where + "seq " + std::to_string(proof.row.seq) + " is there twice");
        }
        if (auto checked = check_row_proof(proof, verified.checkpoint, where); !checked) {
            return checked.error();
        }
        verified.seqs.push_back(proof.row.seq);
    }
    return verified;
}

ProofResult<VerifiedProof> verify(const ConsistencyDocument& document, const VerifierKey& key) {
    auto old_checkpoint = open_checkpoint(document.old_checkpoint, key, "old_checkpoint");
    if (!old_checkpoint) {
        return old_checkpoint.error();
    }
    auto new_checkpoint = open_checkpoint(document.new_checkpoint, key, "new_checkpoint");
    if (!new_checkpoint) {
        return new_checkpoint.error();
    }
    const TreeCheckpoint& old_tree = old_checkpoint.value();
    const TreeCheckpoint& new_tree = new_checkpoint.value();
    if (old_tree.origin != new_tree.origin) {
        return invalid("the checkpoints are of two logs, '" + old_tree.origin + "' and '" +
                       new_tree.origin + "'");
    }
    for (auto sized : {check_size("old_size", document.old_size, old_tree, "old_checkpoint"),
                       check_size("new_size", document.new_size, new_tree, "new_checkpoint")}) {
        if (!sized) {
            return sized.error();
        }
    }
    if (document.old_root != old_tree.root) {
        return invalid("old_root is not old_checkpoint's root");
    }
    if (document.new_root != new_tree.root) {
        return invalid("new_root is not new_checkpoint's root");
    }
    if (document.old_size > document.new_size) {
        return invalid("old_size " + std::to_string(document.old_size) + " is past new_size " +
                       std::to_string(document.new_size));
    }
    // RFC 9162 proves consistency from a non-empty tree; every log extends the empty one.
    const ProofCheck consistent =
        document.old_size == 0
            ? ProofCheck{document.consistency_path.empty() && old_tree.root == empty_tree_root(),
                         "the tree of size 0 has the empty tree's root and an empty path"}
            : verify_consistency(document.old_size, document.new_size, old_tree.root, new_tree.root,
                                 document.consistency_path);
    if (!consistent) {
        return invalid("the consistency path does not lead from the old root to the new: " +
                       std::string(consistent.reason));
    }
    return VerifiedProof{std::string(consistency_kind), new_tree, key.name, old_tree.size, {}};
}

} // namespace

std::string base64_of(const TreeHash& hash) {
    return base64_encode(std::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
}

RowProof row_proof(const AuditRowView& row, int version, std::vector<TreeHash> inclusion_path) {
    RowProof proof;
    proof.schema_version = version;
    proof.row = record_of(row);
    proof.row.prev_hash.clear();
    proof.leaf_index = row.seq - 1;
    proof.leaf_hash = leaf_hash(canonical_row_bytes(row, version));
    proof.inclusion_path = std::move(inclusion_path);
    return proof;
}

std::string format_proof_document(const ProofDocument& document) {
    return json::serialize(std::visit([](const auto& d) { return to_json(d); }, document)) + "\n";
}

ProofResult<ProofDocument> parse_proof_document(std::string_view text) {
    boost::system::error_code error;
    const json::value value = json::parse(text, error);
    if (error) {
        return ProofError{ProofErrc::not_a_document, "not JSON: " + error.message()};
    }
    const json::object* object = value.if_object();
    const json::value* kind = object == nullptr ? nullptr : object->if_contains("proof");
    if (kind == nullptr || !kind->is_string() ||
        (kind->get_string() != inclusion_kind && kind->get_string() != consistency_kind &&
         kind->get_string() != subject_kind)) {
        return ProofError{ProofErrc::not_a_document,
                          "not a proof document: an object whose \"proof\" is \"inclusion\", "
                          "\"consistency\" or \"subject\""};
    }
    return read_document(*object, kind->get_string());
}

ProofResult<VerifiedProof> verify_proof_document(const ProofDocument& document,
                                                 const VerifierKey& key) {
    return std::visit([&key](const auto& d) { return verify(d, key); }, document);
}

} // namespace flowgate::audit
