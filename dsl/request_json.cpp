// Requests from JSON and decisions to JSON; see request_json.hpp.
#include "request_json.hpp"

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>

namespace flowgate::dsl {

namespace json = boost::json;

namespace {

RequestError missing(std::string_view field) {
    return {"missing_field", "missing field '" + std::string(field) + "'"};
}

RequestError mistyped(std::string_view field, std::string_view expected) {
    return {"bad_field_type",
            "field '" + std::string(field) + "' must be " + std::string(expected)};
}

// A present, non-null field, or nullptr.
const json::value* field(const json::object& object, std::string_view name) {
    const json::value* value = object.if_contains(name);
    return value != nullptr && !value->is_null() ? value : nullptr;
}

// Reads a required or optional string field into `out`; an error when mistyped.
std::optional<RequestError> read_string(const json::object& object, std::string_view name,
                                        bool required, std::string& out, bool& present) {
    const json::value* value = field(object, name);
    present = value != nullptr;
    if (value == nullptr) {
        return required ? std::optional<RequestError>(missing(name)) : std::nullopt;
    }
    if (!value->is_string()) {
        return mistyped(name, "a string");
    }
    out = std::string(value->get_string());
    return std::nullopt;
}

std::optional<RequestError> read_bool(const json::object& object, std::string_view name,
                                      std::string_view path, bool& out) {
    const json::value* value = field(object, name);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (!value->is_bool()) {
        return mistyped(path, "true or false");
    }
    out = value->get_bool();
    return std::nullopt;
}

json::value ground_json(const Ground* ground) {
    if (ground == nullptr) {
        return nullptr;
    }
    return json::object{{"id", ground->id}, {"label", ground->label}};
}

json::value rule_json(const Rule* rule) {
    if (rule == nullptr) {
        return nullptr;
    }
    json::value table = nullptr;
    if (rule->source_row) {
        table = json::object{{"row", *rule->source_row}, {"case", rule->source_case}};
    }
    return json::object{
        {"id", rule->id}, {"file", rule->file}, {"line", rule->line}, {"table", table}};
}

// "aliases": the labels `alias` declarations add, when there are any.
void add_aliases(json::object& entry, const std::vector<std::string>& aliases) {
    if (!aliases.empty()) {
        json::array out;
        for (const std::string& alias : aliases) {
            out.emplace_back(alias);
        }
        entry["aliases"] = std::move(out);
    }
}

json::array ids_json(const std::vector<Id>& ids, const auto& table) {
    json::array out;
    for (Id id : ids) {
        out.emplace_back(table[id].id);
    }
    return out;
}

} // namespace

namespace {

RequestError not_an_object() {
    return {"bad_request", "a request must be a JSON object"};
}

// A name `names` gives twice (the same string), if any. The names are compared as
// views, sorted: no name is copied, and nothing is allocated for up to 64 of them.
std::optional<std::string_view> repeated_name(const std::vector<std::string>& names) {
    if (names.size() < 2) {
        return std::nullopt;
    }
    boost::container::small_vector<std::string_view, 64> sorted(names.begin(), names.end());
    std::sort(sorted.begin(), sorted.end());
    auto repeated = std::adjacent_find(sorted.begin(), sorted.end());
    if (repeated == sorted.end()) {
        return std::nullopt;
    }
    return *repeated;
}

// Reads `data` (a string or an array of strings) into `out`. A request naming more
// categories than the limit is refused before its items are read, so its length costs
// nothing past the count.
std::optional<RequestError> read_data(const json::value& data, const RequestLimits& limits,
                                      std::vector<std::string>& out) {
    if (data.is_string()) {
        if (limits.max_categories < 1) {
            return RequestError{"too_many_categories", "field 'data' names 1 category; at most " +
                                                           std::to_string(limits.max_categories) +
                                                           " are allowed"};
        }
        out.emplace_back(data.get_string());
        return std::nullopt;
    }
    if (!data.is_array()) {
        return mistyped("data", "an array of strings");
    }
    const json::array& items = data.get_array();
    if (items.empty()) {
        return RequestError{"bad_field_value", "field 'data' must name at least one category"};
    }
    if (items.size() > limits.max_categories) {
        return RequestError{"too_many_categories",
                            "field 'data' names " + std::to_string(items.size()) +
                                " categories; at most " + std::to_string(limits.max_categories) +
                                " are allowed"};
    }
    out.reserve(items.size());
    for (const json::value& item : items) {
        if (!item.is_string()) {
            return mistyped("data", "an array of strings");
        }
        out.emplace_back(item.get_string());
    }
    if (std::optional<std::string_view> name =
            limits.unique_categories ? repeated_name(out) : std::nullopt) {
        std::string message = "field 'data' names '";
        message += *name;
        message += "' twice";
        return RequestError{"bad_field_value", std::move(message)};
    }
    return std::nullopt;
}

// Reads the check fields of `object` into `request`, or says why they cannot be read.
std::optional<RequestError> read_check_fields(const json::object& object,
                                              const RequestLimits& limits, Request& request) {
    bool present = false;
    if (auto error = read_string(object, "purpose", true, request.purpose, present)) {
        return error;
    }
    std::string activity;
    if (auto error = read_string(object, "activity", false, activity, present)) {
        return error;
    }
    if (present) {
        request.activity = std::move(activity);
    }
    if (auto error = read_string(object, "recipient", true, request.recipient, present)) {
        return error;
    }

    const json::value* data = field(object, "data");
    if (data == nullptr) {
        return missing("data");
    }
    if (auto error = read_data(*data, limits, request.data)) {
        return error;
    }

    std::string direction;
    if (auto error = read_string(object, "direction", false, direction, present)) {
        return error;
    }
    if (present) {
        if (direction == "receive") {
            request.direction = Direction::receive;
        } else if (direction != "send") {
            return RequestError{"bad_field_value",
                                "field 'direction' must be \"send\" or \"receive\""};
        }
    }
    if (auto error = read_string(object, "subject", false, request.subject, present)) {
        return error;
    }

    if (const json::value* context = field(object, "context")) {
        if (!context->is_object()) {
            return mistyped("context", "an object");
        }
        const json::object& fields = context->get_object();
        if (auto error = read_bool(fields, "consent", "context.consent", request.context.consent)) {
            return error;
        }
        if (auto error =
                read_bool(fields, "objection", "context.objection", request.context.objection)) {
            return error;
        }
        if (const json::value* basis = field(fields, "legal_basis")) {
            if (!basis->is_string()) {
                return mistyped("context.legal_basis", "a string");
            }
            request.context.legal_basis = std::string(basis->get_string());
        }
    }
    return std::nullopt;
}

constexpr std::pair<std::string_view, Operation> operations[] = {
    {"check", Operation::check},       {"explain", Operation::explain},
    {"describe", Operation::describe}, {"status", Operation::status},
    {"reload", Operation::reload},
};

std::optional<Operation> operation_named(std::string_view name) {
    for (const auto& [known, operation] : operations) {
        if (name == known) {
            return operation;
        }
    }
    return std::nullopt;
}

} // namespace

RequestParse request_from_json(const json::value& value, const RequestLimits& limits) {
    if (!value.is_object()) {
        return not_an_object();
    }
    return request_from_json(value.get_object(), limits);
}

RequestParse request_from_json(const json::object& object, const RequestLimits& limits) {
    Request request;
    if (auto error = read_check_fields(object, limits, request)) {
        return *error;
    }
    return request;
}

RequestLine request_line_from_json(const json::value* parsed,
                                   const boost::system::error_code& parse_error,
                                   const RequestLimits& limits) {
    RequestLine line;
    if (parsed == nullptr) {
        std::string message = "the request is not valid JSON (UTF-8)";
        if (parse_error) {
            message += ": " + parse_error.message();
        }
        line.refusal = RequestError{"bad_json", std::move(message)};
        return line;
    }
    if (!parsed->is_object()) {
        line.refusal = not_an_object();
        return line;
    }
    const json::object& request = parsed->get_object();
    line.id = request.if_contains("id");
    const json::value* op = request.if_contains("op");
    if (op == nullptr) {
        line.refusal = RequestError{"missing_field", "the request has no \"op\""};
        return line;
    }
    if (!op->is_string()) {
        line.refusal = RequestError{"bad_field_type", "\"op\" must be a string"};
        return line;
    }
    const std::optional<Operation> operation = operation_named(op->get_string());
    if (!operation) {
        line.refusal = RequestError{"unknown_op", "unknown op '" + std::string(op->get_string()) +
                                                      "'; expected check, explain, describe, "
                                                      "status or reload"};
        return line;
    }
    line.op = *operation;
    if (line.op == Operation::check || line.op == Operation::explain) {
        line.refusal = read_check_fields(request, limits, line.fields);
    }
    return line;
}

json::array trace_to_json(const Trace& trace) {
    json::array steps;
    for (const TraceStep& step : trace.steps) {
        json::object entry;
        entry["rule"] = step.rule->id;
        entry["effect"] = step.rule->effect == ast::Effect::permit ? "permit" : "forbid";
        entry["at"] = step.rule->file + ':' + std::to_string(step.rule->line);
        entry["activity"] =
            step.activity.empty() ? json::value(nullptr) : json::value(json::string(step.activity));
        entry["data"] = step.category;
        entry["matched"] = step.matched;
        entry["why"] = step.why;
        steps.push_back(std::move(entry));
    }
    return steps;
}

json::object decision_to_json(const Decision& decision, const json::value& id, const Trace* trace) {
    json::object out;
    out["id"] = id;
    out["decision"] = decision.allowed ? "allow" : "deny";
    out["reason"] = decision.reason();
    out["rule"] = rule_json(decision.rule);
    out["legal_basis"] = ground_json(decision.legal_basis);
    json::array obligations;
    for (const Obligation* obligation : decision.obligations) {
        obligations.push_back(json::object{{"id", obligation->id}, {"label", obligation->label}});
    }
    out["obligations"] = std::move(obligations);
    out["policy"] = decision.policy_hash;
    out["activity"] = decision.activity == nullptr
                          ? json::value(nullptr)
                          : json::value(json::string(decision.activity->id));
    if (!decision.suggestions.empty()) {
        json::array suggestions;
        for (const Suggestion& suggestion : decision.suggestions) {
            suggestions.push_back(json::object{
                {"field", suggestion.field}, {"id", suggestion.id}, {"label", suggestion.label}});
        }
        out["suggestions"] = std::move(suggestions);
    }
    if (decision.satisfying_context) {
        const ContextChange& change = *decision.satisfying_context;
        json::object context;
        if (change.consent) {
            context["consent"] = *change.consent;
        }
        if (change.objection) {
            context["objection"] = *change.objection;
        }
        if (change.legal_basis_changed) {
            context["legal_basis"] = change.legal_basis == nullptr
                                         ? json::value(nullptr)
                                         : json::value(json::string(change.legal_basis->id));
        }
        out["satisfying_context"] = std::move(context);
    }
    if (trace != nullptr) {
        out["trace"] = trace_to_json(*trace);
        if (trace->omitted != 0) {
            out["trace_truncated"] = true;
            out["trace_steps_omitted"] = trace->omitted;
        }
    }
    return out;
}

namespace {

// A JSON string literal, escaped as Boost.JSON's serializer escapes it, so that
// decision_to_text and serialize(decision_to_json(...)) agree byte for byte.
void append_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t run = 0; // start of the run of characters that need no escape
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto byte = static_cast<unsigned char>(text[i]);
        if (byte >= 0x20 && byte != '"' && byte != '\\') {
            continue;
        }
        out.append(text.data() + run, i - run);
        run = i + 1;
        switch (byte) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            out += "\\u00";
            out += hex[byte >> 4];
            out += hex[byte & 0xF];
        }
    }
    out.append(text.data() + run, text.size() - run);
    out += '"';
}

