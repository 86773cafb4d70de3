// The table compiler; see table_compiler.hpp. Three steps: read the CSV into cells
// that remember where they were written (so every complaint points at its cell),
// validate the lines into cases, and print the cases as policy text in the canonical
// layout of `flowgate policy fmt`.
#include "table_compiler.hpp"

#include "formatter.hpp"
#include "names.hpp"
#include "vocabulary.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace flowgate::dsl {
namespace {

// --- the legal-basis mapping -----------------------------------------------------

// The one place that says what each legal basis means for a permit; policies/README.md
// documents the same table for admins. A basis missing here is an error in the table,
// so a new ground is a deliberate change to this list, not a typo that compiles.
const std::vector<BasisConsequence>& consequence_table() {
    static const std::vector<BasisConsequence> table = {
        {"appi_18", "", {}, "use within the purpose (APPI Art. 18): internal use"},
        {"mynumber_9", "", {}, "My Number Act Art. 9: the society's own individual-number affairs"},
        {"appi_27_5_1",
         "",
         {"contract_reference"},
         "outsourcing within the purpose (APPI Art. 27(5)(i)); the contractor is supervised "
         "(Art. 25)"},
        {"appi_27_5_3", "", {"joint_use_notice"}, "joint use as published (APPI Art. 27(5)(iii))"},
        {"appi_27_1_consent",
         "consent and not objection",
         {"provision_record"},
         "third-party provision with the person's consent (APPI Art. 27(1)); Art. 29 record"},
        {"implied_consent",
         "not objection",
         {},
         "a published use relying on implied consent; an objection on file stops it"},
        {"appi_27_1_1",
         "legal_basis in [appi_27_1_1]",
         {},
         "provision under laws and regulations (APPI Art. 27(1)(i)); the caller names the "
         "ground"},
        {"mynumber_19_8",
         "",
         {"linkage_record"},
         "information linkage under My Number Act Art. 19 item 8; Art. 23 records"},
    };
    return table;
}

const BasisConsequence* find_consequence(std::string_view ground) {
    for (const BasisConsequence& c : consequence_table()) {
        if (c.ground == ground) {
            return &c;
        }
    }
    return nullptr;
}

// "a, b or c": the words of `spellings` in their order, for an "expected ..." message.
template <typename Enum, std::size_t N>
std::string alternatives(const std::array<Spelling<Enum>, N>& spellings) {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
        out += i == 0 ? "" : i + 1 == N ? " or " : ", ";
        out += spellings[i].word;
    }
    return out;
}

bool is_identifier(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    auto alpha = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    };
    auto digit = [](char c) {
        return c >= '0' && c <= '9';
    };
    if (!alpha(text.front())) {
        return false;
    }
    for (char c : text) {
        if (!alpha(c) && !digit(c)) {
            return false;
        }
    }
    return !is_keyword(text);
}

// --- CSV ------------------------------------------------------------------------

struct Cell {
    std::string value;
    std::uint32_t offset = 0; // of the cell's first character (its opening quote, if quoted)
    bool quoted = false;
};

struct Record {
    std::vector<Cell> cells;
    std::uint32_t end = 0; // offset of the record's line end
};

class CsvReader {
public:
    CsvReader(const SourceSet& sources, std::uint32_t file, Diagnostics& diagnostics)
        : m_sources(sources), m_file(file), m_text(sources.file(file).text()),
          m_diagnostics(diagnostics) {}

    std::vector<Record> read() {
        std::vector<Record> records;
        while (m_pos < m_text.size()) {
            Record record = read_record();
            if (m_stop) {
                break; // an unterminated quote swallowed the rest: nothing more to check
            }
            bool blank = record.cells.size() == 1 && !record.cells[0].quoted &&
                         record.cells[0].value.empty();
            if (!blank) {
                records.push_back(std::move(record));
            }
        }
        return records;
    }

private:
    bool at_line_end(std::size_t i) const {
        return i < m_text.size() &&
               (m_text[i] == '\n' ||
                (m_text[i] == '\r' && i + 1 < m_text.size() && m_text[i + 1] == '\n'));
    }

    void error(std::size_t offset, std::string message) {
        m_diagnostics.push_back(make_diagnostic(
            m_sources, m_file, static_cast<std::uint32_t>(offset), std::move(message)));
    }

