// The body of a checkpoint of the log's Merkle tree (c2sp.org/tlog-checkpoint), the text a
// signed note carries (signed_note.hpp):
//     <origin>\n<tree size, decimal>\n<base64 of the 32-byte root hash>\n[<extension>\n]...
// Named apart from verifier.hpp's Checkpoint, the chain's "seq <N> hash <hex>" line an
// auditor keeps by hand. See docs/audit-store.md.
#pragma once

#include "audit/signing_error.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::audit {

struct TreeCheckpoint {
    std::string origin;                  // the log's identity, non-empty, one line
    std::uint64_t size = 0;              // the leaves in the tree
    std::array<std::uint8_t, 32> root{}; // RFC 9162 root hash of those leaves
    std::vector<std::string> extensions; // further lines, each non-empty (not recommended)

    friend bool operator==(const TreeCheckpoint&, const TreeCheckpoint&) = default;
};

// The body, each line ending in a newline: ready for sign_note(). An empty origin or
// extension line, or one that is not a line of note text, is an error.
SigningResult<std::string> format_tree_checkpoint(const TreeCheckpoint& checkpoint);

// The checkpoint a note's text holds (OpenedNote::text): at least three lines, each
// ending in a newline; a non-empty origin (any text: the specification lets a client
// assume nothing of its form); a tree size in decimal without a leading zero (0 for an
// empty tree) that fits in 64 bits; a root hash of 32 bytes in base64; extension lines
// non-empty. Each fault is a bad_checkpoint error naming the line and what is wrong.
SigningResult<TreeCheckpoint> parse_tree_checkpoint(std::string_view body);

// A checkpoint's note on one line, as the journal carries it: each newline written \n and
// each backslash \\, so that `printf '%b'` gives the note back.
std::string note_on_one_line(std::string_view note);

// The checkpoint notes in a file an auditor keeps, in order, each as it was written (to
// be checked with open_note() and parse_tree_checkpoint()): either signed notes (or
// unsigned bodies) one after another, blank lines between them allowed — a checkpoint's
// body has no empty line, so a note ends after the signature lines that follow its one
// blank line —, or lines copied from the journal, each ending in note="<the note on one
// line>" (other lines are skipped).
std::vector<std::string> checkpoint_notes(std::string_view text);

} // namespace flowgate::audit