void append_id_label(std::string& out, std::string_view id, std::string_view label) {
    out += "{\"id\":";
    append_string(out, id);
    out += ",\"label\":";
    append_string(out, label);
    out += '}';
}

void append_obligations(std::string& out, const Decision& decision) {
    out += '[';
    for (std::size_t i = 0; i < decision.obligations.size(); ++i) {
        if (i != 0) {
            out += ',';
        }
        const Obligation& obligation = *decision.obligations[i];
        if (decision.policy != nullptr) {
            out += decision.policy->obligation_json(obligation);
        } else {
            append_id_label(out, obligation.id, obligation.label);
        }
    }
    out += ']';
}

// A deny's "suggestions" and "satisfying_context", as decision_to_json writes them.
void append_help(std::string& out, const Decision& decision) {
    if (!decision.suggestions.empty()) {
        out += ",\"suggestions\":[";
        for (std::size_t i = 0; i < decision.suggestions.size(); ++i) {
            const Suggestion& suggestion = decision.suggestions[i];
            out += i == 0 ? "{\"field\":" : ",{\"field\":";
            append_string(out, suggestion.field);
            out += ",\"id\":";
            append_string(out, suggestion.id);
            out += ",\"label\":";
            append_string(out, suggestion.label);
            out += '}';
        }
        out += ']';
    }
    if (decision.satisfying_context) {
        const ContextChange& change = *decision.satisfying_context;
        out += ",\"satisfying_context\":{";
        bool first = true;
        auto key = [&](std::string_view name) {
            out += first ? "\"" : ",\"";
            out += name;
            out += "\":";
            first = false;
        };
        if (change.consent) {
            key("consent");
            out += *change.consent ? "true" : "false";
        }
        if (change.objection) {
            key("objection");
            out += *change.objection ? "true" : "false";
        }
        if (change.legal_basis_changed) {
            key("legal_basis");
            if (change.legal_basis != nullptr) {
                append_string(out, change.legal_basis->id);
            } else {
                out += "null";
            }
        }
        out += '}';
    }
}