    Record read_record() {
        Record record;
        for (;;) {
            record.cells.push_back(read_cell());
            if (m_stop) {
                record.end = static_cast<std::uint32_t>(m_pos);
                return record;
            }
            if (m_pos < m_text.size() && m_text[m_pos] == ',') {
                ++m_pos;
                continue;
            }
            record.end = static_cast<std::uint32_t>(m_pos);
            if (m_pos < m_text.size()) {
                m_pos += m_text[m_pos] == '\r' ? 2 : 1;
            }
            return record;
        }
    }

    Cell read_cell() {
        Cell cell;
        cell.offset = static_cast<std::uint32_t>(m_pos);
        if (m_pos < m_text.size() && m_text[m_pos] == '"') {
            cell.quoted = true;
            ++m_pos;
            bool closed = false;
            while (m_pos < m_text.size()) {
                char c = m_text[m_pos];
                if (c == '"') {
                    if (m_pos + 1 < m_text.size() && m_text[m_pos + 1] == '"') {
                        cell.value += '"';
                        m_pos += 2;
                        continue;
                    }
                    ++m_pos;
                    closed = true;
                    break;
                }
                // Line ends inside a field are kept as "\n" whatever the file uses.
                if (c == '\r' && m_pos + 1 < m_text.size() && m_text[m_pos + 1] == '\n') {
                    ++m_pos;
                    continue;
                }
                cell.value += c;
                ++m_pos;
            }
            if (!closed) {
                error(cell.offset, "unterminated quoted field");
                m_stop = true;
                return cell;
            }
            if (m_pos < m_text.size() && m_text[m_pos] != ',' && !at_line_end(m_pos)) {
                error(m_pos, "expected ',' or a line end after a quoted field");
                read_unquoted_rest(cell);
            }
            return cell;
        }
        read_unquoted_rest(cell);
        return cell;
    }

    void read_unquoted_rest(Cell& cell) {
        while (m_pos < m_text.size() && m_text[m_pos] != ',' && !at_line_end(m_pos)) {
            if (m_text[m_pos] == '"') {
                error(m_pos, "a quote inside an unquoted field (quote the whole field and "
                             "double the quote)");
            }
            cell.value += m_text[m_pos++];
        }
    }

    const SourceSet& m_sources;
    std::uint32_t m_file;
    const std::string& m_text;
    Diagnostics& m_diagnostics;
    std::size_t m_pos = 0;
    bool m_stop = false;
};

// --- validation -----------------------------------------------------------------

// A sheet: its header's columns by name, and the data records.
class Sheet {
public:
    Sheet(const SourceSet& sources, std::uint32_t file, Diagnostics& diagnostics)
        : m_sources(sources), m_file(file), m_diagnostics(diagnostics) {}

    // Reads the records and checks the header. False when the sheet cannot be used.
    bool load(const std::vector<std::string_view>& required) {
        m_records = CsvReader(m_sources, m_file, m_diagnostics).read();
        if (m_records.empty()) {
            m_diagnostics.push_back(
                make_diagnostic(m_sources, m_file, 0, "empty table: expected a header line"));
            return false;
        }
        const Record& header = m_records.front();
        bool ok = true;
        for (std::size_t i = 0; i < header.cells.size(); ++i) {
            const Cell& cell = header.cells[i];
            if (!m_columns.emplace(cell.value, i).second) {
                error(cell.offset, "duplicate column '" + cell.value + "'");
                ok = false;
            }
        }
        for (std::string_view name : required) {
            if (!m_columns.count(std::string(name))) {
                error(header.cells.front().offset, "missing column '" + std::string(name) + "'");
                ok = false;
            }
        }
        m_width = header.cells.size();
        return ok;
    }

    // The data records whose field count matches the header (the others get an error).
    std::vector<const Record*> records() {
        std::vector<const Record*> out;
        for (std::size_t r = 1; r < m_records.size(); ++r) {
            const Record& record = m_records[r];
            if (record.cells.size() < m_width) {
                error(record.end, "expected " + std::to_string(m_width) + " fields, found " +
                                      std::to_string(record.cells.size()));
            } else if (record.cells.size() > m_width) {
                error(record.cells[m_width].offset,
                      "more fields than the header's " + std::to_string(m_width));
            } else {
                out.push_back(&record);
            }
        }
        return out;
    }

