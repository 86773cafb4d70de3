// The policy report: one HTML page from one CompiledPolicy. The tables are the
// compiled activities and rules; the matrices are evaluate() over every (recipient,
// category) of a purpose, first with no context, then with each context a condition
// can test, so a cell says exactly what flowgated would answer.
#include "cli/policy_report.hpp"
#include "cli/html.hpp"
#include "cli/svg_chart.hpp"
#include "dsl/evaluator.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <iostream>
#include <string_view>

namespace flowgate::cli {
namespace {

using dsl::Id;
using html::append_escaped;
using html::figure;

void text(std::string& out, std::string_view value) {
    append_escaped(out, value);
}

// --- the matrix ---------------------------------------------------------------------

MatrixCell evaluate_cell(const dsl::CompiledPolicy& policy, Id purpose, Id recipient, bool inbound,
                         Id category) {
    const dsl::CheckedPolicy& model = policy.model();
    MatrixCell cell{recipient, category, inbound, CellState::deny, {}, nullptr, {}, false};
    dsl::Request request;
    request.purpose = model.purposes[purpose].id;
    request.recipient = model.parties[recipient].id;
    request.data = {model.categories[category].id};
    request.direction = inbound ? dsl::Direction::receive : dsl::Direction::send;

    dsl::Decision plain = dsl::evaluate(policy, request);
    if (plain.allowed) {
        cell.state = CellState::allow;
        cell.rule = plain.rule;
        cell.reason = std::string(plain.reason());
        request.context.objection = true;
        cell.stops_on_objection = !dsl::evaluate(policy, request).allowed;
        return cell;
    }
    cell.rule = plain.rule;
    cell.reason = std::string(plain.reason());

    // The contexts a condition can test that could turn a deny into an allow: consent
    // on record, or one of the policy's legal grounds relied on.
    auto allowed_with = [&](const std::string& context) {
        dsl::Decision decision = dsl::evaluate(policy, request);
        if (!decision.allowed) {
            return false;
        }
        cell.state = CellState::conditional;
        cell.context = context;
        cell.rule = decision.rule;
        cell.reason = std::string(decision.reason());
        return true;
    };
    request.context.consent = true;
    if (allowed_with("consent")) {
        return cell;
    }
    request.context.consent = false;
    for (const dsl::Ground& ground : model.grounds) {
        request.context.legal_basis = ground.id;
        if (allowed_with(ground.id)) {
            return cell;
        }
    }
    return cell;
}

} // namespace

PurposeMatrix purpose_matrix(const dsl::CompiledPolicy& policy, Id purpose) {
    const dsl::CheckedPolicy& model = policy.model();
    PurposeMatrix matrix;
    for (Id a : model.purposes[purpose].activities) {
        const dsl::Activity& activity = model.activities[a];
        bool inbound = activity.kind == dsl::FlowKind::receive;
        for (Id party : activity.recipients) {
            std::pair<Id, bool> row{party, inbound};
            if (std::find(matrix.rows.begin(), matrix.rows.end(), row) == matrix.rows.end()) {
                matrix.rows.push_back(row);
            }
        }
        for (Id category : activity.categories) {
            if (std::find(matrix.categories.begin(), matrix.categories.end(), category) ==
                matrix.categories.end()) {
                matrix.categories.push_back(category);
            }
        }
    }
    std::sort(matrix.categories.begin(), matrix.categories.end());
    for (const auto& [recipient, inbound] : matrix.rows) {
        for (Id category : matrix.categories) {
            matrix.cells.push_back(evaluate_cell(policy, purpose, recipient, inbound, category));
        }
    }
    return matrix;
}

namespace {

// --- how the compiled model reads back ------------------------------------------------

std::string_view kind_label(dsl::FlowKind kind) {
    switch (kind) {
    case dsl::FlowKind::internal:
        return "内部利用";
    case dsl::FlowKind::outsource:
        return "委託";
    case dsl::FlowKind::joint:
        return "共同利用";
    case dsl::FlowKind::provide:
        return "第三者提供";
    case dsl::FlowKind::report:
        return "法令に基づく提供";
    case dsl::FlowKind::linkage:
        return "情報連携";
    case dsl::FlowKind::notify:
        return "本人への通知";
    case dsl::FlowKind::receive:
        return "受領";
    }
    return "";
}

void sensitivity_badge(std::string& out, dsl::Sensitivity sensitivity) {
    if (sensitivity == dsl::Sensitivity::special_care) {
        out += "<span class=\"badge special_care\" title=\"special_care\">要配慮</span>";
    } else if (sensitivity == dsl::Sensitivity::specific) {
        out += "<span class=\"badge specific\" title=\"specific\">特定個人情報</span>";
    }
}

void category_name(std::string& out, const dsl::Category& category) {
    text(out, category.label);
    sensitivity_badge(out, category.sensitivity);
}

void party_name(std::string& out, const dsl::CheckedPolicy& model, Id id) {
    const dsl::Party& party = model.parties[id];
    text(out, party.label);
    out += " <span class=\"muted\">(";
    text(out, dsl::to_string(party.role));
    if (party.is_class) {
        out += ", ";
        out += std::to_string(party.members.size());
        out += " members";
    }
    out += ")</span>";
}

template <typename Enum, std::size_t N>
void attribute_words(std::vector<std::string>& words, std::uint32_t attributes,
                     std::string_view qualifier,
                     const std::array<dsl::Spelling<Enum>, N>& spellings) {
    for (const auto& spelling : spellings) {
        if ((attributes & (1u << static_cast<unsigned>(spelling.value))) != 0) {
            words.push_back((qualifier.empty() ? "" : std::string(qualifier) + " ") +
                            std::string(spelling.word));
        }
    }
}

// A clause as the policy would write it: "not status, sensitivity special_care".
template <typename Named>
std::string clause_text(const dsl::Matcher& matcher, const std::vector<Named>& names,
                        std::vector<std::string> words) {
    if (!matcher.present) {
        return "";
    }
    std::vector<std::string> all;
    for (Id id : matcher.ids) {
        all.push_back(names[id].id);
    }
    all.insert(all.end(), words.begin(), words.end());
    std::string joined = matcher.negated ? "not " : "";
    for (std::size_t i = 0; i < all.size(); ++i) {
        joined += (i == 0 ? "" : ", ") + all[i];
    }
    return joined;
}

// Recipient ids less the members a class among them already stands for.
std::string recipient_clause(const dsl::Matcher& matcher, const dsl::CheckedPolicy& model) {
    dsl::Matcher shown = matcher;
    shown.ids.clear();
    for (Id id : matcher.ids) {
        bool member_of_listed_class =
            std::any_of(matcher.ids.begin(), matcher.ids.end(), [&](Id c) {
                const auto& members = model.parties[c].members;
                return std::find(members.begin(), members.end(), id) != members.end();
            });
        if (!member_of_listed_class) {
            shown.ids.push_back(id);
        }
    }
    std::vector<std::string> roles;
    attribute_words(roles, matcher.attributes, "role", dsl::role_spellings);
    return clause_text(shown, model.parties, roles);
}

void rule_terms(std::string& out, const dsl::CompiledPolicy& policy, const dsl::Rule& rule) {
    const dsl::CheckedPolicy& model = policy.model();
    out += "<td>";
    if (rule.basis != dsl::no_id) {
        text(out, model.grounds[rule.basis].label);
        out += " <code>";
        text(out, model.grounds[rule.basis].id);
        out += "</code>";
    }
    out += "</td><td>";
    if (rule.condition.nodes.empty()) {
        out += "<span class=\"muted\">—</span>";
    } else {
        out += "<code>";
        text(out, rule.condition.text);
        out += "</code>";
    }
    out += "</td><td>";
    for (std::size_t i = 0; i < rule.obligations.size(); ++i) {
        out += i == 0 ? "" : "<br>";
        text(out, model.obligations[rule.obligations[i]].label);
    }
    out += "</td><td><code>";
    text(out, rule.id);
    out += "</code><br><span class=\"muted mono\">";
    text(out, policy.rule_source(rule));
    out += "</span></td>";
}

// The permits that can decide a check under this purpose and activity (for some
// recipient and category): those whose purpose, activity and kind clauses match it,
// whether they name the activity or not.
std::vector<const dsl::Rule*> permits_of(const dsl::CheckedPolicy& model, Id activity) {
    const dsl::Activity& declared = model.activities[activity];
    const std::uint32_t kind_bit = 1u << static_cast<unsigned>(declared.kind);
    std::vector<const dsl::Rule*> found;
    for (const dsl::Rule& rule : model.rules) {
        if (rule.effect == dsl::ast::Effect::permit && rule.purpose.matches(declared.purpose, 0) &&
            rule.activity.matches(activity, 0) && rule.kind.matches(dsl::no_id, kind_bit)) {
            found.push_back(&rule);
        }
    }
    return found;
}

struct Section {
    std::string_view title;
    std::vector<dsl::FlowKind> kinds;
};

const std::array<Section, 4> sections = {{
    {"内部での利用 (internal uses)", {dsl::FlowKind::internal}},
    {"他への提供等 (provision to others)",
     {dsl::FlowKind::provide, dsl::FlowKind::joint, dsl::FlowKind::report, dsl::FlowKind::linkage,
      dsl::FlowKind::notify}},
    {"委託先 (contractors)", {dsl::FlowKind::outsource}},
    {"受領 (received from others)", {dsl::FlowKind::receive}},
}};

void activity_table(std::string& out, const dsl::CompiledPolicy& policy,
                    const dsl::Purpose& purpose, const Section& section) {
    const dsl::CheckedPolicy& model = policy.model();
    std::vector<Id> shown;
    for (Id a : purpose.activities) {
        if (std::find(section.kinds.begin(), section.kinds.end(), model.activities[a].kind) !=
            section.kinds.end()) {
            shown.push_back(a);
        }
    }
    if (shown.empty()) {
        return;
    }
    out += "<h3>";
    text(out, section.title);
    out += "</h3>\n<table class=\"activities\"><thead><tr><th>表</th><th>事例 (activity)</th>"
           "<th>区分</th><th>提供先・委託先</th><th>データ</th><th>法的根拠</th><th>条件</th>"
           "<th>義務</th><th>規則</th></tr></thead><tbody>\n";
    for (Id a : shown) {
        const dsl::Activity& activity = model.activities[a];
        std::vector<const dsl::Rule*> rules = permits_of(model, a);
        std::size_t span = std::max<std::size_t>(rules.size(), 1);
        out += "<tr class=\"activity\" data-activity=\"";
        text(out, activity.id);
        out += "\">";
        std::string rowspan = span > 1 ? " rowspan=\"" + std::to_string(span) + "\"" : "";
        out += "<td" + rowspan + ">";
        if (!rules.empty() && rules.front()->source_row) {
            out += std::to_string(*rules.front()->source_row);
            if (!rules.front()->source_case.empty()) {
                out += "-";
                text(out, rules.front()->source_case);
            }
        }
        out += "</td><td" + rowspan + ">";
        text(out, activity.label);
        out += "<br><code class=\"muted\">";
        text(out, activity.id);
        out += "</code></td><td" + rowspan + " class=\"kind\">";
        text(out, kind_label(activity.kind));
        out += "<br><code>";
        text(out, dsl::to_string(activity.kind));
        out += "</code></td><td" + rowspan + ">";
        for (std::size_t i = 0; i < activity.recipients.size(); ++i) {
            out += i == 0 ? "" : "<br>";
            party_name(out, model, activity.recipients[i]);
        }
        out += "</td><td" + rowspan + ">";
        for (std::size_t i = 0; i < activity.categories.size(); ++i) {
            out += i == 0 ? "" : "<br>";
            category_name(out, model.categories[activity.categories[i]]);
        }
        out += "</td>";
        if (rules.empty()) {
            out += "<td colspan=\"4\" class=\"muted\">no permit rule: denied</td></tr>\n";
            continue;
        }
        for (std::size_t i = 0; i < rules.size(); ++i) {
            if (i > 0) {
                out += "<tr>";
            }
            rule_terms(out, policy, *rules[i]);
            out += "</tr>\n";
        }
    }
    out += "</tbody></table>\n";
}

struct CellCounts {
    std::size_t allow = 0;
    std::size_t conditional = 0;
    std::size_t deny = 0;
};

std::string_view state_word(CellState state) {
    switch (state) {
    case CellState::allow:
        return "allow";
    case CellState::conditional:
        return "conditional";
    case CellState::deny:
        return "deny";
    }
    return "";
}

void matrix_table(std::string& out, const dsl::CompiledPolicy& policy, const dsl::Purpose& purpose,
                  const PurposeMatrix& matrix, CellCounts& counts) {
    const dsl::CheckedPolicy& model = policy.model();
    out += "<h3>提供先 × データ区分 (what the daemon answers)</h3>\n<table class=\"matrix\" "
           "data-purpose=\"";
    text(out, purpose.id);
    out += "\"><thead><tr><th>提供先・委託先</th>";
    for (Id category : matrix.categories) {
        out += "<th>";
        category_name(out, model.categories[category]);
        out += "</th>";
    }
    out += "</tr></thead><tbody>\n";
    std::size_t index = 0;
    for (const auto& [recipient, inbound] : matrix.rows) {
        out += "<tr><th>";
        party_name(out, model, recipient);
        if (inbound) {
            out += " <span class=\"badge\">受領元</span>";
        }
        out += "</th>";
        for (std::size_t c = 0; c < matrix.categories.size(); ++c, ++index) {
            const MatrixCell& cell = matrix.cells[index];
            std::string_view state = state_word(cell.state);
            (cell.state == CellState::allow         ? counts.allow
             : cell.state == CellState::conditional ? counts.conditional
                                                    : counts.deny)++;
            out += "<td class=\"cell ";
            out += state;
            out += "\" data-purpose=\"";
            text(out, purpose.id);
            out += "\" data-recipient=\"";
            text(out, model.parties[recipient].id);
            out += "\" data-category=\"";
            text(out, model.categories[cell.category].id);
            out += "\" data-direction=\"";
            out += inbound ? "receive" : "send";
            out += "\" data-state=\"";
            out += state;
            out += "\" data-context=\"";
            text(out, cell.context);
            out += "\" data-rule=\"";
            if (cell.rule != nullptr) {
                text(out, cell.rule->id);
            }
            out += "\" title=\"";
            text(out, cell.reason);
            out += "\"><span class=\"mark\">";
            out += cell.state == CellState::allow         ? "○"
                   : cell.state == CellState::conditional ? "△"
                                                          : "×";
            out += "</span>";
            if (cell.state == CellState::conditional) {
                text(out, cell.context == "consent" ? std::string("同意") : cell.context);
                out += "<br>";
            }
            if (cell.rule != nullptr) {
                out += "<code>";
                text(out, cell.rule->id);
                out += "</code>";
            }
            if (cell.stops_on_objection) {
                out += "<br>異議で停止";
            }
            out += "</td>";
        }
        out += "</tr>\n";
    }
    out += "</tbody></table>\n";
}

void forbid_table(std::string& out, const dsl::CompiledPolicy& policy) {
    const dsl::CheckedPolicy& model = policy.model();
    out += "<section id=\"hard-limits\"><h2>法令上の制限 (hard limits: forbid rules)</h2>\n"
           "<p class=\"muted\">A forbid rule overrides every permit.</p>\n<table "
           "class=\"forbids\"><thead><tr><th>規則</th><th>対象</th><th>条件</th><th>法的根拠</th>"
           "<th>理由</th></tr></thead><tbody>\n";
    for (const dsl::Rule& rule : model.rules) {
        if (rule.effect != dsl::ast::Effect::forbid) {
            continue;
        }
        out += "<tr class=\"forbid\" data-rule=\"";
        text(out, rule.id);
        out += "\"><td><code>";
        text(out, rule.id);
        out += "</code><br><span class=\"muted mono\">";
        text(out, policy.rule_source(rule));
        out += "</span></td><td>";
        std::vector<std::string> sensitivities;
        std::vector<std::string> kinds;
        attribute_words(sensitivities, rule.data.attributes, "sensitivity",
                        dsl::sensitivity_spellings);
        attribute_words(kinds, rule.kind.attributes, "", dsl::flow_kind_spellings);
        const std::array<std::pair<std::string_view, std::string>, 5> clauses = {{
            {"purpose", clause_text(rule.purpose, model.purposes, {})},
            {"activity", clause_text(rule.activity, model.activities, {})},
            {"to", recipient_clause(rule.recipient, model)},
            {"data", clause_text(rule.data, model.categories, sensitivities)},
            {"kind", clause_text(rule.kind, model.activities, kinds)},
        }};
        bool first = true;
        for (const auto& [word, clause] : clauses) {
            if (clause.empty()) {
                continue;
            }
            out += first ? "<code>" : "<br><code>";
            first = false;
            text(out, word);
            out += " ";
            text(out, clause);
            out += "</code>";
        }
        out += "</td><td>";
        if (!rule.condition.nodes.empty()) {
            out += "<code>";
            text(out, rule.condition.text);
            out += "</code>";
        }
        out += "</td><td>";
        if (rule.basis != dsl::no_id) {
            text(out, model.grounds[rule.basis].label);
        }
        out += "</td><td>";
        text(out, rule.because);
        out += "</td></tr>\n";
    }
    out += "</tbody></table></section>\n";
}

} // namespace

std::string policy_report_html(const dsl::CompiledPolicy& policy) {
    const dsl::CheckedPolicy& model = policy.model();
    std::size_t forbids = static_cast<std::size_t>(
        std::count_if(model.rules.begin(), model.rules.end(),
                      [](const dsl::Rule& r) { return r.effect == dsl::ast::Effect::forbid; }));

    std::string body;
    CellCounts totals;
    svg::BarChart by_purpose{
        "chart-cells-by-purpose",
        "Matrix cells per purpose",
        {{"allow", "#2e7d32"}, {"conditional", "#ef9f27"}, {"deny", "#c62828"}},
        {}};
    for (Id p = 0; p < model.purposes.size(); ++p) {
        const dsl::Purpose& purpose = model.purposes[p];
        body += "<section class=\"purpose\" id=\"purpose-";
        text(body, purpose.id);
        body += "\"><h2>";
        text(body, purpose.label);
        body += " <code class=\"muted\">";
        text(body, purpose.id);
        body += "</code></h2>\n";
        for (const Section& section : sections) {
            activity_table(body, policy, purpose, section);
        }
        PurposeMatrix matrix = purpose_matrix(policy, p);
        CellCounts counts;
        if (!matrix.cells.empty()) {
            matrix_table(body, policy, purpose, matrix, counts);
        }
        totals.allow += counts.allow;
        totals.conditional += counts.conditional;
        totals.deny += counts.deny;
        by_purpose.bars.push_back(
            {purpose.label,
             {static_cast<double>(counts.allow), static_cast<double>(counts.conditional),
              static_cast<double>(counts.deny)}});
        body += "</section>\n";
    }

    svg::BarChart by_kind{
        "chart-activities-by-kind", "Activities per flow kind", {{"activities", "#1565c0"}}, {}};
    for (const auto& spelling : dsl::flow_kind_spellings) {
        auto count =
            std::count_if(model.activities.begin(), model.activities.end(),
                          [&](const dsl::Activity& a) { return a.kind == spelling.value; });
        by_kind.bars.push_back(
            {std::string(kind_label(spelling.value)) + " (" + std::string(spelling.word) + ")",
             {static_cast<double>(count)}});
    }

    std::string out = html::page_begin("個人情報取扱事例 — flowgate policy " + policy.hash());
    out += "<header><h1>個人情報の取扱事例 (the policy as enforced)</h1>\n<p>Policy <code "
           "id=\"policy-hash\">";
    text(out, policy.hash());
    out += "</code>, built from:</p>\n<ul id=\"policy-files\">";
    for (const dsl::PolicyText& file : policy.texts()) {
        out += "<li><code>";
        text(out, file.name);
        out += "</code> <span class=\"muted\">(" + std::to_string(file.text.size()) +
               " bytes)</span></li>";
    }
    out += "</ul>\n<p class=\"muted\">Every matrix cell below is the answer the evaluator gives "
           "to a check of that one category to that recipient under the purpose, with no "
           "activity named: ○ allowed as asked, △ allowed only with the context shown "
           "(consent on record, or a legal ground relied on), × denied whatever the context. "
           "The rule that decides is named; hover a cell for the reason.</p>\n</header>\n";
    out += "<div class=\"figures\">";
    figure(out, "purposes", "purposes", model.purposes.size());
    figure(out, "activities", "activities", model.activities.size());
    figure(out, "rules", "rules", model.rules.size());
    figure(out, "permits", "permit rules", model.rules.size() - forbids);
    figure(out, "forbids", "forbid rules", forbids);
    figure(out, "parties", "parties", model.parties.size());
    figure(out, "categories", "data categories", model.categories.size());
    figure(out, "cells-allow", "cells allowed", totals.allow);
    figure(out, "cells-conditional", "cells conditional", totals.conditional);
    figure(out, "cells-deny", "cells denied", totals.deny);
    out += "</div>\n<figure><figcaption>";
    text(out, by_kind.title);
    out += "</figcaption>";
    out += svg::horizontal_bars(by_kind);
    out += "</figure>\n<figure><figcaption>";
    text(out, by_purpose.title);
    out += " (○ allow, △ conditional, × deny)</figcaption>";
    out += svg::horizontal_bars(by_purpose);
    out += "</figure>\n<nav><h2>利用目的 (purposes)</h2><ol>";
    for (const dsl::Purpose& purpose : model.purposes) {
        out += "<li><a href=\"#purpose-";
        text(out, purpose.id);
        out += "\">";
        text(out, purpose.label);
        out += "</a></li>";
    }
    out += "</ol></nav>\n";
    out += body;
    forbid_table(out, policy);
    out += "<section id=\"categories\"><h2>データ区分 (data categories)</h2><table><thead><tr>"
           "<th>id</th><th>名称</th><th>sensitivity</th></tr></thead><tbody>";
    for (const dsl::Category& category : model.categories) {
        out += "<tr><td><code>";
        text(out, category.id);
        out += "</code></td><td>";
        category_name(out, category);
        out += "</td><td>";
        text(out, dsl::to_string(category.sensitivity));
        out += "</td></tr>";
    }
    out += "</tbody></table></section>\n";
    out += html::page_end();
    return out;
}

} // namespace flowgate::cli

namespace flowgate::cli {

bool write_report_file(const std::string& path, const std::string& page) {
    if (path == "-") {
        std::cout << page;
        return static_cast<bool>(std::cout.flush());
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << page;
    out.close();
    if (!out) {
        std::cerr << path << ": error: cannot write the report\n";
        return false;
    }
    return true;
}

} // namespace flowgate::cli