// One step as trace_to_json writes it.
void append_trace_step(std::string& out, const TraceStep& step) {
    out += "{\"rule\":";
    append_string(out, step.rule->id);
    out += step.rule->effect == ast::Effect::permit ? ",\"effect\":\"permit\",\"at\":"
                                                    : ",\"effect\":\"forbid\",\"at\":";
    append_string(out, step.rule->file + ':' + std::to_string(step.rule->line));
    out += ",\"activity\":";
    if (step.activity.empty()) {
        out += "null";
    } else {
        append_string(out, step.activity);
    }
    out += ",\"data\":";
    append_string(out, step.category);
    out += step.matched ? ",\"matched\":true,\"why\":" : ",\"matched\":false,\"why\":";
    append_string(out, step.why);
    out += '}';
}

constexpr std::string_view truncated_fields = ",\"trace_truncated\":true,\"trace_steps_omitted\":";
// What may follow the last step that fits: "]", the truncation fields with a count of
// up to 20 digits, "}".
constexpr std::size_t truncation_room = 1 + truncated_fields.size() + 20 + 1;
// A step that does not fit with the truncation fields after it could fit without them
// only as the trace's last: two steps never fit in that room.
static_assert(min_trace_step_bytes > truncation_room);

// Appends the trace to `out`, an answer object (its closing brace included), with the
// steps that keep it within `max_bytes`.
void append_trace(std::string& out, const Trace& trace, std::size_t max_bytes) {
    out.pop_back();
    out += ",\"trace\":[";
    std::string step_text;
    std::size_t kept = 0;
    for (; kept < trace.steps.size(); ++kept) {
        step_text.clear();
        if (kept != 0) {
            step_text += ',';
        }
        append_trace_step(step_text, trace.steps[kept]);
        const bool ends_trace = kept + 1 == trace.steps.size() && trace.omitted == 0;
        const std::size_t after = ends_trace ? 2 : truncation_room; // "]}" or the truncation
        const std::size_t size = out.size() + step_text.size();
        if (size > max_bytes || max_bytes - size < after) {
            break;
        }
        out += step_text;
    }
    out += ']';
    const std::size_t omitted = trace.omitted + (trace.steps.size() - kept);
    if (omitted != 0) {
        out += truncated_fields;
        out += std::to_string(omitted);
    }
    out += '}';
}

