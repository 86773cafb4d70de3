// The decision semantics of docs/policy-language.md ("Decisions") over the compiled
// index. Without a trace it reads only the index buckets the request's keys select;
// with a trace it walks every rule of the request's purpose so the trace can say why
// each did not apply, until the trace is full, then reads the index again. Both pick
// the same rule: the first in declaration order.
#include "evaluator.hpp"

#include "names.hpp"

#include <algorithm>

namespace flowgate::dsl {

namespace {

std::uint32_t bit(std::uint8_t value) {
    return 1u << value;
}

bool eval_node(const Condition& condition, std::uint32_t index, bool consent, bool objection,
               Id ground) {
    const ConditionNode& node = condition.nodes[index];
    switch (node.op) {
    case ConditionNode::Op::consent:
        return consent;
    case ConditionNode::Op::objection:
        return objection;
    case ConditionNode::Op::legal_basis:
        return ground != no_id;
    case ConditionNode::Op::legal_basis_in:
        return ground != no_id &&
               std::binary_search(node.grounds.begin(), node.grounds.end(), ground);
    case ConditionNode::Op::negate:
        return !eval_node(condition, node.operands[0], consent, objection, ground);
    case ConditionNode::Op::all:
        return std::all_of(node.operands.begin(), node.operands.end(), [&](std::uint32_t o) {
            return eval_node(condition, o, consent, objection, ground);
        });
    case ConditionNode::Op::any:
        return std::any_of(node.operands.begin(), node.operands.end(), [&](std::uint32_t o) {
            return eval_node(condition, o, consent, objection, ground);
        });
    }
    return false;
}

// The request's resolved values for one (activity, category) evaluation.
struct Point {
    Id purpose = no_id;
    Id activity = no_id;
    Id recipient = no_id;
    Id category = no_id;
    std::uint32_t kind_bit = 0;
    std::uint32_t role_bit = 0;
    std::uint32_t sensitivity_bit = 0;
    bool consent = false;
    bool objection = false;
    Id ground = no_id;
};

// The first clause of `rule` that does not match `point`, or nullptr. `known` has the
// bits of the index key pattern the rule was found under (1 purpose, 2 activity,
// 4 recipient, 8 category): a rule is filed under a concrete value only when its clause
// lists that value, so those clauses need no second look.
const char* failing_clause(const Rule& rule, const Point& point, std::uint8_t known = 0) {
    if ((known & 1) == 0 && !rule.purpose.matches(point.purpose, 0)) {
        return "purpose";
    }
    if ((known & 2) == 0 && !rule.activity.matches(point.activity, 0)) {
        return "activity";
    }
    if ((known & 4) == 0 && !rule.recipient.matches(point.recipient, point.role_bit)) {
        return "to";
    }
    if ((known & 8) == 0 && !rule.data.matches(point.category, point.sensitivity_bit)) {
        return "data";
    }
    if (!rule.kind.matches(no_id, point.kind_bit)) {
        return "kind";
    }
    return nullptr;
}

enum class Verdict : std::uint8_t { permitted, forbidden, unmet, unmatched };

struct CategoryOutcome {
    Verdict verdict = Verdict::unmatched;
    const Rule* rule = nullptr; // the forbid, the permit, or the closest unmet permit
};

class Evaluation {
public:
    // A trace, when given, is of rules of `purpose` only.
    Evaluation(const CompiledPolicy& policy, Trace* trace, Id purpose)
        : m_policy(policy), m_rules(policy.model().rules), m_trace(trace) {
        if (trace != nullptr) {
            m_steps_per_point = static_cast<std::size_t>(
                std::count_if(m_rules.begin(), m_rules.end(),
                              [purpose](const Rule& rule) { return in_trace(rule, purpose); }));
        }
    }

