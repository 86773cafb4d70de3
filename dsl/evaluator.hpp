// The decision function: a pure function of (compiled policy, request). It does no
// I/O, takes no lock and, on the allow path, does not allocate: everything an allow
// reports points into the compiled policy, which must outlive the decision. (A name
// written otherwise than declared, full-width or with white space, is folded first, and
// folding allocates; identifiers and labels as declared are found as they are.) Deny
// reasons are formatted text, and a deny says what would do instead (suggestions, the
// context that would allow), which costs a few more lookups and decisions.
#pragma once

#include "compiler.hpp"

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowgate::dsl {

enum class Direction : std::uint8_t { send, receive };

struct RequestContext {
    bool consent = false;                   // consent on record
    bool objection = false;                 // an objection on file
    std::optional<std::string> legal_basis; // a ground's identifier or label
};

// A check as the wire protocol states it; names are identifiers or labels.
struct Request {
    std::string purpose;
    std::optional<std::string> activity;
    std::string recipient; // the sender when direction is receive
    std::vector<std::string> data;
    Direction direction = Direction::send;
    std::string subject;
    RequestContext context;
};

// One rule the evaluation looked at, for one (activity, category), and its verdict.
struct TraceStep {
    const Rule* rule = nullptr;
    std::string_view activity; // identifier; empty when the request has none
    std::string_view category; // identifier
    bool matched = false;      // every clause matched and the condition held
    std::string why;
};

// The rules an evaluation looked at, in order. Past `max_steps` the evaluation records
// no step and decides by the index (the same rule a scan picks), counting in `omitted`
// the steps it would have recorded: the work and memory of a trace are bounded.
struct Trace {
    std::vector<TraceStep> steps;
    std::size_t max_steps = std::numeric_limits<std::size_t>::max();
    std::size_t omitted = 0;
};

// A name a denied request could give instead of one of its own: for an unknown name, the
// nearest declared names of its kind (by edit distance on the folded text; for a made-up
// member of a class, that class's members); for a recipient that no activity of the
// purpose takes, the recipients it does take. Views into the compiled policy.
struct Suggestion {
    std::string_view field; // the request field: "purpose", "activity", "recipient", "data"
                            // or "context.legal_basis"
    std::string_view id;
    std::string_view label;
};

// The context that would have allowed a request that a condition denied: the fewest
// changes to its `consent`, `objection` and `legal_basis`; only the changed values are set.
struct ContextChange {
    std::optional<bool> consent;
    std::optional<bool> objection;
    bool legal_basis_changed = false;
    const Ground* legal_basis = nullptr; // when changed: the ground, or null for none
    bool operator==(const ContextChange&) const = default;
};

struct Decision {
    bool allowed = false;
    const Rule* rule = nullptr;                // the deciding rule, if any
    const Ground* legal_basis = nullptr;       // that rule's basis
    const Activity* activity = nullptr;        // the activity that decided, if any
    const Category* failed_category = nullptr; // on a deny caused by one category
    boost::container::small_vector<const Obligation*, 8> obligations; // on allow
    std::string_view policy_hash;
    const CompiledPolicy* policy = nullptr; // the policy that decided
    // On a deny only: what would do instead. The reason says the same in words.
    std::vector<Suggestion> suggestions;
    std::optional<ContextChange> satisfying_context;

    std::string_view reason() const {
        return formatted_reason.empty() ? fixed_reason : std::string_view(formatted_reason);
    }

    // Use reason(); an allow sets only the view, a deny usually the text.
    std::string_view fixed_reason;
    std::string formatted_reason;
};

Decision evaluate(const CompiledPolicy& policy, const Request& request, Trace* trace = nullptr);

// A request's names resolved to the policy's ids: with the policy, all a decision
// depends on (the subject is not among it).
struct ResolvedRequest {
    Id purpose = no_id;
    bool named_activity = false; // the request names an activity: `activity`
    Id activity = no_id;
    Id recipient = no_id;
    boost::container::small_vector<Id, 8> categories; // in the request's order
    Direction direction = Direction::send;
    bool consent = false;
    bool objection = false;
    Id ground = no_id;
    bool operator==(const ResolvedRequest&) const = default;
};

// evaluate() in two steps: resolve() the names (nullopt, and the deny in `denied`,
// when one is unknown), then decide() on the ids.
std::optional<ResolvedRequest> resolve(const CompiledPolicy& policy, const Request& request,
                                       Decision& denied);
Decision decide(const CompiledPolicy& policy, const ResolvedRequest& request,
                Trace* trace = nullptr);

// Decisions of one policy by resolved request, for a caller that asks the same
// questions again and again (the daemon: services ask about the same flows for each
// data subject). Bounded: full, it starts over. A new policy empties it. Not
// thread-safe; no trace (explain evaluates afresh).
class DecisionCache {
public:
    explicit DecisionCache(std::size_t capacity = 4096) : m_capacity(capacity) {}

    // The decision evaluate() would return; valid until the next call.
    const Decision& evaluate(const std::shared_ptr<const CompiledPolicy>& policy,
                             const Request& request);
    // The decision decide() would return, for a request resolved against `policy`.
    const Decision& decide(const std::shared_ptr<const CompiledPolicy>& policy,
                           const ResolvedRequest& request);

    std::size_t size() const { return m_decisions.size(); }
    std::uint64_t hits() const { return m_hits; }

private:
    struct KeyHash {
        std::size_t operator()(const ResolvedRequest& key) const noexcept;
    };
    std::size_t m_capacity;
    std::shared_ptr<const CompiledPolicy> m_policy;
    std::unordered_map<ResolvedRequest, Decision, KeyHash> m_decisions;
    Decision m_denied; // the last request whose names did not resolve
    std::uint64_t m_hits = 0;
};

// True when the condition holds for the given context values (`ground` may be no_id).
bool condition_holds(const Condition& condition, bool consent, bool objection, Id ground);

} // namespace flowgate::dsl
