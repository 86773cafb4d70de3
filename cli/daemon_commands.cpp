// `flowgate check|explain|describe|status|reload`: questions to a running flowgated
// through the client library, printed for people or, with --json, for scripts.
#include "cli/commands.hpp"
#include "client/client.hpp"

#include <boost/json.hpp>

#include <ctime>
#include <iostream>
#include <memory>

namespace flowgate::cli {
namespace json = boost::json;

namespace {

struct DaemonOptions {
    std::string socket = client::default_socket_path();
    int timeout_ms = 5000;
    bool json_output = false;
};

struct CheckOptions {
    std::string request_json;
    client::CheckRequest question;
};

std::string text_of(const json::value* value) {
    if (value == nullptr || value->is_null()) {
        return "";
    }
    if (value->is_string()) {
        return std::string(value->as_string());
    }
    return json::serialize(*value);
}

// "kenpo.policy:118 r3_j (table row 3, case j)"
std::string describe_rule(const json::value* rule) {
    if (rule == nullptr || !rule->is_object()) {
        return "";
    }
    const json::object& object = rule->as_object();
    std::string out = text_of(object.if_contains("file"));
    if (const json::value* line = object.if_contains("line")) {
        out += ":" + text_of(line);
    }
    out += " " + text_of(object.if_contains("id"));
    if (const json::value* table = object.if_contains("table");
        table != nullptr && table->is_object()) {
        out += " (table row " + text_of(table->as_object().if_contains("row")) + ", case " +
               text_of(table->as_object().if_contains("case")) + ")";
    }
    return out;
}

std::string label_list(const json::value* items) {
    std::string out;
    if (items == nullptr || !items->is_array()) {
        return out;
    }
    for (const json::value& item : items->as_array()) {
        if (!out.empty()) {
            out += ", ";
        }
        if (item.is_object()) {
            out += text_of(item.as_object().if_contains("id"));
            std::string label = text_of(item.as_object().if_contains("label"));
            if (!label.empty()) {
                out += " (" + label + ")";
            }
        } else {
            out += text_of(&item);
        }
    }
    return out;
}

void print_error(const json::object& answer) {
    const json::value* error = answer.if_contains("error");
    if (error != nullptr && error->is_object()) {
        std::cerr << "flowgate: " << text_of(error->as_object().if_contains("code")) << ": "
                  << text_of(error->as_object().if_contains("message")) << "\n";
    } else {
        std::cerr << "flowgate: " << json::serialize(answer) << "\n";
    }
}

// The trace grouped by the activity each step was tried under, in the order tried; the
// group of the activity that decided (`decided`, empty when none did) is marked.
void print_trace(const json::array& steps, const std::string& decided) {
    std::cout << "  trace:\n";
    bool first = true;
    std::string group;
    for (const json::value& step : steps) {
        if (!step.is_object()) {
            continue;
        }
        const json::object& s = step.as_object();
        std::string activity = text_of(s.if_contains("activity"));
        if (first || activity != group) {
            group = activity;
            first = false;
            if (activity.empty()) {
                std::cout << "    without an activity:\n";
            } else {
                std::cout << "    activity " << activity
                          << (activity == decided ? " (decided):\n" : ":\n");
            }
        }
        const json::value* matched = s.if_contains("matched");
        bool did_match = matched != nullptr && matched->is_bool() && matched->as_bool();
        std::cout << "      " << (did_match ? "+ " : "- ") << text_of(s.if_contains("effect"))
                  << " " << text_of(s.if_contains("rule")) << " at " << text_of(s.if_contains("at"))
                  << " (data " << text_of(s.if_contains("data"))
                  << "): " << text_of(s.if_contains("why")) << "\n";
    }
}

void print_decision(const json::object& answer, bool with_trace) {
    std::cout << text_of(answer.if_contains("decision")) << ": "
              << text_of(answer.if_contains("reason")) << "\n";
    if (std::string rule = describe_rule(answer.if_contains("rule")); !rule.empty()) {
        std::cout << "  rule:        " << rule << "\n";
    }
    const json::value* basis = answer.if_contains("legal_basis");
    if (basis != nullptr && basis->is_object()) {
        std::cout << "  legal basis: " << text_of(basis->as_object().if_contains("id")) << " ("
                  << text_of(basis->as_object().if_contains("label")) << ")\n";
    }
    if (std::string obligations = label_list(answer.if_contains("obligations"));
        !obligations.empty()) {
        std::cout << "  obligations: " << obligations << "\n";
    }
    std::cout << "  policy:      " << text_of(answer.if_contains("policy")) << "\n";
    if (const json::value* seq = answer.if_contains("audit_seq")) {
        std::cout << "  audit seq:   " << text_of(seq) << "\n";
    }
    if (const json::value* suggestions = answer.if_contains("suggestions");
        suggestions != nullptr && suggestions->is_array() && !suggestions->as_array().empty()) {
        const json::value* field =
            suggestions->as_array().front().is_object()
                ? suggestions->as_array().front().as_object().if_contains("field")
                : nullptr;
        std::cout << "  suggestions: " << text_of(field) << ": " << label_list(suggestions) << "\n";
    }
    if (const json::value* context = answer.if_contains("satisfying_context");
        context != nullptr && context->is_object()) {
        std::string changes;
        for (const auto& [key, value] : context->as_object()) {
            changes += (changes.empty() ? "" : ", ") + std::string(key) + ": " +
                       (value.is_null() ? std::string("none") : text_of(&value));
        }
        std::cout << "  allowed with context: " << changes << "\n";
    }
    const json::value* trace = answer.if_contains("trace");
    if (with_trace && trace != nullptr && trace->is_array()) {
        print_trace(trace->as_array(), text_of(answer.if_contains("activity")));
        const json::value* truncated = answer.if_contains("trace_truncated");
        if (truncated != nullptr && truncated->is_bool() && truncated->as_bool()) {
            std::cout << "    (trace truncated: "
                      << text_of(answer.if_contains("trace_steps_omitted"))
                      << " more steps not shown; the answer reached the daemon's "
                         "max_answer_bytes)\n";
        }
    }
}

// A failure that is not the daemon's answer (it is down, slow, or the connection broke):
// said on stderr, and with --json also as {"error":{"code","message"}} on stdout so a
// script reads one shape whoever failed.
void report_failure(const DaemonOptions& options, const client::ClientError& error) {
    std::cerr << "flowgate: " << error.message << "\n";
    if (options.json_output) {
        json::object body{
            {"error", {{"code", client::to_string(error.kind)}, {"message", error.message}}}};
        std::cout << json::serialize(body) << "\n";
    }
}

// Connects, sends one request, and returns the answer. An error answer is printed and
// sets `error_status`; an unreachable or failing daemon sets exit_error.
std::optional<json::object> ask(const DaemonOptions& options, json::object request,
                                Outcome& outcome, int error_status = exit_error) {
    auto connection =
        client::Client::connect(options.socket, std::chrono::milliseconds(options.timeout_ms));
    if (!connection) {
        report_failure(options, connection.error);
        outcome.status = exit_error;
        return std::nullopt;
    }
    auto answer = connection.value->request(std::move(request));
    if (!answer) {
        report_failure(options, answer.error);
        outcome.status = exit_error;
        return std::nullopt;
    }
    if (answer.value->contains("error")) {
        if (options.json_output) {
            std::cout << json::serialize(*answer.value) << "\n";
        } else {
            print_error(*answer.value);
        }
        outcome.status = error_status;
        return std::nullopt;
    }
    return std::move(answer.value);
}

std::optional<json::object> build_check(const CheckOptions& check, const std::string& op) {
    json::object request;
    if (!check.request_json.empty()) {
        boost::system::error_code error;
        json::value parsed = json::parse(check.request_json, error);
        if (error || !parsed.is_object()) {
            std::cerr << "flowgate: --request is not a JSON object\n";
            return std::nullopt;
        }
        request = std::move(parsed.as_object());
    } else {
        if (check.question.purpose.empty() || check.question.recipient.empty() ||
            check.question.data.empty()) {
            std::cerr << "flowgate: give --purpose, --to and --data (or --request JSON)\n";
            return std::nullopt;
        }
        request = check.question.to_json(op);
    }
    request["op"] = op;
    return request;
}

void add_check_command(CLI::App& app, const std::string& op,
                       const std::shared_ptr<DaemonOptions>& options, Outcome& outcome) {
    auto check = std::make_shared<CheckOptions>();
    CLI::App* command = app.add_subcommand(
        op, op == "check" ? "Ask whether a data flow is allowed (exit 0 allow, 1 deny, 2 error)"
                          : "As check, with the trace of the rules considered");
    command->add_option("--request", check->request_json, "The whole request as JSON");
    command->add_option("--purpose", check->question.purpose,
                        "Purpose: identifier or the table's label");
    command->add_option("--activity", check->question.activity, "Activity (optional)");
    command->add_option("--to,--recipient", check->question.recipient,
                        "Recipient (the sender with --receive)");
    command->add_option("--data", check->question.data, "Data categories")->delimiter(',');
    command->add_option("--subject", check->question.subject,
                        "Pseudonymous reference to the person");
    command->add_option("--legal-basis", check->question.legal_basis, "Legal ground relied on");
    command->add_flag("--consent", check->question.consent, "Consent is on record");
    command->add_flag("--objection", check->question.objection, "An objection is on file");
    command->add_flag("--receive", check->question.receive, "An inbound flow");
    command->add_flag("--json", options->json_output, "Print the daemon's JSON answer");
    command->callback([check, options, op, &outcome] {
        auto request = build_check(*check, op);
        if (!request) {
            outcome.status = exit_error;
            return;
        }
        auto answer = ask(*options, std::move(*request), outcome);
        if (!answer) {
            return;
        }
        if (options->json_output) {
            std::cout << json::serialize(*answer) << "\n";
        } else {
            print_decision(*answer, op == "explain");
        }
        const json::value* decision = answer->if_contains("decision");
        outcome.status =
            decision != nullptr && decision->is_string() && decision->as_string() == "allow"
                ? exit_allow
                : exit_deny;
    });
}

// Seconds since the epoch as "2024-05-01 09:30:00 UTC"; other values as they are.
std::string status_value(std::string_view key, const json::value& value) {
    if (key.ends_with("_at") && value.is_int64()) {
        std::time_t seconds = static_cast<std::time_t>(value.as_int64());
        std::tm utc{};
        char text[32];
        if (::gmtime_r(&seconds, &utc) != nullptr &&
            std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc) > 0) {
            return text;
        }
    }
    return text_of(&value);
}

// Every field the daemon reports, nested objects indented, so that a field added to
// the answer shows up without a change here.
void print_status(const json::object& answer) {
    for (const auto& [key, value] : answer) {
        if (key == "id") {
            continue;
        }
        if (value.is_object()) {
            std::cout << key << ":\n";
            for (const auto& [inner_key, inner] : value.as_object()) {
                std::cout << "  " << inner_key << ": " << status_value(inner_key, inner) << "\n";
            }
        } else {
            std::cout << key << ": " << status_value(key, value) << "\n";
        }
    }
}

void print_describe(const json::object& answer) {
    std::cout << "policy " << text_of(answer.if_contains("policy")) << "\n";
    if (const json::value* purposes = answer.if_contains("purposes");
        purposes != nullptr && purposes->is_array()) {
        for (const json::value& purpose : purposes->as_array()) {
            const json::object& p = purpose.as_object();
            std::cout << "purpose " << text_of(p.if_contains("id")) << " "
                      << text_of(p.if_contains("label")) << "\n";
            const json::value* activities = p.if_contains("activities");
            if (activities == nullptr || !activities->is_array()) {
                continue;
            }
            for (const json::value& activity : activities->as_array()) {
                const json::object& a = activity.as_object();
                std::cout << "  " << text_of(a.if_contains("id")) << " ["
                          << text_of(a.if_contains("kind")) << "] "
                          << text_of(a.if_contains("label")) << "\n"
                          << "    to: " << label_list(a.if_contains("recipients")) << "\n"
                          << "    data: " << label_list(a.if_contains("categories")) << "\n";
            }
        }
    }
    for (const char* section : {"parties", "categories"}) {
        const json::value* items = answer.if_contains(section);
        if (items == nullptr || !items->is_array()) {
            continue;
        }
        std::cout << section << ":\n";
        for (const json::value& item : items->as_array()) {
            const json::object& i = item.as_object();
            std::string attribute = text_of(
                i.if_contains(std::string_view(section) == "parties" ? "role" : "sensitivity"));
            std::cout << "  " << text_of(i.if_contains("id")) << " [" << attribute << "] "
                      << text_of(i.if_contains("label"));
            if (std::string aliases = label_list(i.if_contains("aliases")); !aliases.empty()) {
                std::cout << " (also " << aliases << ")";
            }
            std::cout << "\n";
        }
    }
}

} // namespace