    CategoryOutcome decide(const Point& point) const {
        if (m_trace != nullptr) {
            if (m_trace->steps.size() < m_trace->max_steps) {
                return decide_by_scan(point);
            }
            // The trace is full: the steps a scan would add are only counted.
            m_trace->omitted += m_steps_per_point;
        }
        Id forbid = first_match(m_policy.forbids(), point, true);
        if (forbid != no_id) {
            return {Verdict::forbidden, &m_rules[forbid]};
        }
        Id unmet = no_id;
        Id permit = first_match(m_policy.permits(), point, true, &unmet);
        if (permit != no_id) {
            return {Verdict::permitted, &m_rules[permit]};
        }
        if (unmet != no_id) {
            return {Verdict::unmet, &m_rules[unmet]};
        }
        return {};
    }

private:
    // Rules of other purposes are not worth a line of a trace.
    static bool in_trace(const Rule& rule, Id purpose) { return rule.purpose.matches(purpose, 0); }

    // The lowest-numbered rule of `index` that matches `point` and whose condition
    // holds; `unmet` receives the lowest that matches but whose condition fails.
    Id first_match(const RuleIndex& index, const Point& point, bool need_condition,
                   Id* unmet = nullptr) const {
        Id best = no_id;
        for (std::uint8_t pattern : index.patterns()) {
            RuleKey key{(pattern & 1) != 0 ? point.purpose : no_id,
                        (pattern & 2) != 0 ? point.activity : no_id,
                        (pattern & 4) != 0 ? point.recipient : no_id,
                        (pattern & 8) != 0 ? point.category : no_id};
            for (Id id : index.find(key)) {
                if (id >= best) {
                    break; // buckets are ascending
                }
                const Rule& rule = m_rules[id];
                if (failing_clause(rule, point, pattern) != nullptr) {
                    continue;
                }
                if (!need_condition || holds(rule, point)) {
                    best = id;
                } else if (unmet != nullptr && id < *unmet) {
                    *unmet = id;
                }
            }
        }
        return best;
    }

    static bool holds(const Rule& rule, const Point& point) {
        return condition_holds(rule.condition, point.consent, point.objection, point.ground);
    }

    static std::string why(const Rule& rule, const char* failed_clause, bool matched) {
        if (failed_clause != nullptr) {
            return std::string("'") + failed_clause + "' does not match";
        }
        if (!matched) {
            return "condition not met: " + rule.condition.text;
        }
        return rule.condition.nodes.empty()
                   ? "all clauses match"
                   : "all clauses match and " + rule.condition.text + " holds";
    }

    // Every rule of the purpose, each a step while the trace has room. Once it is full
    // the scan goes on (it decides this point) and only counts the steps.
    CategoryOutcome decide_by_scan(const Point& point) const {
        const CheckedPolicy& model = m_policy.model();
        std::string_view activity =
            point.activity == no_id ? std::string_view() : model.activities[point.activity].id;
        std::string_view category = model.categories[point.category].id;
        CategoryOutcome forbidden;
        CategoryOutcome permitted;
        CategoryOutcome unmet;
        for (const Rule& rule : m_rules) {
            if (!in_trace(rule, point.purpose)) {
                continue;
            }
            const char* clause = failing_clause(rule, point);
            bool matched = false;
            if (clause == nullptr && !holds(rule, point)) {
                if (rule.effect == ast::Effect::permit && unmet.rule == nullptr) {
                    unmet = {Verdict::unmet, &rule};
                }
            } else if (clause == nullptr) {
                matched = true;
                CategoryOutcome& slot = rule.effect == ast::Effect::forbid ? forbidden : permitted;
                if (slot.rule == nullptr) {
                    slot = {rule.effect == ast::Effect::forbid ? Verdict::forbidden
                                                               : Verdict::permitted,
                            &rule};
                }
            }
            if (m_trace->steps.size() < m_trace->max_steps) {
                m_trace->steps.push_back(
                    TraceStep{&rule, activity, category, matched, why(rule, clause, matched)});
            } else {
                ++m_trace->omitted;
            }
        }
        if (forbidden.rule != nullptr) {
            return forbidden;
        }
        if (permitted.rule != nullptr) {
            return permitted;
        }
        return unmet;
    }

