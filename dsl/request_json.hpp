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

#include <optional>
#include <string>
#include <variant>

namespace flowgate::dsl {

// Why a request object could not be read. `code` is one of "bad_request",
// "missing_field", "bad_field_type", "bad_field_value".
struct RequestError {
    std::string code;
    std::string message;
};

using RequestParse = std::variant<Request, RequestError>;

// Reads the check fields of a request; unknown fields are ignored. `data` may be an
// array of strings or a single string; `activity`, `direction` (default "send"),
// `subject` and `context` are optional.
RequestParse request_from_json(const boost::json::value& value);
RequestParse request_from_json(const boost::json::object& object);

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
// explain the refusal of request_from_json. Only a refusal allocates its message.
RequestLine request_line_from_json(const boost::json::value* parsed,
                                   const boost::system::error_code& parse_error = {});

// {"id","decision","reason","rule","legal_basis","obligations","policy"}, plus
// "trace" when one is given. The daemon adds "audit_seq".
boost::json::object decision_to_json(const Decision& decision, const boost::json::value& id,
                                     const Trace* trace = nullptr);

// The same answer as serialize(decision_to_json(...)), byte for byte, written directly:
// the daemon's serving path, where building a JSON tree per decision would cost more
// than deciding.
std::string decision_to_text(const Decision& decision, const boost::json::value& id,
                             const Trace* trace = nullptr);

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