// The answer without a trace, written directly when the decision's policy can give its
// rules' and grounds' text.
std::string answer_text(const Decision& decision, const json::value& id) {
    if (decision.policy == nullptr) {
        return json::serialize(decision_to_json(decision, id));
    }
    const CompiledPolicy& policy = *decision.policy;
    std::string out;
    out.reserve(1024);
    out += "{\"id\":";
    out += id.is_null() ? std::string("null") : json::serialize(id);
    out += decision.allowed ? ",\"decision\":\"allow\",\"reason\":"
                            : ",\"decision\":\"deny\",\"reason\":";
    append_string(out, decision.reason());
    out += ",\"rule\":";
    out += decision.rule != nullptr ? policy.rule_json(*decision.rule) : "null";
    out += ",\"legal_basis\":";
    out += decision.legal_basis != nullptr ? policy.ground_json(*decision.legal_basis) : "null";
    out += ",\"obligations\":";
    append_obligations(out, decision);
    out += ",\"policy\":";
    append_string(out, decision.policy_hash);
    out += ",\"activity\":";
    if (decision.activity != nullptr) {
        append_string(out, decision.activity->id);
    } else {
        out += "null";
    }
    if (!decision.suggestions.empty() || decision.satisfying_context) {
        append_help(out, decision);
    }
    out += '}';
    return out;
}

} // namespace