    const CompiledPolicy& m_policy;
    const std::vector<Rule>& m_rules;
    Trace* m_trace;
    std::size_t m_steps_per_point = 0; // the steps a scan records for one point
};

std::string quoted(std::string_view text) {
    return "'" + std::string(text) + "'";
}

Decision deny(Decision decision, std::string reason) {
    decision.allowed = false;
    decision.formatted_reason = std::move(reason);
    return decision;
}

// How good a deny reason is, when several activities were tried: a forbid explains
// most, then a permit whose condition failed, then "nothing permits".
int rank(Verdict verdict) {
    switch (verdict) {
    case Verdict::forbidden:
        return 0;
    case Verdict::unmet:
        return 1;
    default:
        return 2;
    }
}

struct ActivityOutcome {
    bool allowed = false;
    Id activity = no_id;
    Id failed_category = no_id;
    CategoryOutcome failure;
};

// --- what a deny suggests ---------------------------------------------------------------

constexpr std::size_t max_suggestions = 3;
constexpr std::size_t max_member_suggestions = 10;

struct Ranked {
    Id id = no_id;
    std::size_t distance = 0;
};

// The ids of `index` whose nearest name is near `given` (names.hpp's name_distance),
// nearest first, ties in id order; `keep` filters the ids.
template <typename Keep>
std::vector<Ranked> rank_names(const NameIndex& index, std::string_view given, Keep keep) {
    const std::u32string folded = code_points(fold_name(given));
    std::vector<Ranked> ranked;
    for (const NameIndex::Entry& entry : index.entries()) {
        if (!keep(entry.value)) {
            continue;
        }
        std::optional<std::size_t> distance = name_distance(folded, entry.folded);
        if (!distance) {
            continue;
        }
        auto same = std::find_if(ranked.begin(), ranked.end(),
                                 [&](const Ranked& r) { return r.id == entry.value; });
        if (same == ranked.end()) {
            ranked.push_back({entry.value, *distance});
        } else {
            same->distance = std::min(same->distance, *distance);
        }
    }
    std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
        return std::tie(a.distance, a.id) < std::tie(b.distance, b.id);
    });
    return ranked;
}

template <typename Items>
void suggest(Decision& decision, std::string_view field, const std::vector<Ranked>& ranked,
             const Items& items, std::size_t count = max_suggestions) {
    for (std::size_t i = 0; i < ranked.size() && i < count; ++i) {
        decision.suggestions.push_back({field, items[ranked[i].id].id, items[ranked[i].id].label});
    }
}

// The class a party is a member of (the first declared), or no_id.
Id class_of(const CheckedPolicy& model, Id party) {
    for (Id c = 0; c < model.parties.size(); ++c) {
        const std::vector<Id>& members = model.parties[c].members;
        if (model.parties[c].is_class &&
            std::binary_search(members.begin(), members.end(), party)) {
            return c;
        }
    }
    return no_id;
}

// An unknown recipient's suggestions: the nearest parties, or, when the nearest is a
// class or one of its members (the request made a member up), that class's members.
void suggest_parties(const CompiledPolicy& policy, std::string_view given, Decision& decision) {
    const CheckedPolicy& model = policy.model();
    auto all = [](Id) {
        return true;
    };
    std::vector<Ranked> ranked = rank_names(policy.party_names(), given, all);
    if (ranked.empty()) {
        return;
    }
    Id nearest = ranked.front().id;
    Id owner = model.parties[nearest].is_class ? nearest : class_of(model, nearest);
    if (owner == no_id || model.parties[owner].members.empty()) {
        suggest(decision, "recipient", ranked, model.parties);
        return;
    }
    const std::vector<Id>& members = model.parties[owner].members;
    std::vector<Ranked> ranked_members = rank_names(policy.party_names(), given, [&](Id id) {
        return std::binary_search(members.begin(), members.end(), id);
    });
    for (Id member : members) { // members with nothing in common last, in id order
        if (std::none_of(ranked_members.begin(), ranked_members.end(),
                         [&](const Ranked& r) { return r.id == member; })) {
            ranked_members.push_back({member, 0});
        }
    }
    suggest(decision, "recipient", ranked_members, model.parties, max_member_suggestions);
}