    const Cell& cell(const Record& record, std::string_view column) const {
        return record.cells.at(m_columns.at(std::string(column)));
    }
    bool has_column(std::string_view column) const {
        return m_columns.count(std::string(column)) != 0;
    }

    void error(std::uint32_t offset, std::string message) {
        m_diagnostics.push_back(make_diagnostic(m_sources, m_file, offset, std::move(message)));
    }

    std::uint32_t line_of(std::uint32_t offset) const {
        return m_sources.file(m_file).locate(offset).line;
    }

private:
    const SourceSet& m_sources;
    std::uint32_t m_file;
    Diagnostics& m_diagnostics;
    std::vector<Record> m_records;
    std::map<std::string, std::size_t> m_columns;
    std::size_t m_width = 0;
};

// The offset of the cell's value (past an opening quote).
std::uint32_t value_offset(const Cell& cell) {
    return cell.offset + (cell.quoted ? 1 : 0);
}

// Where the next item separator (`;` or `；`) at or after `from` is, and its length;
// the end of `text` (length 0) when there is none.
std::pair<std::size_t, std::size_t> next_separator(const std::string& text, std::size_t from) {
    std::size_t ascii = text.find(';', from);
    std::size_t wide = text.find("\xEF\xBC\x9B", from);
    if (ascii == std::string::npos && wide == std::string::npos) {
        return {text.size(), 0};
    }
    return ascii < wide ? std::make_pair(ascii, std::size_t{1})
                        : std::make_pair(wide, std::size_t{3});
}

struct Case {
    int row = 0;
    std::string case_id;
    std::string purpose;
    std::string purpose_label;
    std::string activity;
    std::string label;
    std::string kind;
    std::vector<std::string> recipients;
    std::vector<std::string> data;
    std::string legal_basis;
};

struct PartyLine {
    std::string id;
    std::string type;
    std::string label;
    std::string role;
    std::vector<std::string> aliases; // the table's other words for it, as written
    std::uint32_t offset = 0;
};

// Validates table lines into cases. Every name a cell gives is folded (names.hpp), as
// a request's are: the table is edited in a spreadsheet, where full-width letters and
// stray spaces come easily. Labels are kept as written.
class TableValidator {
public:
    // `party_labels`: the parties sheet's folded labels to their identifiers.
    TableValidator(Sheet& sheet, std::map<std::string, std::string> party_labels)
        : m_sheet(sheet), m_party_labels(std::move(party_labels)) {}

    std::optional<Case> validate(const Record& record) {
        m_ok = true;
        Case c;
        c.row = row_number(m_sheet.cell(record, "row"));
        c.case_id = case_id(m_sheet.cell(record, "case"));
        c.purpose = identifier(m_sheet.cell(record, "purpose"), "purpose");
        c.purpose_label = label(m_sheet.cell(record, "purpose_label"), "purpose_label");
        c.activity = identifier(m_sheet.cell(record, "activity"), "activity");
        c.label = label(m_sheet.cell(record, "label"), "label");
        c.kind = kind(m_sheet.cell(record, "kind"));
        c.recipients = identifier_list(m_sheet.cell(record, "recipients"), "recipients");
        c.data = identifier_list(m_sheet.cell(record, "data"), "data");
        c.legal_basis = legal_basis(m_sheet.cell(record, "legal_basis"));
        if (!m_ok) {
            return std::nullopt;
        }
        check_unique(record, c);
        if (!m_ok) {
            return std::nullopt;
        }
        return c;
    }

private:
    bool require(const Cell& cell, std::string_view column) {
        if (cell.value.find_first_not_of(" \t") == std::string::npos) {
            fail(cell.offset, "empty " + std::string(column));
            return false;
        }
        return true;
    }

    void fail(std::uint32_t offset, std::string message) {
        m_sheet.error(offset, std::move(message));
        m_ok = false;
    }