std::size_t trace_steps_within(std::size_t max_answer_bytes) {
    return max_answer_bytes / min_trace_step_bytes;
}

std::string obligations_to_text(const Decision& decision) {
    std::string out;
    append_obligations(out, decision);
    return out;
}

void append_json_string(std::string& out, std::string_view text) {
    append_string(out, text);
}

std::string rule_to_json_text(const Rule& rule) {
    std::string out = "{\"id\":";
    append_string(out, rule.id);
    out += ",\"file\":";
    append_string(out, rule.file);
    out += ",\"line\":";
    out += std::to_string(rule.line);
    out += ",\"table\":";
    if (rule.source_row) {
        out += "{\"row\":";
        out += std::to_string(*rule.source_row);
        out += ",\"case\":";
        append_string(out, rule.source_case);
        out += '}';
    } else {
        out += "null";
    }
    out += '}';
    return out;
}

std::string id_label_json_text(std::string_view id, std::string_view label) {
    std::string out;
    append_id_label(out, id, label);
    return out;
}

std::string decision_to_text(const Decision& decision, const json::value& id, const Trace* trace,
                             std::size_t max_bytes) {
    std::string out = answer_text(decision, id);
    if (trace != nullptr) {
        append_trace(out, *trace, max_bytes);
    }
    return out;
}

json::object describe_to_json(const CompiledPolicy& policy) {
    const CheckedPolicy& model = policy.model();
    json::array purposes;
    for (const Purpose& purpose : model.purposes) {
        json::array activities;
        for (Id a : purpose.activities) {
            const Activity& activity = model.activities[a];
            activities.push_back(
                json::object{{"id", activity.id},
                             {"label", activity.label},
                             {"kind", to_string(activity.kind)},
                             {"recipients", ids_json(activity.recipients, model.parties)},
                             {"categories", ids_json(activity.categories, model.categories)}});
        }
        json::object entry{
            {"id", purpose.id}, {"label", purpose.label}, {"activities", std::move(activities)}};
        add_aliases(entry, purpose.aliases);
        purposes.push_back(std::move(entry));
    }
    json::array parties;
    for (const Party& party : model.parties) {
        json::object entry{
            {"id", party.id}, {"label", party.label}, {"role", to_string(party.role)}};
        if (party.is_class) {
            entry["members"] = ids_json(party.members, model.parties);
        }
        add_aliases(entry, party.aliases);
        parties.push_back(std::move(entry));
    }
    json::array categories;
    for (const Category& category : model.categories) {
        json::object entry{{"id", category.id},
                           {"label", category.label},
                           {"sensitivity", to_string(category.sensitivity)}};
        add_aliases(entry, category.aliases);
        categories.push_back(std::move(entry));
    }
    return json::object{{"purposes", std::move(purposes)},
                        {"parties", std::move(parties)},
                        {"categories", std::move(categories)},
                        {"policy", policy.hash()}};
}

} // namespace flowgate::dsl