// "; nearest: prevent \"(株)PREVENT\", jmdc \"(株)JMDC\"", or nothing without suggestions.
std::string suggestions_text(const Decision& decision, std::string_view lead) {
    std::string out;
    for (const Suggestion& suggestion : decision.suggestions) {
        out += out.empty() ? lead : ", ";
        out += suggestion.id;
        if (!suggestion.label.empty()) {
            out += " \"";
            out += suggestion.label;
            out += '"';
        }
    }
    return out;
}

// Whether `activity` (no_id: a purpose without activities) lists `recipient`, itself or
// as a member of a listed class.
bool takes(const CheckedPolicy& model, Id activity, Id recipient) {
    if (activity == no_id) {
        return true;
    }
    for (Id party : model.activities[activity].recipients) {
        const std::vector<Id>& members = model.parties[party].members;
        if (party == recipient || std::binary_search(members.begin(), members.end(), recipient)) {
            return true;
        }
    }
    return false;
}

// The recipients `activities` list, each once, in their order.
std::vector<Id> recipients_of(const CheckedPolicy& model, const std::vector<Id>& activities) {
    std::vector<Id> listed;
    for (Id activity : activities) {
        for (Id party : model.activities[activity].recipients) {
            if (std::find(listed.begin(), listed.end(), party) == listed.end()) {
                listed.push_back(party);
            }
        }
    }
    return listed;
}

// "consent: true, legal_basis: appi_27_1_1": the changed values, in the context's order.
std::string context_text(const ContextChange& change) {
    std::string out;
    auto add = [&out](std::string_view key, std::string_view value) {
        out += out.empty() ? "" : ", ";
        out += key;
        out += ": ";
        out += value;
    };
    if (change.consent) {
        add("consent", *change.consent ? "true" : "false");
    }
    if (change.objection) {
        add("objection", *change.objection ? "true" : "false");
    }
    if (change.legal_basis_changed) {
        add("legal_basis",
            change.legal_basis == nullptr ? std::string_view("none") : change.legal_basis->id);
    }
    return out;
}

Decision decide_with(const CompiledPolicy& policy, const ResolvedRequest& request, Trace* trace,
                     bool help);

// The context with the fewest changes to the request's that allows it by turning the
// deciding rule's condition (a permit's that failed, a forbid's that held), if one does.
// Among as many changes, consent comes first, then each legal ground the policy's
// conditions test (in declaration order), then the objection: the context space is
// small (two booleans and the tested grounds), and only the contexts that turn the
// condition cost a decision.
std::optional<ContextChange> satisfying_context(const CompiledPolicy& policy,
                                                const ResolvedRequest& request,
                                                const Rule& deciding) {
    std::vector<Id> grounds{request.ground};
    for (Id ground : policy.tested_grounds()) {
        if (ground != request.ground) {
            grounds.push_back(ground);
        }
    }
    if (request.ground != no_id) {
        grounds.push_back(no_id);
    }
    struct Candidate {
        int changes = 0;
        bool consent = false;
        bool objection = false;
        Id ground = no_id;
    };
    std::vector<Candidate> candidates;
    for (bool objection : {request.objection, !request.objection}) {
        for (Id ground : grounds) {
            for (bool consent : {request.consent, !request.consent}) {
                int changes = (consent != request.consent ? 1 : 0) +
                              (objection != request.objection ? 1 : 0) +
                              (ground != request.ground ? 1 : 0);
                if (changes != 0) {
                    candidates.push_back({changes, consent, objection, ground});
                }
            }
        }
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.changes < b.changes; });
    for (const Candidate& candidate : candidates) {
        // A context that leaves the deciding rule as it was cannot change the decision:
        // not worth a decision.
        bool permit = deciding.effect == ast::Effect::permit;
        if (condition_holds(deciding.condition, candidate.consent, candidate.objection,
                            candidate.ground) != permit) {
            continue;
        }
        ResolvedRequest changed = request;
        changed.consent = candidate.consent;
        changed.objection = candidate.objection;
        changed.ground = candidate.ground;
        if (!decide_with(policy, changed, nullptr, false).allowed) {
            continue;
        }
        ContextChange change;
        if (candidate.consent != request.consent) {
            change.consent = candidate.consent;
        }
        if (candidate.objection != request.objection) {
            change.objection = candidate.objection;
        }
        if (candidate.ground != request.ground) {
            change.legal_basis_changed = true;
            change.legal_basis =
                candidate.ground == no_id ? nullptr : &policy.model().grounds[candidate.ground];
        }
        return change;
    }
    return std::nullopt;
}

} // namespace

