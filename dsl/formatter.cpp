// Writes a parsed policy file back in its one canonical layout; see formatter.hpp. The
// AST has no comments, so they are read again from the source text and each is given to
// the first node (declaration, activity or clause) that follows it.
#include "formatter.hpp"

#include "parser.hpp"

#include <algorithm>
#include <string_view>
#include <type_traits>

namespace flowgate::dsl {
namespace {

namespace x3 = boost::spirit::x3;

struct Comment {
    std::uint32_t key = 0;    // printed before the first node whose offset is >= key
    std::uint32_t offset = 0; // where it starts in the source
    std::string text;
    bool trailing = false;    // code precedes it on its line
    bool blank_after = false; // a blank line follows it in the source
};

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// Index just past a label that opens at `i`: after its closing quote, or at the end of
// its line when it is not closed.
std::size_t skip_label(std::string_view text, std::size_t i) {
    for (++i; i < text.size() && text[i] != '"' && text[i] != '\n'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
            ++i;
        }
    }
    return i < text.size() && text[i] == '"' ? i + 1 : i;
}

bool opens_comment(std::string_view text, std::size_t i) {
    return text[i] == '#' || (text[i] == '/' && i + 1 < text.size() && text[i + 1] == '/');
}

std::vector<Comment> collect_comments(std::string_view text) {
    std::vector<Comment> comments;
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == '"') {
            i = skip_label(text, i);
            continue;
        }
        if (!opens_comment(text, i)) {
            ++i;
            continue;
        }
        std::size_t end = text.find('\n', i);
        end = end == std::string_view::npos ? text.size() : end;
        Comment comment;
        comment.offset = static_cast<std::uint32_t>(i);
        comment.key = comment.offset;
        std::string_view body = text.substr(i, end - i);
        while (!body.empty() && is_blank(body.back())) {
            body.remove_suffix(1);
        }
        comment.text = std::string(body);
        std::size_t line_start = text.rfind('\n', i == 0 ? 0 : i - 1);
        line_start = line_start == std::string_view::npos || i == 0 ? 0 : line_start + 1;
        for (std::size_t k = line_start; k < i; ++k) {
            comment.trailing = comment.trailing || !is_blank(text[k]);
        }
        if (!comment.trailing && end < text.size()) {
            std::size_t k = end + 1;
            while (k < text.size() && is_blank(text[k])) {
                ++k;
            }
            comment.blank_after = k < text.size() && text[k] == '\n';
        }
        comments.push_back(std::move(comment));
        i = end;
    }
    return comments;
}

// Offset of the `}` that closes the block whose declaration starts at `offset`.
std::uint32_t block_end(std::string_view text, std::uint32_t offset) {
    int depth = 0;
    for (std::size_t i = offset; i < text.size();) {
        if (text[i] == '"') {
            i = skip_label(text, i);
            continue;
        }
        if (opens_comment(text, i)) {
            i = std::min(text.find('\n', i), text.size());
            continue;
        }
        if (text[i] == '{') {
            ++depth;
        } else if (text[i] == '}' && --depth == 0) {
            return static_cast<std::uint32_t>(i);
        }
        ++i;
    }
    return static_cast<std::uint32_t>(text.size());
}

std::uint32_t offset_of(const ast::Clause& clause) {
    return boost::apply_visitor([](const auto& node) { return node.offset; }, clause.get());
}

std::uint32_t offset_of(const ast::Declaration& declaration) {
    return boost::apply_visitor([](const auto& node) { return node.offset; }, declaration.get());
}

// The offsets a comment can be attached to, sorted.
std::vector<std::uint32_t> anchors(const ast::File& file) {
    std::vector<std::uint32_t> result;
    for (const ast::Declaration& declaration : file.declarations) {
        result.push_back(offset_of(declaration));
        if (const auto* purpose = boost::get<ast::Purpose>(&declaration.get())) {
            for (const ast::Activity& activity : purpose->activities) {
                result.push_back(activity.offset);
            }
        } else if (const auto* rule = boost::get<ast::Rule>(&declaration.get())) {
            for (const ast::Clause& clause : rule->clauses) {
                result.push_back(offset_of(clause));
            }
        }
    }
    std::sort(result.begin(), result.end());
    return result;
}