    int row_number(const Cell& cell) {
        if (!require(cell, "row")) {
            return 0;
        }
        const std::string v = fold_name(cell.value);
        bool digits = v.size() == 1 && v[0] >= '1' && v[0] <= '8';
        if (!digits) {
            fail(cell.offset, "row must be a number from 1 to 8, not '" + cell.value + "'");
            return 0;
        }
        return v[0] - '0';
    }

    std::string case_id(const Cell& cell) {
        if (!require(cell, "case")) {
            return {};
        }
        const std::string folded = fold_name(cell.value);
        bool ok = std::all_of(folded.begin(), folded.end(), [](char ch) {
            return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '_';
        });
        if (!ok) {
            fail(cell.offset, "case must be letters, digits or '_', not '" + cell.value + "'");
        }
        return folded;
    }

    std::string identifier(const Cell& cell, std::string_view column) {
        if (!require(cell, column)) {
            return {};
        }
        std::string folded = fold_name(cell.value);
        if (!is_identifier(folded)) {
            fail(cell.offset, std::string(column) + " '" + cell.value + "' is not an identifier");
        }
        return folded;
    }

    std::string label(const Cell& cell, std::string_view column) {
        if (!require(cell, column)) {
            return {};
        }
        if (cell.value.find_first_of("\r\n") != std::string::npos) {
            fail(cell.offset, std::string(column) + " must be on one line");
        }
        return cell.value;
    }

    std::string kind(const Cell& cell) {
        if (!require(cell, "kind")) {
            return {};
        }
        std::string folded = fold_name(cell.value);
        if (!parse_flow_kind(folded)) {
            fail(cell.offset, "unknown kind '" + cell.value + "'; expected " +
                                  alternatives(flow_kind_spellings));
        }
        return folded;
    }

    // `;`-separated identifiers (a full-width `；` separates too), each folded; in
    // `recipients`, an item may also be a party's label from the parties sheet.
    std::vector<std::string> identifier_list(const Cell& cell, std::string_view column) {
        std::vector<std::string> items;
        if (!require(cell, column)) {
            return items;
        }
        const std::string& v = cell.value;
        std::size_t start = 0;
        for (;;) {
            auto [end, separator] = next_separator(v, start);
            std::string_view raw = std::string_view(v).substr(start, end - start);
            std::size_t lead = raw.find_first_not_of(" \t");
            auto offset = static_cast<std::uint32_t>(value_offset(cell) + start +
                                                     (lead == std::string_view::npos ? 0 : lead));
            std::string item = fold_name(raw);
            if (column == "recipients" && !is_identifier(item)) {
                if (auto party = m_party_labels.find(item); party != m_party_labels.end()) {
                    item = party->second;
                }
            }
            if (item.empty()) {
                fail(offset, "empty item in " + std::string(column));
            } else if (!is_identifier(item)) {
                fail(offset,
                     std::string(column) + " item '" +
                         std::string(raw.substr(lead, raw.find_last_not_of(" \t") + 1 - lead)) +
                         "' is not an identifier");
            } else if (std::find(items.begin(), items.end(), item) != items.end()) {
                fail(offset, "'" + item + "' is listed twice in " + std::string(column));
            } else {
                items.push_back(item);
            }
            if (end == v.size()) {
                break;
            }
            start = end + separator;
        }
        return items;
    }

    std::string legal_basis(const Cell& cell) {
        if (!require(cell, "legal_basis")) {
            return {};
        }
        std::string folded = fold_name(cell.value);
        if (find_consequence(folded) == nullptr) {
            std::string known;
            for (const BasisConsequence& c : consequence_table()) {
                known += known.empty() ? "" : ", ";
                known += c.ground;
            }
            fail(cell.offset, "unknown legal_basis '" + cell.value + "'; expected one of " + known);
        }
        return folded;
    }