bool condition_holds(const Condition& condition, bool consent, bool objection, Id ground) {
    if (condition.nodes.empty()) {
        return true;
    }
    return eval_node(condition, static_cast<std::uint32_t>(condition.nodes.size() - 1), consent,
                     objection, ground);
}

std::optional<ResolvedRequest> resolve(const CompiledPolicy& policy, const Request& request,
                                       Decision& denied) {
    denied = Decision{};
    denied.policy_hash = policy.hash();
    denied.policy = &policy;
    // An unknown name denies, with the nearest declared names of its kind: in the
    // answer's suggestions and at the end of the reason.
    auto refuse = [&](std::string reason) -> std::optional<ResolvedRequest> {
        reason += suggestions_text(denied, "; nearest: ");
        denied = deny(std::move(denied), std::move(reason));
        return std::nullopt;
    };
    const CheckedPolicy& model = policy.model();
    auto all = [](Id) {
        return true;
    };
    ResolvedRequest resolved;
    resolved.direction = request.direction;
    resolved.purpose = policy.find_purpose(request.purpose);
    if (resolved.purpose == no_id) {
        suggest(denied, "purpose", rank_names(policy.purpose_names(), request.purpose, all),
                model.purposes);
        return refuse("unknown purpose " + quoted(request.purpose));
    }
    resolved.recipient = policy.find_party(request.recipient);
    if (resolved.recipient == no_id) {
        suggest_parties(policy, request.recipient, denied);
        return refuse(
            (request.direction == Direction::receive ? "unknown sender " : "unknown recipient ") +
            quoted(request.recipient));
    }
    if (request.data.empty()) {
        return refuse("no data category named");
    }
    for (const std::string& name : request.data) {
        Id category = policy.find_category(name);
        if (category == no_id) {
            suggest(denied, "data", rank_names(policy.category_names(), name, all),
                    model.categories);
            return refuse("unknown data category " + quoted(name));
        }
        resolved.categories.push_back(category);
    }
    if (request.context.legal_basis) {
        resolved.ground = policy.find_ground(*request.context.legal_basis);
        if (resolved.ground == no_id) {
            suggest(denied, "context.legal_basis",
                    rank_names(policy.ground_names(), *request.context.legal_basis, all),
                    model.grounds);
            return refuse("unknown legal basis " + quoted(*request.context.legal_basis));
        }
    }
    resolved.consent = request.context.consent;
    resolved.objection = request.context.objection;
    if (request.activity) {
        resolved.named_activity = true;
        resolved.activity = policy.find_activity(resolved.purpose, *request.activity);
        if (resolved.activity == no_id) {
            suggest(denied, "activity",
                    rank_names(policy.activity_names(resolved.purpose), *request.activity, all),
                    model.activities);
            return refuse("unknown activity " + quoted(*request.activity) + " in purpose " +
                          quoted(model.purposes[resolved.purpose].id));
        }
    }
    return resolved;
}

Decision evaluate(const CompiledPolicy& policy, const Request& request, Trace* trace) {
    Decision denied;
    std::optional<ResolvedRequest> resolved = resolve(policy, request, denied);
    if (!resolved) {
        return denied;
    }
    return decide(policy, *resolved, trace);
}