// A comment at the end of a line goes before the node that line belongs to (the last
// node starting before the comment), unless the line only closes a block.
void attach_trailing_comments(std::vector<Comment>& comments, std::string_view text,
                              const std::vector<std::uint32_t>& anchor_offsets) {
    for (Comment& comment : comments) {
        if (!comment.trailing) {
            continue;
        }
        std::size_t line_start = text.rfind('\n', comment.offset - 1);
        line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
        while (line_start < comment.offset && is_blank(text[line_start])) {
            ++line_start;
        }
        if (text[line_start] == '}') {
            continue;
        }
        auto after = std::lower_bound(anchor_offsets.begin(), anchor_offsets.end(), comment.offset);
        if (after != anchor_offsets.begin()) {
            comment.key = *(after - 1);
        }
    }
    std::stable_sort(comments.begin(), comments.end(),
                     [](const Comment& a, const Comment& b) { return a.key < b.key; });
}

std::string joined(const std::vector<ast::Name>& names) {
    std::string out;
    for (const ast::Name& name : names) {
        out += (out.empty() ? "" : ", ") + name.text;
    }
    return out;
}

std::string condition_text(const ast::Condition& condition);

std::string term_text(const ast::Term& term) {
    struct Visitor {
        std::string operator()(const ast::ContextTest& test) const {
            return test.in ? test.key.text + " in [" + joined(*test.in) + "]" : test.key.text;
        }
        std::string operator()(const x3::forward_ast<ast::Negation>& negation) const {
            return "not " + term_text(negation.get().operand);
        }
        std::string operator()(const x3::forward_ast<ast::Condition>& condition) const {
            return "(" + condition_text(condition.get()) + ")";
        }
    };
    return boost::apply_visitor(Visitor{}, term.get());
}

std::string condition_text(const ast::Condition& condition) {
    std::string out;
    for (const ast::Conjunction& conjunction : condition.any_of) {
        out += out.empty() ? "" : " or ";
        std::string all;
        for (const ast::Term& term : conjunction.all_of) {
            all += (all.empty() ? "" : " and ") + term_text(term);
        }
        out += all;
    }
    return out;
}

std::string clause_text(const ast::Clause& clause) {
    struct Visitor {
        std::string operator()(const ast::MatchClause& match) const {
            static constexpr const char* words[] = {"purpose", "activity", "to", "data", "kind"};
            std::string out = words[static_cast<int>(match.dimension)];
            out += match.negated ? " not " : " ";
            for (std::size_t i = 0; i < match.items.size(); ++i) {
                const ast::Selector& item = match.items[i];
                out += i == 0 ? "" : ", ";
                out +=
                    item.qualifier.empty() ? item.name.text : item.qualifier + ' ' + item.name.text;
            }
            return out;
        }
        std::string operator()(const ast::WhenClause& when) const {
            return "when " + condition_text(when.condition);
        }
        std::string operator()(const ast::BasisClause& basis) const {
            return "basis " + basis.ground.text;
        }
        std::string operator()(const ast::ObligeClause& oblige) const {
            return "oblige " + joined(oblige.obligations);
        }
        std::string operator()(const ast::Source& source) const {
            return "source row " + std::to_string(source.row) + " case " +
                   label_literal(source.case_label.text);
        }
        std::string operator()(const ast::BecauseClause& because) const {
            return "because " + label_literal(because.text.text);
        }
    };
    return boost::apply_visitor(Visitor{}, clause.get()) + ';';
}

class Printer {
public:
    Printer(std::string_view source, std::vector<Comment> comments)
        : m_source(source), m_comments(std::move(comments)) {}

    void declaration(const ast::Declaration& declaration) {
        boost::apply_visitor([this](const auto& node) { print(node); }, declaration.get());
    }

    void separate() { m_blank_pending = !m_out.empty(); }

    std::string finish() {
        comments_up_to(static_cast<std::uint32_t>(m_source.size()), 0);
        return std::move(m_out);
    }

private:
    void line(int indent, const std::string& text) {
        if (m_blank_pending) {
            m_out += '\n';
            m_blank_pending = false;
        }
        m_out.append(static_cast<std::size_t>(indent), ' ');
        m_out += text;
        m_out += '\n';
    }

    // Closing a block: no blank line before it.
    void close_block() {
        m_blank_pending = false;
        line(0, "}");
    }

