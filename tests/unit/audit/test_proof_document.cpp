// Proof documents (audit/proof_document.hpp) over rows a real store wrote, their tree
// held in memory (MemoryNodeSource) and their checkpoints signed here: each proof
// verifies through its JSON form, each altered copy fails naming the check that caught
// it, and an independent verifier written in Python (proof_check.py, and the short one
// docs/audit-store.md gives auditors) agrees on both.
#include "audit/proof_document.hpp"
#include "audit/request_text.hpp"
#include "audit/row_json.hpp"
#include "audit/signed_note.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace flowgate::audit;
using namespace flowgate::audit::testing;
namespace json = boost::json;

namespace {

constexpr std::string_view origin = "flowgate.test/kenpo-host-1";

SigningKey generated(std::string_view name) {
    auto key = generate_signing_key(name);
    REQUIRE(key);
    return key.value();
}

// The rows a store wrote, read back as an auditor reads them, and their leaf hashes.
struct Log {
    std::vector<AuditRecord> rows;
    int version = 0;
    std::vector<TreeHash> leaves;
};

Log written_log(const fs::path& db, const std::vector<AuditRecord>& records) {
    {
        auto store = new_store(db);
        for (const AuditRecord& record : records) {
            appended(*store, record);
        }
    }
    Log log;
    log.rows = rows_of(db);
    log.version = reader_of(db)->schema_version();
    for (const AuditRecord& row : log.rows) {
        log.leaves.push_back(leaf_hash(canonical_row_bytes(view_of(row), log.version)));
    }
    return log;
}

Log written_log(const fs::path& db, int rows) {
    std::vector<AuditRecord> records;
    for (int n = 1; n <= rows; ++n) {
        records.push_back(check_record(n, n % 3 == 0 ? AuditDecision::deny : AuditDecision::allow));
    }
    return written_log(db, records);
}

TreeHash root_of(const Log& log, std::uint64_t size) {
    MemoryNodeSource source({log.leaves.begin(), log.leaves.begin() + static_cast<long>(size)});
    auto root = root_from_source(size, source);
    REQUIRE(root);
    return root.value();
}

std::string signed_checkpoint(const TreeHash& root, std::uint64_t size, const SigningKey& key,
                              std::string_view log_origin = origin) {
    auto body = format_tree_checkpoint({std::string(log_origin), size, root, {}});
    REQUIRE(body);
    auto note = sign_note(body.value(), key);
    REQUIRE(note);
    return note.value();
}

std::string signed_checkpoint(const Log& log, std::uint64_t size, const SigningKey& key) {
    return signed_checkpoint(root_of(log, size), size, key);
}

RowProof proof_of(const Log& log, std::uint64_t seq, std::uint64_t size) {
    MemoryNodeSource source({log.leaves.begin(), log.leaves.begin() + static_cast<long>(size)});
    auto path = inclusion_proof(seq - 1, size, source);
    REQUIRE(path);
    return row_proof(view_of(log.rows.at(seq - 1)), log.version, std::move(path).value());
}

InclusionDocument inclusion(const Log& log, std::uint64_t seq, std::uint64_t size,
                            const SigningKey& key) {
    return {proof_of(log, seq, size), size, signed_checkpoint(log, size, key)};
}

ConsistencyDocument consistency(const Log& log, std::uint64_t old_size, std::uint64_t new_size,
                                const SigningKey& key) {
    std::vector<TreeHash> path;
    if (old_size > 0) {
        MemoryNodeSource source(
            {log.leaves.begin(), log.leaves.begin() + static_cast<long>(new_size)});
        auto proof = consistency_proof(old_size, new_size, source);
        REQUIRE(proof);
        path = std::move(proof).value();
    }
    return {old_size,
            root_of(log, old_size),
            new_size,
            root_of(log, new_size),
            std::move(path),
            signed_checkpoint(log, old_size, key),
            signed_checkpoint(log, new_size, key)};
}

// "" for a valid document, else why not ("not a document: ..." for one that is none).
std::string verdict(const std::string& text, const VerifierKey& key) {
    auto document = parse_proof_document(text);
    if (!document) {
        return (document.error().code == ProofErrc::not_a_document ? "not a document: " : "") +
               document.error().message;
    }
    auto verified = verify_proof_document(document.value(), key);
    return verified ? "" : verified.error().message;
}

json::object object_of(const ProofDocument& document) {
    return json::parse(format_proof_document(document)).as_object();
}

std::string flipped_base64(std::string_view text, std::size_t bit) {
    std::string bytes = base64_decode(text).value();
    bytes[bit / 8 % bytes.size()] ^= static_cast<char>(1U << (bit % 8));
    return base64_encode(bytes);
}

// The note with one bit of its (last) signature flipped, past the key ID.
std::string with_flipped_signature(const std::string& note) {
    const std::size_t at = note.rfind(' ') + 1;
    return note.substr(0, at) + flipped_base64(note.substr(at, note.size() - at - 1), 100) + "\n";
}

std::string with_body_line(const std::string& note, std::size_t line, const std::string& text) {
    std::size_t begin = 0;
    for (std::size_t i = 0; i < line; ++i) {
        begin = note.find('\n', begin) + 1;
    }
    return note.substr(0, begin) + text + note.substr(note.find('\n', begin));
}

struct Altered {
    std::string what;     // the alteration
    std::string text;     // the altered document
    std::string expected; // what the verdict starts with
};

// Copies of the inclusion document of seq 5 in the tree of 13, each altered once, and
// the start of the failure each must give. `other` is a key that is not the log's.
std::vector<Altered> altered_inclusions(const Log& log, const SigningKey& key,
                                        const SigningKey& other) {
    const InclusionDocument document = inclusion(log, 5, 13, key);
    const json::object good = object_of(document);
    std::vector<Altered> out;
    auto add = [&out, &good](std::string what, const std::function<void(json::object&)>& change,
                             std::string expected) {
        json::object copy = good;
        change(copy);
        out.push_back({std::move(what), json::serialize(copy), std::move(expected)});
    };
    const std::string off_path = "the inclusion path does not lead from the leaf to the "
                                 "checkpoint's root";
    const std::string bad_signature = "checkpoint: the signature by " + std::string(origin) + "+" +
                                      key_id_hex(key.id()) + " does not verify";
    for (std::size_t i = 0; i < document.proof.inclusion_path.size(); ++i) {
        add(
            "a bit flipped in path element " + std::to_string(i),
            [i](json::object& d) {
                json::value& element = d["inclusion_path"].as_array()[i];
                element = flipped_base64(element.as_string(), 37 * i + 5);
            },
            off_path);
    }
    add(
        "the size in the document", [](json::object& d) { d["tree_size"] = 14; },
        "tree_size 14 is not the checkpoint's tree size 13");
    add(
        "the size in the checkpoint",
        [](json::object& d) {
            d["checkpoint"] = with_body_line(std::string(d["checkpoint"].as_string()), 1, "14");
        },
        bad_signature);
    add(
        "the root in the checkpoint",
        [&log](json::object& d) {
            TreeHash root = root_of(log, 13);
            root[31] ^= 1U;
            d["checkpoint"] = with_body_line(
                std::string(d["checkpoint"].as_string()), 2,
                base64_encode(std::string_view(reinterpret_cast<const char*>(root.data()), 32)));
        },
        bad_signature);
    add(
        "the root in a checkpoint signed again by the log's key",
        [&log, &key](json::object& d) {
            TreeHash root = root_of(log, 13);
            root[0] ^= 0x80U;
            d["checkpoint"] = signed_checkpoint(root, 13, key);
        },
        off_path);
    add(
        "the size of a checkpoint signed again by the log's key",
        [&log, &key](json::object& d) {
            d["checkpoint"] = signed_checkpoint(root_of(log, 12), 12, key);
            d["tree_size"] = 12;
        },
        off_path);
    add(
        "the checkpoint's signature",
        [](json::object& d) {
            d["checkpoint"] = with_flipped_signature(std::string(d["checkpoint"].as_string()));
        },
        bad_signature);
    add(
        "the checkpoint signed by another key",
        [&log, &other](json::object& d) {
            d["checkpoint"] = signed_checkpoint(root_of(log, 13), 13, other);
        },
        "checkpoint: the note is signed by none of the keys given");
    add(
        "the checkpoint without its signature",
        [](json::object& d) {
            const std::string note(d["checkpoint"].as_string());
            d["checkpoint"] = note.substr(0, note.find("\n\n") + 1);
        },
        "checkpoint: no blank line");
    add(
        "the row's decision", [](json::object& d) { d["row"].as_object()["decision"] = "deny"; },
        "the row does not hash to leaf_hash");
    add(
        "the row's time, by a microsecond",
        [](json::object& d) {
            json::value& time = d["row"].as_object()["time"];
            const std::int64_t us = parse_time(time.as_string()).value() + 1;
            time = iso_time(us);
        },
        "the row does not hash to leaf_hash");
    add(
        "the row's subject, with its leaf hash made again",
        [&log](json::object& d) {
            AuditRecord row = log.rows[4];
            row.subject = "p-6";
            d["row"].as_object()["subject"] = "p-6";
            const TreeHash leaf = leaf_hash(canonical_row_bytes(view_of(row), log.version));
            d["leaf_hash"] = base64_encode(
                std::string_view(reinterpret_cast<const char*>(leaf.data()), leaf.size()));
        },
        off_path);
    add(
        "the leaf hash",
        [](json::object& d) { d["leaf_hash"] = flipped_base64(d["leaf_hash"].as_string(), 9); },
        "the row does not hash to leaf_hash");
    add(
        "the leaf index", [](json::object& d) { d["leaf_index"] = 5; },
        "leaf_index 5 is not the row's seq (5) less one");
    add(
        "another row's seq and leaf index",
        [](json::object& d) {
            d["row"].as_object()["seq"] = 6;
            d["leaf_index"] = 5;
        },
        "the row does not hash to leaf_hash");
    return out;
}

// The consistency document from 4 to 11 rows, altered once each.
std::vector<Altered> altered_consistencies(const Log& log, const SigningKey& key) {
    const ConsistencyDocument document = consistency(log, 4, 11, key);
    const json::object good = object_of(document);
    std::vector<Altered> out;
    auto add = [&out, &good](std::string what, const std::function<void(json::object&)>& change,
                             std::string expected) {
        json::object copy = good;
        change(copy);
        out.push_back({std::move(what), json::serialize(copy), std::move(expected)});
    };
    for (std::size_t i = 0; i < document.consistency_path.size(); ++i) {
        add(
            "a bit flipped in path element " + std::to_string(i),
            [i](json::object& d) {
                json::value& element = d["consistency_path"].as_array()[i];
                element = flipped_base64(element.as_string(), 29 * i + 11);
            },
            "the consistency path does not lead from the old root to the new");
    }
    add(
        "the old root",
        [](json::object& d) { d["old_root"] = flipped_base64(d["old_root"].as_string(), 3); },
        "old_root is not old_checkpoint's root");
    add(
        "the new size", [](json::object& d) { d["new_size"] = 12; },
        "new_size 12 is not the new_checkpoint's tree size 11");
    add(
        "the new checkpoint's signature",
        [](json::object& d) {
            d["new_checkpoint"] =
                with_flipped_signature(std::string(d["new_checkpoint"].as_string()));
        },
        "new_checkpoint: the signature by");
    add(
        "a new checkpoint, signed again by the log's key, of a root the old one does not lead to",
        [&log, &key](json::object& d) {
            TreeHash root = root_of(log, 11);
            root[7] ^= 4U;
            d["new_checkpoint"] = signed_checkpoint(root, 11, key);
            d["new_root"] = base64_encode(
                std::string_view(reinterpret_cast<const char*>(root.data()), root.size()));
        },
        "the consistency path does not lead from the old root to the new");
    add(
        "a new checkpoint of another log",
        [&log, &key](json::object& d) {
            d["new_checkpoint"] = signed_checkpoint(root_of(log, 11), 11, key, "elsewhere/log");
        },
        "the checkpoints are of two logs");
    add(
        "the two checkpoints swapped",
        [](json::object& d) {
            std::swap(d["old_checkpoint"], d["new_checkpoint"]);
            std::swap(d["old_root"], d["new_root"]);
            std::swap(d["old_size"], d["new_size"]);
        },
        "old_size 11 is past new_size 4");
    return out;
}

void write_file(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

} // namespace

TEST_CASE("proof documents: every row's inclusion proof in every tree up to a store's size "
          "verifies through its JSON form",
          "[audit][proof]") {
    TempDir dir("flowgate-proof");
    const Log log = written_log(dir.path() / "audit.db", 13);
    const SigningKey key = generated(origin);
    for (std::uint64_t size = 1; size <= 13; ++size) {
        for (std::uint64_t seq = 1; seq <= size; ++seq) {
            INFO("seq " << seq << " in the tree of " << size);
            const std::string text = format_proof_document(inclusion(log, seq, size, key));
            auto document = parse_proof_document(text);
            REQUIRE(document);
            CHECK(format_proof_document(document.value()) == text);
            auto verified = verify_proof_document(document.value(), key.verifier());
            REQUIRE(verified);
            CHECK(verified.value().seqs == std::vector<std::uint64_t>{seq});
            CHECK(verified.value().checkpoint.size == size);
            CHECK(verified.value().checkpoint.origin == origin);
        }
    }
    SECTION("the document holds the row as `flowgate audit export --all` prints it") {
        const json::object document = object_of(inclusion(log, 3, 13, key));
        CHECK(document.at("row").as_object() == row_json(view_of(log.rows[2])));
        CHECK(document.at("row").as_object().at("subject") == "p-3");
        CHECK(document.at("leaf_index") == 2);
        CHECK(document.at("schema_version") == log.version);
    }
}

TEST_CASE("proof documents: an altered inclusion proof fails, naming the check", "[audit][proof]") {
    TempDir dir("flowgate-proof");
    const Log log = written_log(dir.path() / "audit.db", 13);
    const SigningKey key = generated(origin);
    const SigningKey other = generated("someone.else/log");
    for (const Altered& altered : altered_inclusions(log, key, other)) {
        INFO(altered.what << ": " << altered.text);
        CHECK_THAT(verdict(altered.text, key.verifier()), Catch::StartsWith(altered.expected));
    }
    SECTION("and a document not of the form is refused, naming what is wrong") {
        json::object good = object_of(inclusion(log, 5, 13, key));
        const std::vector<std::pair<std::function<void(json::object&)>, std::string>> changes = {
            {[](json::object& d) { d["note"] = "x"; }, "note is not a member of this document"},
            {[](json::object& d) { d.erase("leaf_hash"); }, "leaf_hash is missing"},
            {[](json::object& d) { d["leaf_hash"] = "AAAA"; },
             "leaf_hash is not the base64 of 32 bytes"},
            {[](json::object& d) { d["inclusion_path"].as_array()[1] = 7; },
             "inclusion_path[1] is not the base64 of 32 bytes"},
            {[](json::object& d) { d["row"].as_object().erase("subject"); },
             "row: the row has no subject"},
            {[](json::object& d) { d["row"].as_object()["time"] = "2024-05-01T09:30:00Z"; },
             "row: time is not a UTC time"},
            {[](json::object& d) { d["schema_version"] = 99; },
             "schema_version is not a schema version of this flowgate"},
            {[](json::object& d) { d["proof"] = "receipt"; }, "not a document: "},
        };
        for (const auto& [change, expected] : changes) {
            json::object copy = good;
            change(copy);
            INFO(json::serialize(copy));
            CHECK_THAT(verdict(json::serialize(copy), key.verifier()), Catch::StartsWith(expected));
        }
        CHECK_THAT(verdict("{\"proof\": \"inclusion\"", key.verifier()),
                   Catch::StartsWith("not a document: not JSON"));
    }
}

TEST_CASE("proof documents: consistency proofs between every two checkpoints of a store "
          "verify, and altered ones fail naming the check",
          "[audit][proof]") {
    TempDir dir("flowgate-proof");
    const Log log = written_log(dir.path() / "audit.db", 13);
    const SigningKey key = generated(origin);
    for (std::uint64_t new_size = 0; new_size <= 13; ++new_size) {
        for (std::uint64_t old_size = 0; old_size <= new_size; ++old_size) {
            INFO(old_size << " to " << new_size);
            const std::string text =
                format_proof_document(consistency(log, old_size, new_size, key));
            CHECK(verdict(text, key.verifier()).empty());
        }
    }
    for (const Altered& altered : altered_consistencies(log, key)) {
        INFO(altered.what << ": " << altered.text);
        CHECK_THAT(verdict(altered.text, key.verifier()), Catch::StartsWith(altered.expected));
    }
}

TEST_CASE("proof documents: a person's rows are each proved against one checkpoint, and one "
          "about someone else or altered fails",
          "[audit][proof]") {
    TempDir dir("flowgate-proof");
    std::vector<AuditRecord> records;
    for (int n = 1; n <= 9; ++n) {
        records.push_back(check_record(n));
        records.back().subject = n % 3 == 1 ? "p-1" : "p-" + std::to_string(n);
    }
    const Log log = written_log(dir.path() / "audit.db", records);
    const SigningKey key = generated(origin);
    SubjectDocument document{"p-1", 9, signed_checkpoint(log, 9, key), {}};
    for (std::uint64_t seq : {1, 4, 7}) {
        document.records.push_back(proof_of(log, seq, 9));
    }
    auto verified = verify_proof_document(document, key.verifier());
    REQUIRE(verified);
    CHECK(verified.value().seqs == std::vector<std::uint64_t>{1, 4, 7});
    CHECK(verdict(format_proof_document(document), key.verifier()).empty());

    SubjectDocument other = document;
    other.records[1] = proof_of(log, 5, 9);
    CHECK(verdict(format_proof_document(other), key.verifier()) ==
          "records[1]: the row is about 'p-5', not 'p-1'");
    other = document;
    other.records.push_back(document.records[0]);
    CHECK(verdict(format_proof_document(other), key.verifier()) ==
          "records[3]: seq 1 is there twice");
    other = document;
    other.records[2].inclusion_path[0][3] ^= 1U;
    CHECK_THAT(verdict(format_proof_document(other), key.verifier()),
               Catch::StartsWith("records[2]: the inclusion path does not lead"));
    other = document;
    other.records[2].row.decision = "deny";
    CHECK_THAT(verdict(format_proof_document(other), key.verifier()),
               Catch::StartsWith("records[2]: the row does not hash to leaf_hash"));
}

TEST_CASE("proof documents: an independent verifier in Python accepts what flowgate proves and "
          "refuses it altered",
          "[audit][proof]") {
    INFO("python3 with the cryptography module is needed (scripts/install-deps.sh installs "
         "python3-cryptography)");
    REQUIRE(shell_run(python3() + " -c 'import cryptography'").status == 0);
    TempDir dir("flowgate-proof");
    std::vector<AuditRecord> records;
    for (int n = 1; n <= 13; ++n) {
        records.push_back(check_record(n));
    }
    records[1].subject = records[6].subject = "p-2";
    const Log log = written_log(dir.path() / "audit.db", records);
    const SigningKey key = generated(origin);
    write_file(dir.path() / "vkey", format_verifier_key(key.verifier()) + "\n");
    // Each document in a file of its own: the full checker reads them all in one run.
    std::vector<std::string> files;
    auto file_of = [&](const std::string& text) {
        files.push_back(
            (dir.path() / ("proof-" + std::to_string(files.size()) + ".json")).string());
        write_file(files.back(), text);
        return files.back();
    };
    auto run_checker = [&](const std::string& script, const std::vector<std::string>& paths) {
        std::string command = python3() + " " + shell_quote(script) + " " +
                              shell_quote((dir.path() / "vkey").string());
        for (const std::string& path : paths) {
            command += " " + shell_quote(path);
        }
        return shell_run(command);
    };

    // The short verifier docs/audit-store.md gives auditors, as it is there.
    std::ifstream doc(FLOWGATE_SOURCE_DIR "/docs/audit-store.md");
    std::string line;
    while (std::getline(doc, line) && line != "### Checking a proof without flowgate") {
    }
    while (std::getline(doc, line) && line != "```python") {
    }
    std::string short_script;
    while (std::getline(doc, line) && line != "```") {
        short_script += line + "\n";
    }
    REQUIRE_THAT(short_script, Catch::Contains("Ed25519PublicKey"));
    write_file(dir.path() / "doc_check.py", short_script);
    const std::string short_checker = (dir.path() / "doc_check.py").string();
    const std::string checker = FLOWGATE_SOURCE_DIR "/tests/unit/audit/proof_check.py";

    std::string expected;
    for (std::uint64_t seq : {1, 5, 13}) {
        const std::string path = file_of(format_proof_document(inclusion(log, seq, 13, key)));
        const std::string proved = "ok: seq " + std::to_string(seq) + " is in " +
                                   std::string(origin) + " at tree size 13\n";
        const ShellResult brief = run_checker(short_checker, {path});
        INFO(brief.output);
        CHECK(brief.status == 0);
        CHECK(brief.output == proved);
        expected += proved;
    }
    file_of(format_proof_document(consistency(log, 4, 11, key)));
    expected += "ok: " + std::string(origin) + " at tree size 11 extends its tree of size 4\n";
    file_of(format_proof_document(SubjectDocument{
        "p-2", 13, signed_checkpoint(log, 13, key), {proof_of(log, 2, 13), proof_of(log, 7, 13)}}));
    expected += "ok: 2 rows about p-2 are in " + std::string(origin) + " at tree size 13\n";
    const ShellResult good = run_checker(checker, files);
    INFO(good.output);
    CHECK(good.status == 0);
    CHECK(good.output == expected);

    files.clear();
    std::vector<Altered> altered = altered_inclusions(log, key, generated("someone.else/log"));
    for (const Altered& inclusion_altered : altered) {
        const ShellResult refused = run_checker(short_checker, {file_of(inclusion_altered.text)});
        INFO(inclusion_altered.what << ": " << refused.output);
        CHECK(refused.status == 1);
        CHECK_THAT(refused.output, Catch::StartsWith("refused: "));
    }
    for (Altered& consistency_altered : altered_consistencies(log, key)) {
        file_of(consistency_altered.text);
        altered.push_back(std::move(consistency_altered));
    }
    SubjectDocument person{
        "p-2", 13, signed_checkpoint(log, 13, key), {proof_of(log, 2, 13), proof_of(log, 3, 13)}};
    file_of(format_proof_document(person));
    altered.push_back({"a row about someone else", "", ""});
    const ShellResult refused = run_checker(checker, files);
    CHECK(refused.status == 1);
    std::istringstream lines(refused.output);
    for (const Altered& each : altered) {
        INFO(each.what << ": " << refused.output);
        REQUIRE(std::getline(lines, line));
        CHECK_THAT(line, Catch::StartsWith("refused: "));
    }
    CHECK(line == "refused: records[1]: the row is about 'p-3', not 'p-2'");
}