namespace {

// What decide() says; with `help`, a deny also says what would do instead (the
// recipients the purpose takes, the context a condition needs), which costs more
// decisions, without a trace.
Decision decide_with(const CompiledPolicy& policy, const ResolvedRequest& request, Trace* trace,
                     bool help) {
    const CheckedPolicy& model = policy.model();
    Decision decision;
    decision.policy_hash = policy.hash();
    decision.policy = &policy;

    Point point;
    point.purpose = request.purpose;
    point.recipient = request.recipient;
    point.role_bit = bit(static_cast<std::uint8_t>(model.parties[point.recipient].role));
    const auto& categories = request.categories;
    point.ground = request.ground;
    point.consent = request.consent;
    point.objection = request.objection;

    const Purpose& purpose = model.purposes[point.purpose];
    Evaluation evaluation(policy, trace, point.purpose);
    bool inbound = request.direction == Direction::receive;

    // Every category of one activity: stops at the first that is not permitted. An
    // allow leaves the first category's permit and every permit's obligations in
    // `decision`.
    auto try_activity = [&](Id activity) {
        decision.rule = nullptr;
        decision.obligations.clear();
        point.activity = activity;
        point.kind_bit =
            activity == no_id ? 0 : bit(static_cast<std::uint8_t>(model.activities[activity].kind));
        for (Id category : categories) {
            point.category = category;
            point.sensitivity_bit =
                bit(static_cast<std::uint8_t>(model.categories[category].sensitivity));
            CategoryOutcome result = evaluation.decide(point);
            if (result.verdict != Verdict::permitted) {
                return ActivityOutcome{false, activity, category, result};
            }
            if (decision.rule == nullptr) {
                decision.rule = result.rule;
            }
            for (Id o : result.rule->obligations) {
                const Obligation* obligation = &model.obligations[o];
                if (std::find(decision.obligations.begin(), decision.obligations.end(),
                              obligation) == decision.obligations.end()) {
                    decision.obligations.push_back(obligation);
                }
            }
        }
        return ActivityOutcome{true, activity, no_id, {}};
    };

    std::optional<ActivityOutcome> chosen;
    std::optional<ActivityOutcome> best_deny;
    // Of the denies, the one of an activity that takes the recipient explains most; a
    // forbid there before a permit whose condition failed, before "nothing permits".
    auto score = [&](const ActivityOutcome& outcome) {
        return (takes(model, outcome.activity, point.recipient) ? 0 : 3) +
               rank(outcome.failure.verdict);
    };
    auto consider = [&](const ActivityOutcome& outcome) {
        if (outcome.allowed) {
            chosen = outcome;
        } else if (!best_deny || score(outcome) < score(*best_deny)) {
            best_deny = outcome;
        }
    };

    if (request.named_activity) {
        Id activity = request.activity;
        bool receives = model.activities[activity].kind == FlowKind::receive;
        if (receives != inbound) {
            decision.activity = &model.activities[activity];
            return deny(std::move(decision),
                        "activity " + quoted(model.activities[activity].id) +
                            (receives ? " is an inbound flow (kind receive) and needs direction "
                                        "receive"
                                      : " is an outbound flow and needs direction send"));
        }
        consider(try_activity(activity));
    } else if (purpose.activities.empty()) {
        consider(try_activity(no_id));
    } else {
        for (Id activity : purpose.activities) {
            if ((model.activities[activity].kind == FlowKind::receive) != inbound) {
                continue;
            }
            consider(try_activity(activity));
            if (chosen) {
                break;
            }
        }
        if (!chosen && !best_deny) {
            return deny(std::move(decision), "purpose " + quoted(purpose.id) +
                                                 " has no activity for direction " +
                                                 (inbound ? "receive" : "send"));
        }
    }

    if (chosen) {
        decision.allowed = true;
        decision.activity =
            chosen->activity == no_id ? nullptr : &model.activities[chosen->activity];
        decision.legal_basis =
            decision.rule->basis == no_id ? nullptr : &model.grounds[decision.rule->basis];
        decision.fixed_reason = decision.rule->reason;
        return decision;
    }

    const ActivityOutcome& failed = *best_deny;
    const Category& category = model.categories[failed.failed_category];
    decision.failed_category = &category;
    decision.activity = failed.activity == no_id ? nullptr : &model.activities[failed.activity];
    decision.rule = failed.failure.rule;
    decision.obligations.clear();
    std::string prefix = "data " + quoted(category.id) + ": ";
    std::string reason;
    if (!takes(model, failed.activity, point.recipient)) {
        // No activity tried takes this recipient at all (the best deny would be one that
        // does): say which recipients they take. No category is to blame.
        std::vector<Id> tried;
        if (request.named_activity) {
            tried.push_back(request.activity);
        } else {
            for (Id activity : purpose.activities) {
                if ((model.activities[activity].kind == FlowKind::receive) == inbound) {
                    tried.push_back(activity);
                }
            }
        }
        const std::string who = quoted(model.parties[point.recipient].id);
        std::string_view lead;
        if (request.named_activity) {
            reason = "activity " + quoted(model.activities[request.activity].id) +
                     (inbound ? " does not receive from " : " does not send to ") + who;
            lead = inbound ? "; it receives from: " : "; it sends to: ";
        } else {
            reason = "no activity of purpose " + quoted(purpose.id) +
                     (inbound ? " receives from " : " sends to ") + who;
            lead = inbound ? "; its activities receive from: " : "; its activities send to: ";
        }
        for (Id party : recipients_of(model, tried)) {
            decision.suggestions.push_back(
                {"recipient", model.parties[party].id, model.parties[party].label});
        }
        decision.activity = nullptr;
        decision.rule = nullptr;
        decision.failed_category = nullptr;
        return deny(std::move(decision), reason + suggestions_text(decision, lead));
    }
    switch (failed.failure.verdict) {
    case Verdict::forbidden:
        decision.legal_basis =
            decision.rule->basis == no_id ? nullptr : &model.grounds[decision.rule->basis];
        reason = prefix + decision.rule->reason;
        break;
    case Verdict::unmet:
        reason = prefix + "requires " + decision.rule->condition.text + " (rule " +
                 quoted(decision.rule->id) + ")";
        break;
    default: {
        std::string where =
            decision.activity == nullptr ? "" : " in activity " + quoted(decision.activity->id);
        reason = prefix + "no rule permits this flow to " +
                 quoted(model.parties[point.recipient].id) + where;
        break;
    }
    }
    bool context_matters =
        failed.failure.verdict == Verdict::unmet ||
        (failed.failure.verdict == Verdict::forbidden && !decision.rule->condition.nodes.empty());
    if (help && context_matters) {
        decision.satisfying_context = satisfying_context(policy, request, *decision.rule);
        if (decision.satisfying_context) {
            reason += "; allowed with context " + context_text(*decision.satisfying_context);
        }
    }
    return deny(std::move(decision), std::move(reason));
}

} // namespace