    void comments_up_to(std::uint32_t offset, int indent) {
        while (m_next < m_comments.size() && m_comments[m_next].key <= offset) {
            const Comment& comment = m_comments[m_next++];
            line(indent, comment.text);
            m_blank_pending = comment.blank_after;
        }
    }

    void print(const ast::Category& category) {
        comments_up_to(category.offset, 0);
        line(0, "category " + category.id.text + ' ' + label_literal(category.label.text) +
                    " sensitivity " + category.sensitivity.text + ';');
    }
    void print(const ast::Party& party) {
        comments_up_to(party.offset, 0);
        line(0, "party " + party.id.text + ' ' + label_literal(party.label.text) + " role " +
                    party.role.text + ';');
    }
    void print(const ast::PartyClass& party_class) {
        comments_up_to(party_class.offset, 0);
        line(0, "class " + party_class.id.text + ' ' + label_literal(party_class.label.text) +
                    " role " + party_class.role.text + ';');
    }
    void print(const ast::Members& members) {
        comments_up_to(members.offset, 0);
        line(0, "members " + members.party_class.text + " [" + joined(members.members) + "];");
    }
    void print(const ast::Ground& ground) {
        comments_up_to(ground.offset, 0);
        line(0, "ground " + ground.id.text + ' ' + label_literal(ground.label.text) + ';');
    }
    void print(const ast::Obligation& obligation) {
        comments_up_to(obligation.offset, 0);
        line(0,
             "obligation " + obligation.id.text + ' ' + label_literal(obligation.label.text) + ';');
    }
    void print(const ast::Alias& alias) {
        comments_up_to(alias.offset, 0);
        line(0, "alias " + alias.target.text + ' ' + label_literal(alias.label.text) + ';');
    }
    void print(const ast::Purpose& purpose) {
        comments_up_to(purpose.offset, 0);
        line(0, "purpose " + purpose.id.text + ' ' + label_literal(purpose.label.text) + " {");
        for (const ast::Activity& activity : purpose.activities) {
            comments_up_to(activity.offset, 2);
            line(2, "activity " + activity.id.text + ' ' + label_literal(activity.label.text));
            line(4, "kind " + activity.kind.text + " to [" + joined(activity.recipients) +
                        "] data [" + joined(activity.data) + "];");
        }
        comments_up_to(block_end(m_source, purpose.offset) - 1, 2);
        close_block();
    }
    void print(const ast::Rule& rule) {
        comments_up_to(rule.offset, 0);
        line(0, std::string(rule.effect == ast::Effect::permit ? "permit " : "forbid ") +
                    rule.id.text + " {");
        for (const ast::Clause& clause : rule.clauses) {
            comments_up_to(offset_of(clause), 2);
            line(2, clause_text(clause));
        }
        comments_up_to(block_end(m_source, rule.offset) - 1, 2);
        close_block();
    }

    std::string_view m_source;
    std::vector<Comment> m_comments;
    std::size_t m_next = 0;
    std::string m_out;
    bool m_blank_pending = false;
};

bool is_block(const ast::Declaration& declaration) {
    return boost::get<ast::Purpose>(&declaration.get()) != nullptr ||
           boost::get<ast::Rule>(&declaration.get()) != nullptr;
}

} // namespace

std::string format_policy_file(const ast::File& file, const SourceFile& source) {
    std::string_view text = source.text();
    std::vector<Comment> comments = collect_comments(text);
    attach_trailing_comments(comments, text, anchors(file));
    Printer printer(text, std::move(comments));
    const ast::Declaration* previous = nullptr;
    for (const ast::Declaration& declaration : file.declarations) {
        // Runs of one-line declarations of one kind stay together; blocks stand apart.
        if (previous != nullptr && (is_block(*previous) || is_block(declaration) ||
                                    previous->get().which() != declaration.get().which())) {
            printer.separate();
        }
        printer.declaration(declaration);
        previous = &declaration;
    }
    if (previous != nullptr) {
        printer.separate();
    }
    return printer.finish();
}

std::optional<std::string> format_policy_text(std::string path, std::string text,
                                              Diagnostics& diagnostics) {
    SourceSet sources;
    std::uint32_t index = sources.add(std::move(path), std::move(text));
    ast::File file;
    if (!parse_file(sources, index, file, diagnostics)) {
        return std::nullopt;
    }
    return format_policy_file(file, sources.file(index));
}

std::string label_literal(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + '"';
}

} // namespace flowgate::dsl
