// The JSON side of the wire protocol (docs/protocol.md): which operation a
// request line asks for or which refusal it gets, a `check`/`explain` object into a
// Request, a Decision (and its trace) into the answer object, and the loaded vocabulary
// into the `describe` answer. Field names here are the contract with every client;
// additions are fine, renames are not.
#pragma once

#include "compiler.hpp"
#include "evaluator.hpp"

#include <boost/json.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <variant>

namespace flowgate::dsl {

// Why a request object could not be read. `code` is one of "bad_request",
// "missing_field", "bad_field_type", "bad_field_value", "too_many_categories".
struct RequestError {
    std::string code;
    std::string message;
};

using RequestParse = std::variant<Request, RequestError>;

// What one request may ask for, whoever reads it: the daemon passes its configured
// limits, the tools that read recorded or hand-written requests the defaults.
struct RequestLimits {
    // The most categories `data` may name; past it the request is refused
    // ("too_many_categories") before its items are read.
    std::size_t max_categories = 64;
    // Whether `data` naming one name twice is refused ("bad_field_value").
    bool unique_categories = true;
};

// For re-deciding a request that was decided when it was recorded (an audit replay): a
// row decided under other limits, or before there were any, is decided again as it was.
inline constexpr RequestLimits no_request_limits{static_cast<std::size_t>(-1), false};

// Reads the check fields of a request; unknown fields are ignored. `data` may be an
// array of strings or a single string; `activity`, `direction` (default "send"),
// `subject` and `context` are optional. `data` naming one name twice (the same string)
// is "bad_field_value"; naming more than limits.max_categories is "too_many_categories".
RequestParse request_from_json(const boost::json::value& value, const RequestLimits& limits = {});
RequestParse request_from_json(const boost::json::object& object, const RequestLimits& limits = {});

// The operations of the v1 protocol, as a request's "op" names them.
enum class Operation { check, explain, describe, status, reload };

// What one request line asks for, or the refusal it gets.
struct RequestLine {
    // The request's "id" inside the parsed value; null when it has none or is not an
    // object. Whoever keeps the id past the parsed value copies it.
    const boost::json::value* id = nullptr;
    // Why the line is refused; when set, `op` and `fields` mean nothing.
    std::optional<RequestError> refusal;
    Operation op = Operation::check;
    Request fields; // check and explain: what they are decided on
};

// The one order in which a line is refused, for the daemon that answers it and for the
// replay that checks a refused row still is: "bad_json" (`parsed` is null: the line
// did not parse, for the reason `parse_error` gives), "bad_request" (not an object),
// "missing_field" or "bad_field_type" for "op", "unknown_op", then for check and
// explain the refusal of request_from_json under `limits`. Only a refusal allocates its
// message.
RequestLine request_line_from_json(const boost::json::value* parsed,
                                   const boost::system::error_code& parse_error = {},
                                   const RequestLimits& limits = {});

// {"id","decision","reason","rule","legal_basis","obligations","policy","activity"};
// on a deny that has them, "suggestions" ([{"field","id","label"}]) and
// "satisfying_context" ({"consent","objection","legal_basis"}, the changed ones); plus
// "trace" when one is given, and "trace_truncated" (true) and "trace_steps_omitted"
// when the trace omitted steps. The daemon adds "audit_seq".
boost::json::object decision_to_json(const Decision& decision, const boost::json::value& id,
                                     const Trace* trace = nullptr);

// Every trace step's JSON text is at least this long, so an answer of N bytes can carry
// at most N / min_trace_step_bytes steps.
inline constexpr std::size_t min_trace_step_bytes = 100;

// The most steps a trace needs to record for an answer of at most MAX_ANSWER_BYTES: a
// Trace's max_steps, so that an explain builds no step its answer could not carry.
std::size_t trace_steps_within(std::size_t max_answer_bytes);

// The same answer as serialize(decision_to_json(...)), byte for byte, written directly:
// the daemon's serving path, where building a JSON tree per decision would cost more
// than deciding. With a trace, the answer is at most MAX_BYTES long: the trace carries
// the steps that fit, in order, and the rest are counted in "trace_steps_omitted" with
// "trace_truncated" true. The decision's own fields are never cut; should they alone be
// past MAX_BYTES (an id or a name echoed from a line nearly that long, a policy's
// text), the answer carries no step and is as long as they are.
std::string decision_to_text(const Decision& decision, const boost::json::value& id,
                             const Trace* trace = nullptr,
                             std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// The JSON text of a rule ({"id","file","line","table"}) and of an {"id","label"} pair,
// as decision_to_json writes them.
std::string rule_to_json_text(const Rule& rule);
std::string id_label_json_text(std::string_view id, std::string_view label);

// Appends TEXT as a JSON string literal, escaped as Boost.JSON escapes it.
void append_json_string(std::string& out, std::string_view text);

// The answer's "obligations" array as text, as decision_to_text writes it.
std::string obligations_to_text(const Decision& decision);

// The trace alone, as the array decision_to_json puts under "trace".
boost::json::array trace_to_json(const Trace& trace);

// {"purposes","parties","categories","policy"}: the `describe` answer's body.
boost::json::object describe_to_json(const CompiledPolicy& policy);

} // namespace flowgate::dsl