Decision decide(const CompiledPolicy& policy, const ResolvedRequest& request, Trace* trace) {
    return decide_with(policy, request, trace, true);
}

std::size_t DecisionCache::KeyHash::operator()(const ResolvedRequest& key) const noexcept {
    std::size_t h = 0;
    auto mix = [&h](std::size_t value) {
        h = (h ^ value) * 0x100000001b3ULL;
    };
    mix(key.purpose);
    mix(key.named_activity ? key.activity : 0xffffffffULL);
    mix(key.recipient);
    for (Id category : key.categories) {
        mix(category);
    }
    mix(static_cast<std::size_t>(key.direction) | (key.consent ? 2U : 0U) |
        (key.objection ? 4U : 0U));
    mix(key.ground);
    return h;
}

const Decision& DecisionCache::evaluate(const std::shared_ptr<const CompiledPolicy>& policy,
                                        const Request& request) {
    std::optional<ResolvedRequest> resolved = resolve(*policy, request, m_denied);
    if (!resolved) {
        return m_denied;
    }
    return decide(policy, *resolved);
}

const Decision& DecisionCache::decide(const std::shared_ptr<const CompiledPolicy>& policy,
                                      const ResolvedRequest& request) {
    if (policy != m_policy) {
        m_decisions.clear();
        m_policy = policy;
    }
    auto found = m_decisions.find(request);
    if (found != m_decisions.end()) {
        ++m_hits;
        return found->second;
    }
    if (m_decisions.size() >= m_capacity) {
        m_decisions.clear();
    }
    return m_decisions.emplace(request, dsl::decide(*policy, request)).first->second;
}

} // namespace flowgate::dsl