    // (row, case) once; a row holds one purpose and a purpose one row and one label;
    // activity identifiers and labels once within their purpose (requests name either).
    void check_unique(const Record& record, const Case& c) {
        const Cell& case_cell = m_sheet.cell(record, "case");
        auto [seen_case, new_case] =
            m_cases.emplace(std::make_pair(c.row, c.case_id), case_cell.offset);
        if (!new_case) {
            fail(case_cell.offset, "duplicate case '" + c.case_id + "' of row " +
                                       std::to_string(c.row) + " (first on line " +
                                       std::to_string(m_sheet.line_of(seen_case->second)) + ")");
        }
        const Cell& purpose_cell = m_sheet.cell(record, "purpose");
        auto [row_purpose, new_row] = m_row_purpose.emplace(c.row, c.purpose);
        if (!new_row && row_purpose->second != c.purpose) {
            fail(purpose_cell.offset, "row " + std::to_string(c.row) + " is purpose '" +
                                          row_purpose->second + "'; a row holds one purpose");
        }
        auto [purpose, new_purpose] =
            m_purposes.emplace(c.purpose, std::make_pair(c.row, fold_name(c.purpose_label)));
        if (!new_purpose) {
            if (purpose->second.first != c.row) {
                fail(purpose_cell.offset, "purpose '" + c.purpose + "' is already row " +
                                              std::to_string(purpose->second.first));
            } else if (purpose->second.second != fold_name(c.purpose_label)) {
                fail(m_sheet.cell(record, "purpose_label").offset,
                     "purpose '" + c.purpose + "' has another label on an earlier line");
            }
        }
        const Cell& activity_cell = m_sheet.cell(record, "activity");
        auto [activity, new_activity] =
            m_activities.emplace(c.purpose + ' ' + c.activity, activity_cell.offset);
        if (!new_activity) {
            fail(activity_cell.offset, "duplicate activity '" + c.activity + "' in purpose '" +
                                           c.purpose + "' (first on line " +
                                           std::to_string(m_sheet.line_of(activity->second)) + ")");
        }
        const Cell& label_cell = m_sheet.cell(record, "label");
        auto [label_seen, new_label] =
            m_labels.emplace(c.purpose + ' ' + fold_name(c.label), label_cell.offset);
        if (!new_label) {
            fail(label_cell.offset, "duplicate label in purpose '" + c.purpose +
                                        "' (first on line " +
                                        std::to_string(m_sheet.line_of(label_seen->second)) + ")");
        }
    }

    Sheet& m_sheet;
    std::map<std::string, std::string> m_party_labels;
    bool m_ok = true;
    std::map<std::pair<int, std::string>, std::uint32_t> m_cases;
    std::map<int, std::string> m_row_purpose;
    std::map<std::string, std::pair<int, std::string>> m_purposes;
    std::map<std::string, std::uint32_t> m_activities;
    std::map<std::string, std::uint32_t> m_labels;
};

// The `;`-separated (or `；`) labels of an `aliases` cell, trimmed of white space.
std::vector<std::string> alias_list(const std::string& cell) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= cell.size()) {
        auto [end, separator] = next_separator(cell, start);
        std::string item = cell.substr(start, end - start);
        if (!fold_name(item).empty()) {
            std::size_t first = item.find_first_not_of(" \t");
            std::size_t last = item.find_last_not_of(" \t");
            out.push_back(item.substr(first, last - first + 1));
        }
        if (separator == 0) {
            break;
        }
        start = end + separator;
    }
    return out;
}

std::vector<PartyLine> read_parties(Sheet& sheet) {
    std::vector<PartyLine> parties;
    std::map<std::string, std::uint32_t> seen;
    for (const Record* record : sheet.records()) {
        PartyLine party;
        bool ok = true;
        auto check = [&](std::string_view column, std::string& out) -> const Cell& {
            const Cell& cell = sheet.cell(*record, column);
            out = cell.value;
            if (out.find_first_not_of(" \t") == std::string::npos) {
                sheet.error(cell.offset, "empty " + std::string(column));
                ok = false;
            }
            return cell;
        };
        const Cell& id = check("id", party.id);
        party.offset = id.offset;
        const Cell& type = check("type", party.type);
        const Cell& label = check("label", party.label);
        const Cell& role = check("role", party.role);
        if (!ok) {
            continue;
        }
        if (sheet.has_column("aliases")) {
            party.aliases = alias_list(sheet.cell(*record, "aliases").value);
        }
        // Names fold as the table's do; the label stays as written.
        const std::string written_id = party.id;
        const std::string written_type = party.type;
        const std::string written_role = party.role;
        party.id = fold_name(party.id);
        party.type = fold_name(party.type);
        party.role = fold_name(party.role);
        if (!is_identifier(party.id)) {
            sheet.error(id.offset, "id '" + written_id + "' is not an identifier");
            ok = false;
        } else if (auto [first, fresh] = seen.emplace(party.id, id.offset); !fresh) {
            sheet.error(id.offset, "duplicate party '" + party.id + "' (first on line " +
                                       std::to_string(sheet.line_of(first->second)) + ")");
            ok = false;
        }
        if (party.type != "party" && party.type != "class") {
            sheet.error(type.offset, "type must be 'party' or 'class', not '" + written_type + "'");
            ok = false;
        }
        if (party.label.find_first_of("\r\n") != std::string::npos) {
            sheet.error(label.offset, "label must be on one line");
            ok = false;
        }
        if (!parse_role(party.role)) {
            sheet.error(role.offset, "unknown role '" + written_role + "'");
            ok = false;
        }
        if (ok) {
            parties.push_back(std::move(party));
        }
    }
    return parties;
}