void register_daemon_commands(CLI::App& app, Outcome& outcome) {
    auto options = std::make_shared<DaemonOptions>();
    app.add_option("--socket", options->socket, "flowgated's socket (or FLOWGATE_SOCKET)")
        ->envname("FLOWGATE_SOCKET");
    app.add_option("--timeout-ms", options->timeout_ms, "How long to wait for an answer");
    add_check_command(app, "check", options, outcome);
    add_check_command(app, "explain", options, outcome);

    for (const std::string op : {"describe", "status", "reload"}) {
        std::string help = op == "describe" ? "Print the loaded policy's vocabulary"
                           : op == "status"
                               ? "Print the daemon's version, policy, counters and audit health"
                               : "Make the daemon re-read its policy (admins only)";
        CLI::App* command = app.add_subcommand(op, help);
        command->add_flag("--json", options->json_output, "Print the daemon's JSON answer");
        command->callback([options, op, &outcome] {
            json::object request{{"op", op}};
            // A refused or failed reload is a "no" (the old policy keeps serving), not
            // an unreachable daemon.
            auto answer =
                ask(*options, std::move(request), outcome, op == "reload" ? exit_deny : exit_error);
            if (!answer) {
                return;
            }
            if (options->json_output) {
                std::cout << json::serialize(*answer) << "\n";
            } else if (op == "describe") {
                print_describe(*answer);
            } else if (op == "status") {
                print_status(*answer);
            } else {
                std::cout << "reloaded: policy " << text_of(answer->if_contains("policy")) << "\n";
            }
        });
    }
}

} // namespace flowgate::cli
