// Name folding with ICU's NFKC normalizer, and the declared names it is applied to; see
// names.hpp.
#include "names.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

namespace flowgate::dsl {

namespace {

// The ASCII characters of Unicode's White_Space property: TAB, LF, VT, FF, CR, space.
// The fold's fast path removes exactly these, so it agrees with u_isUWhiteSpace.
bool ascii_space(unsigned char c) noexcept {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

const icu::Normalizer2& nfkc() {
    // ICU's instance is a singleton it owns; looking it up once is enough.
    static const icu::Normalizer2* const instance = [] {
        UErrorCode status = U_ZERO_ERROR;
        const icu::Normalizer2* found = icu::Normalizer2::getNFKCInstance(status);
        if (U_FAILURE(status) || found == nullptr) {
            throw std::runtime_error(std::string("ICU's NFKC data is not available: ") +
                                     u_errorName(status));
        }
        return found;
    }();
    return *instance;
}

// Calls `visit(c, begin, end)` for each code point of UTF-8 `text` and its byte range; an
// ill-formed sequence is one negative `c`.
template <typename Visit> void for_each_code_point(std::string_view text, Visit visit) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
    const auto length = static_cast<std::int32_t>(text.size());
    std::int32_t i = 0;
    while (i < length) {
        std::int32_t start = i;
        UChar32 c = 0;
        U8_NEXT(bytes, i, length, c);
        visit(c, static_cast<std::size_t>(start), static_cast<std::size_t>(i));
    }
}

// `text` without its White_Space code points (an ill-formed byte is kept as it is).
std::string without_space(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for_each_code_point(text, [&](UChar32 c, std::size_t begin, std::size_t end) {
        if (c < 0 || !u_isUWhiteSpace(c)) {
            out.append(text.substr(begin, end - begin));
        }
    });
    return out;
}

} // namespace

bool folds_to_itself(std::string_view name) noexcept {
    return std::all_of(name.begin(), name.end(), [](char c) {
        auto byte = static_cast<unsigned char>(c);
        return byte < 0x80 && !ascii_space(byte);
    });
}

std::string fold_name(std::string_view name) {
    bool ascii = std::all_of(name.begin(), name.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (ascii) {
        // NFKC leaves ASCII as it is: only the white space goes.
        std::string out;
        out.reserve(name.size());
        for (char c : name) {
            if (!ascii_space(static_cast<unsigned char>(c))) {
                out += c;
            }
        }
        return out;
    }
    std::string normalized;
    icu::StringByteSink<std::string> sink(&normalized, static_cast<std::int32_t>(name.size()));
    UErrorCode status = U_ZERO_ERROR;
    nfkc().normalizeUTF8(0, icu::StringPiece(name.data(), static_cast<std::int32_t>(name.size())),
                         sink, nullptr, status);
    if (U_FAILURE(status)) {
        // Only a name past ICU's length limits (2 GiB) gets here: it is matched as written.
        normalized.assign(name);
    }
    return without_space(normalized);
}

std::u32string code_points(std::string_view text) {
    std::u32string out;
    out.reserve(text.size());
    for_each_code_point(text, [&](UChar32 c, std::size_t, std::size_t) {
        out.push_back(static_cast<char32_t>(c));
    });
    return out;
}

std::size_t edit_distance(std::u32string_view x, std::u32string_view y) {
    // One row of the Wagner-Fischer table at a time, on the stack for names of usual length.
    boost::container::small_vector<std::size_t, 128> row(y.size() + 1);
    std::iota(row.begin(), row.end(), std::size_t{0});
    for (std::size_t i = 1; i <= x.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= y.size(); ++j) {
            std::size_t above = row[j];
            row[j] =
                std::min({row[j] + 1, row[j - 1] + 1, diagonal + (x[i - 1] == y[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[y.size()];
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    return edit_distance(code_points(a), code_points(b));
}

std::optional<std::size_t> name_distance(std::u32string_view given, std::u32string_view candidate) {
    const std::size_t longer = std::max(given.size(), candidate.size());
    const std::size_t shorter = std::min(given.size(), candidate.size());
    // The distance is at least the difference in length: past half, no need to count.
    if (given.size() > max_suggestion_length || 2 * (longer - shorter) > longer) {
        return std::nullopt;
    }
    std::size_t distance = edit_distance(given, candidate);
    if (distance == 0 || 2 * distance > longer) {
        return std::nullopt;
    }
    return distance;
}

std::optional<std::size_t> name_distance(std::string_view given, std::string_view candidate) {
    return name_distance(code_points(given), code_points(candidate));
}

std::string_view to_string(NameKind kind) {
    switch (kind) {
    case NameKind::purpose:
        return "purpose";
    case NameKind::activity:
        return "activity";
    case NameKind::party:
        return "party";
    case NameKind::category:
        return "category";
    case NameKind::ground:
        return "ground";
    case NameKind::obligation:
        return "obligation";
    }
    return "name";
}

namespace {

// Collects the names of each declaration; aliases wait until every identifier is known.
class NameCollector {
public:
    void add(const ast::Category& node) { thing(NameKind::category, node.id, node.label); }
    void add(const ast::Party& node) { thing(NameKind::party, node.id, node.label); }
    void add(const ast::PartyClass& node) { thing(NameKind::party, node.id, node.label); }
    void add(const ast::Ground& node) { thing(NameKind::ground, node.id, node.label); }
    void add(const ast::Obligation& node) { thing(NameKind::obligation, node.id, node.label); }
    void add(const ast::Purpose& node) {
        thing(NameKind::purpose, node.id, node.label);
        for (const ast::Activity& activity : node.activities) {
            thing(NameKind::activity, activity.id, activity.label, node.id.text);
        }
    }
    void add(const ast::Alias& node) { m_aliases.push_back(&node); }
    void add(const ast::Members&) {}
    void add(const ast::Rule&) {}

    std::vector<DeclaredName> finish() {
        for (const ast::Alias* alias : m_aliases) {
            auto target = m_kinds.find(alias->target.text);
            if (target == m_kinds.end() || target->second == NameKind::obligation ||
                alias->label.text.empty()) {
                continue;
            }
            m_names.push_back({target->second, alias->target.text, "", alias->label.text,
                               NameForm::alias, alias->label.file, alias->label.offset});
        }
        // Aliases stand where they are written, among the other names.
        std::stable_sort(m_names.begin(), m_names.end(),
                         [](const DeclaredName& a, const DeclaredName& b) {
                             return std::tie(a.file, a.offset) < std::tie(b.file, b.offset);
                         });
        return std::move(m_names);
    }

private:
    void thing(NameKind kind, const ast::Name& id, const ast::Label& label,
               const std::string& scope = {}) {
        m_names.push_back(
            {kind, id.text, scope, id.text, NameForm::identifier, id.file, id.offset});
        if (!label.text.empty()) {
            m_names.push_back(
                {kind, id.text, scope, label.text, NameForm::label, label.file, label.offset});
        }
        if (kind != NameKind::activity) {
            m_kinds.try_emplace(id.text, kind);
        }
    }

    std::vector<DeclaredName> m_names;
    std::vector<const ast::Alias*> m_aliases;
    std::unordered_map<std::string, NameKind> m_kinds;
};

// Whether two names that fold alike make a policy ambiguous or confusing.
bool collide(const DeclaredName& a, const DeclaredName& b) {
    if (a.form == NameForm::identifier && b.form == NameForm::identifier) {
        return false; // identifiers: the duplicate-name rule
    }
    if (a.kind == b.kind && a.owner == b.owner && a.scope == b.scope) {
        return false; // two names of one thing
    }
    if (a.kind == NameKind::activity && b.kind == NameKind::activity && a.scope != b.scope) {
        return false; // activities are named within their purpose
    }
    return true;
}

} // namespace

std::vector<DeclaredName> declared_names(const std::vector<ast::File>& files) {
    NameCollector collector;
    for (const ast::File& file : files) {
        for (const ast::Declaration& declaration : file.declarations) {
            boost::apply_visitor([&](const auto& node) { collector.add(node); }, declaration);
        }
    }
    return collector.finish();
}

std::vector<NameCollision> names_that_fold_alike(const std::vector<DeclaredName>& names) {
    std::vector<NameCollision> out;
    std::unordered_map<std::string, std::vector<std::size_t>> by_folded;
    for (std::size_t i = 0; i < names.size(); ++i) {
        std::string folded = fold_name(names[i].text);
        if (folded.empty()) {
            continue; // a label of white space alone names nothing
        }
        std::vector<std::size_t>& earlier = by_folded[folded];
        for (std::size_t j : earlier) {
            if (collide(names[j], names[i])) {
                out.push_back({names[j], names[i], folded});
                break;
            }
        }
        earlier.push_back(i);
    }
    return out;
}

std::string describe(const DeclaredName& name) {
    std::string thing = std::string(to_string(name.kind)) + " '" + name.owner + "'";
    if (!name.scope.empty()) {
        thing += " of purpose '" + name.scope + "'";
    }
    switch (name.form) {
    case NameForm::identifier:
        return thing;
    case NameForm::label:
        return "label '" + name.text + "' of " + thing;
    case NameForm::alias:
        return "alias '" + name.text + "' of " + thing;
    }
    return thing;
}

} // namespace flowgate::dsl