// --- printing ---------------------------------------------------------------------

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) {
        out += out.empty() ? "" : ", ";
        out += item;
    }
    return out;
}

void print_purpose(std::ostringstream& out, const std::vector<const Case*>& cases) {
    const Case& first = *cases.front();
    out << "purpose " << first.purpose << ' ' << label_literal(first.purpose_label) << " {\n";
    for (const Case* c : cases) {
        out << "  activity " << c->activity << ' ' << label_literal(c->label) << '\n'
            << "    kind " << c->kind << " to [" << joined(c->recipients) << "] data ["
            << joined(c->data) << "];\n";
    }
    out << "}\n";
}

void print_permit(std::ostringstream& out, const Case& c) {
    const BasisConsequence& consequence = *find_consequence(c.legal_basis);
    out << "permit r" << c.row << '_' << c.case_id << " {\n";
    out << "  purpose " << c.purpose << ";\n";
    out << "  activity " << c.activity << ";\n";
    out << "  to " << joined(c.recipients) << ";\n";
    out << "  data " << joined(c.data) << ";\n";
    if (!consequence.condition.empty()) {
        out << "  when " << consequence.condition << ";\n";
    }
    out << "  basis " << c.legal_basis << ";\n";
    if (!consequence.obligations.empty()) {
        out << "  oblige ";
        for (std::size_t i = 0; i < consequence.obligations.size(); ++i) {
            out << (i == 0 ? "" : ", ") << consequence.obligations[i];
        }
        out << ";\n";
    }
    out << "  source row " << c.row << " case " << label_literal(c.case_id) << ";\n";
    out << "  because " << label_literal(c.label) << ";\n";
    out << "}\n";
}

std::string print_policy(const std::string& table_path, const std::string& parties_path,
                         const std::vector<PartyLine>& parties, const std::vector<Case>& cases) {
    std::ostringstream out;
    // Bare file names: the generated text (and so the policy's hash) must not depend on
    // the directory compile-table was run from.
    auto bare = [](const std::string& path) {
        return std::filesystem::path(path).filename().string();
    };
    out << "# Generated by `flowgate policy compile-table` from " << bare(table_path) << '\n';
    if (!parties_path.empty()) {
        out << "# and " << bare(parties_path) << '\n';
    }
    out << "# Do not edit: edit the table and regenerate.\n";
    if (!parties.empty()) {
        out << '\n';
        // The canonical layout keeps runs of one declaration kind together and sets
        // kinds apart by a blank line, so a class among parties stands alone.
        for (std::size_t i = 0; i < parties.size(); ++i) {
            const PartyLine& p = parties[i];
            if (i > 0 && p.type != parties[i - 1].type) {
                out << '\n';
            }
            out << (p.type == "class" ? "class " : "party ") << p.id << ' '
                << label_literal(p.label) << " role " << p.role << ";\n";
        }
        bool first_alias = true;
        for (const PartyLine& p : parties) {
            for (const std::string& alias : p.aliases) {
                out << (first_alias ? "\n" : "") << "alias " << p.id << ' ' << label_literal(alias)
                    << ";\n";
                first_alias = false;
            }
        }
    }
    // Purposes in the order of their rows' first line; each followed by its permits.
    std::vector<std::string> order;
    std::map<std::string, std::vector<const Case*>> by_purpose;
    for (const Case& c : cases) {
        auto& list = by_purpose[c.purpose];
        if (list.empty()) {
            order.push_back(c.purpose);
        }
        list.push_back(&c);
    }
    for (const std::string& purpose : order) {
        out << '\n';
        print_purpose(out, by_purpose[purpose]);
        for (const Case* c : by_purpose[purpose]) {
            out << '\n';
            print_permit(out, *c);
        }
    }
    return out.str();
}

bool has_error(const Diagnostics& diagnostics) {
    return std::any_of(diagnostics.begin(), diagnostics.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::error; });
}

std::string strip_bom(const std::string& text) {
    return text.rfind("\xEF\xBB\xBF", 0) == 0 ? text.substr(3) : text;
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

} // namespace

std::span<const BasisConsequence> basis_consequences() {
    return consequence_table();
}

TableCompileResult compile_table(const std::string& display_path, const std::string& csv_text,
                                 const std::string& parties_path, const std::string& parties_text) {
    TableCompileResult result;
    SourceSet sources;
    std::uint32_t table_file = sources.add(display_path, strip_bom(csv_text));

    // The parties sheet first: a case may name a contractor by its label.
    std::vector<PartyLine> parties;
    bool with_parties = !parties_text.empty();
    std::uint32_t parties_file = 0;
    std::map<std::string, std::string> party_labels;
    if (with_parties) {
        parties_file = sources.add(parties_path, strip_bom(parties_text));
        Sheet sheet(sources, parties_file, result.diagnostics);
        if (sheet.load({"id", "type", "label", "role"})) {
            parties = read_parties(sheet);
        }
        for (const PartyLine& party : parties) {
            party_labels.emplace(fold_name(party.label), party.id);
        }
    }

    std::vector<Case> cases;
    Sheet table(sources, table_file, result.diagnostics);
    if (table.load({"row", "case", "purpose", "purpose_label", "activity", "label", "kind",
                    "recipients", "data", "legal_basis"})) {
        TableValidator validator(table, std::move(party_labels));
        for (const Record* record : table.records()) {
            if (std::optional<Case> c = validator.validate(*record)) {
                cases.push_back(std::move(*c));
            }
        }
    }

    // A contractor the sheet declares but no case names is a table that lost a line.
    for (const PartyLine& party : parties) {
        bool used = std::any_of(cases.begin(), cases.end(), [&](const Case& c) {
            return std::find(c.recipients.begin(), c.recipients.end(), party.id) !=
                   c.recipients.end();
        });
        if (!used && !has_error(result.diagnostics)) {
            result.diagnostics.push_back(
                make_diagnostic(sources, parties_file, party.offset,
                                "party '" + party.id + "' is named by no case of " + display_path));
        }
    }

    sort_diagnostics(result.diagnostics);
    if (!has_error(result.diagnostics)) {
        result.policy_text =
            print_policy(display_path, with_parties ? parties_path : "", parties, cases);
    }
    return result;
}

std::string parties_sheet_path(const std::string& table_path) {
    const std::string table_suffix = "-table.csv";
    if (table_path.size() >= table_suffix.size() &&
        table_path.compare(table_path.size() - table_suffix.size(), table_suffix.size(),
                           table_suffix) == 0) {
        return table_path.substr(0, table_path.size() - table_suffix.size()) + "-parties.csv";
    }
    const std::string csv = ".csv";
    std::string stem = table_path;
    if (stem.size() >= csv.size() && stem.compare(stem.size() - csv.size(), csv.size(), csv) == 0) {
        stem.resize(stem.size() - csv.size());
    }
    return stem + "-parties.csv";
}

TableCompileResult compile_table_file(const std::string& table_path) {
    std::optional<std::string> table = read_file(table_path);
    if (!table) {
        TableCompileResult result;
        result.diagnostics.push_back(
            Diagnostic{Severity::error, table_path, 0, 0, "cannot read the table", {}});
        return result;
    }
    std::string parties_path = parties_sheet_path(table_path);
    std::optional<std::string> parties = read_file(parties_path);
    return compile_table(table_path, *table, parties ? parties_path : std::string(),
                         parties.value_or(std::string()));
}

} // namespace flowgate::dsl
