// The request and decision JSON of the wire protocol: which refusal a line gets, field
// errors, defaults, and the exact shape of answers (docs/protocol.md).
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"

#include <filesystem>
#include <fstream>
#include <limits>

#include <catch2/catch.hpp>

using namespace flowgate::dsl;
namespace json = boost::json;

namespace {

// The requests of the bundled policy's test cases (policies/tests/*.jsonl) that parse.
std::vector<Request> bundled_test_requests() {
    namespace fs = std::filesystem;
    std::vector<Request> requests;
    for (const auto& entry :
         fs::directory_iterator(fs::path(FLOWGATE_SOURCE_DIR) / "policies" / "tests")) {
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty()) {
                continue;
            }
            auto parsed = request_from_json(boost::json::parse(line).at("request"));
            if (std::holds_alternative<Request>(parsed)) {
                requests.push_back(std::get<Request>(parsed));
            }
        }
    }
    return requests;
}

RequestError error_of(std::string_view text) {
    RequestParse parsed = request_from_json(json::parse(text));
    REQUIRE(std::holds_alternative<RequestError>(parsed));
    return std::get<RequestError>(parsed);
}

Request request_of(std::string_view text) {
    RequestParse parsed = request_from_json(json::parse(text));
    REQUIRE(std::holds_alternative<Request>(parsed));
    return std::get<Request>(parsed);
}

// What request_line_from_json makes of a line, parsed as the daemon parses it.
struct ReadLine {
    json::value parsed;
    RequestLine line;
};

ReadLine line_of(std::string_view text) {
    ReadLine read;
    boost::system::error_code error;
    read.parsed = json::parse(text, error);
    read.line = request_line_from_json(error ? nullptr : &read.parsed, error);
    return read;
}

// The refusal code a line gets, or "" when it is served.
std::string refusal_of(std::string_view text) {
    const RequestLine line = line_of(text).line;
    return line.refusal ? line.refusal->code : std::string();
}

std::shared_ptr<const CompiledPolicy> small_policy() {
    LoadResult loaded = load_policy(std::vector<PolicyText>{
        {"j.policy", "category checkup \"健診結果\" sensitivity special_care;\n"
                     "party prevent \"PREVENT\" role contractor;\n"
                     "class clinics \"健診機関\" role contractor;\n"
                     "party clinic_a \"A\" role contractor;\n"
                     "members clinics [clinic_a];\n"
                     "ground g \"同意\";\n"
                     "obligation record \"提供記録\";\n"
                     "purpose health \"保健事業\" {\n"
                     "  activity programme \"P\" kind outsource to [prevent] data [checkup];\n"
                     "}\n"
                     "permit p { purpose health; to prevent; data checkup; when consent;\n"
                     "  basis g; oblige record; source row 3 case \"j\"; }\n"}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    return loaded.policy;
}

} // namespace

TEST_CASE("request json: a full check request reads every field", "[dsl]") {
    Request r = request_of(R"({"op":"check","id":7,"purpose":"health","activity":"programme",
        "recipient":"prevent","data":["checkup","x"],"direction":"receive","subject":"s-1",
        "context":{"consent":true,"objection":false,"legal_basis":"g","other":1},"extra":[]})");
    CHECK(r.purpose == "health");
    CHECK(r.activity == std::optional<std::string>("programme"));
    CHECK(r.recipient == "prevent");
    CHECK(r.data == std::vector<std::string>{"checkup", "x"});
    CHECK(r.direction == Direction::receive);
    CHECK(r.subject == "s-1");
    CHECK(r.context.consent);
    CHECK_FALSE(r.context.objection);
    CHECK(r.context.legal_basis == std::optional<std::string>("g"));
}

TEST_CASE("request json: optional fields take their defaults, data may be one string", "[dsl]") {
    Request r = request_of(R"({"purpose":"health","recipient":"prevent","data":"checkup"})");
    CHECK_FALSE(r.activity);
    CHECK(r.direction == Direction::send);
    CHECK(r.data == std::vector<std::string>{"checkup"});
    CHECK_FALSE(r.context.consent);
    CHECK_FALSE(r.context.legal_basis);
}

TEST_CASE("request json: missing and mistyped fields are errors with a code", "[dsl]") {
    RequestError e = error_of(R"({"recipient":"prevent","data":["checkup"]})");
    CHECK(e.code == "missing_field");
    CHECK(e.message == "missing field 'purpose'");
    CHECK(error_of(R"({"purpose":"health","data":["c"]})").message == "missing field 'recipient'");
    CHECK(error_of(R"({"purpose":"health","recipient":"p"})").message == "missing field 'data'");

    e = error_of(R"({"purpose":1,"recipient":"p","data":["c"]})");
    CHECK(e.code == "bad_field_type");
    CHECK(e.message == "field 'purpose' must be a string");
    CHECK(error_of(R"({"purpose":"h","recipient":"p","data":["c",2]})").message ==
          "field 'data' must be an array of strings");
    CHECK(error_of(R"({"purpose":"h","recipient":"p","data":["c"],"context":{"consent":"yes"}})")
              .message == "field 'context.consent' must be true or false");
    CHECK(error_of(R"({"purpose":"h","recipient":"p","data":["c"],"context":[]})").message ==
          "field 'context' must be an object");

    e = error_of(R"({"purpose":"h","recipient":"p","data":["c"],"direction":"sideways"})");
    CHECK(e.code == "bad_field_value");
    CHECK(error_of(R"({"purpose":"h","recipient":"p","data":[]})").code == "bad_field_value");
    CHECK(error_of("[1,2]").code == "bad_request");
}

TEST_CASE("request line: each way a line can fail gets its own refusal and message", "[dsl]") {
    SECTION("not JSON: bad_json, with the parser's reason") {
        ReadLine read = line_of(R"({"op":"check","id":1,)");
        REQUIRE(read.line.refusal);
        CHECK(read.line.refusal->code == "bad_json");
        CHECK(read.line.refusal->message ==
              "the request is not valid JSON (UTF-8): incomplete JSON");
        CHECK(read.line.id == nullptr);
    }
    SECTION("not an object: bad_request, and no id") {
        for (const char* text : {R"(["check"])", R"("check")", "42", "null"}) {
            INFO(text);
            ReadLine read = line_of(text);
            REQUIRE(read.line.refusal);
            CHECK(read.line.refusal->code == "bad_request");
            CHECK(read.line.refusal->message == "a request must be a JSON object");
            CHECK(read.line.id == nullptr);
        }
    }
    SECTION("no op: missing_field, with the request's id") {
        ReadLine read = line_of(R"({"id":4,"purpose":"health"})");
        REQUIRE(read.line.refusal);
        CHECK(read.line.refusal->code == "missing_field");
        CHECK(read.line.refusal->message == "the request has no \"op\"");
        REQUIRE(read.line.id != nullptr);
        CHECK(*read.line.id == 4);
    }
    SECTION("an op that is not a string: bad_field_type") {
        for (const char* text : {R"({"op":1,"id":5})", R"({"op":null})", R"({"op":["check"]})"}) {
            INFO(text);
            ReadLine read = line_of(text);
            REQUIRE(read.line.refusal);
            CHECK(read.line.refusal->code == "bad_field_type");
            CHECK(read.line.refusal->message == "\"op\" must be a string");
        }
    }
    SECTION("an op the protocol does not have: unknown_op, naming it and the ops there are") {
        ReadLine read = line_of(R"({"op":"Check","id":"x"})");
        REQUIRE(read.line.refusal);
        CHECK(read.line.refusal->code == "unknown_op");
        CHECK(read.line.refusal->message ==
              "unknown op 'Check'; expected check, explain, describe, status or reload");
        REQUIRE(read.line.id != nullptr);
        CHECK(*read.line.id == "x");
    }
    SECTION("a check or explain without a purpose: request_from_json's refusal") {
        for (const char* text : {R"({"op":"check","recipient":"prevent","data":["checkup"]})",
                                 R"({"op":"explain","recipient":"prevent","data":["checkup"]})"}) {
            INFO(text);
            ReadLine read = line_of(text);
            REQUIRE(read.line.refusal);
            CHECK(read.line.refusal->code == "missing_field");
            CHECK(read.line.refusal->message == "missing field 'purpose'");
        }
    }
}

TEST_CASE("request line: the first rule a line breaks decides its refusal", "[dsl]") {
    // Each line also breaks every later rule; the earliest one names the refusal.
    CHECK(refusal_of(R"({"op":"check","purpose":1,)") == "bad_json");
    CHECK(refusal_of(R"([{"op":1}])") == "bad_request");
    CHECK(refusal_of(R"({"purpose":1,"data":[]})") == "missing_field");
    CHECK(refusal_of(R"({"op":1,"purpose":1})") == "bad_field_type");
    CHECK(refusal_of(R"({"op":"approve","purpose":1})") == "unknown_op");
    CHECK(refusal_of(R"({"op":"check","purpose":1,"data":[]})") == "bad_field_type");
    CHECK(refusal_of(R"({"op":"check","purpose":"h","recipient":"p","data":[]})") ==
          "bad_field_value");
}

TEST_CASE("request line: a line that is not refused names its operation", "[dsl]") {
    SECTION("check and explain carry the request's fields") {
        ReadLine read =
            line_of(R"({"op":"explain","id":[1],"purpose":"health","recipient":"prevent",)"
                    R"("data":"checkup","direction":"receive"})");
        CHECK_FALSE(read.line.refusal);
        CHECK(read.line.op == Operation::explain);
        CHECK(read.line.fields.purpose == "health");
        CHECK(read.line.fields.recipient == "prevent");
        CHECK(read.line.fields.data == std::vector<std::string>{"checkup"});
        CHECK(read.line.fields.direction == Direction::receive);
        REQUIRE(read.line.id != nullptr);
        CHECK(*read.line.id == json::array{1});
        CHECK(line_of(R"({"op":"check","purpose":"h","recipient":"p","data":["c"]})").line.op ==
              Operation::check);
    }
    SECTION("describe, status and reload are not read as checks") {
        const std::pair<const char*, Operation> cases[] = {
            {R"({"op":"describe","purpose":1})", Operation::describe},
            {R"({"op":"status","data":[]})", Operation::status},
            {R"({"op":"reload"})", Operation::reload},
        };
        for (const auto& [text, op] : cases) {
            INFO(text);
            ReadLine read = line_of(text);
            CHECK_FALSE(read.line.refusal);
            CHECK(read.line.op == op);
            CHECK(read.line.id == nullptr);
        }
    }
}

TEST_CASE("request json: an allow answers the exact wire shape", "[dsl]") {
    auto policy = small_policy();
    Request r = request_of(
        R"({"purpose":"health","recipient":"prevent","data":["checkup"],"context":{"consent":true}})");
    Decision d = evaluate(*policy, r);
    json::object answer = decision_to_json(d, json::value("req-1"));
    json::object expected = {
        {"id", "req-1"},
        {"decision", "allow"},
        {"reason", "permitted by rule 'p'"},
        {"rule",
         {{"id", "p"}, {"file", "j.policy"}, {"line", 11}, {"table", {{"row", 3}, {"case", "j"}}}}},
        {"legal_basis", {{"id", "g"}, {"label", "同意"}}},
        {"obligations", json::array{json::object{{"id", "record"}, {"label", "提供記録"}}}},
        {"policy", policy->hash()},
        {"activity", "programme"}};
    CHECK(json::serialize(answer) == json::serialize(expected));
}

TEST_CASE("request json: a deny has null rule and basis, and a trace when asked", "[dsl]") {
    auto policy = small_policy();
    Request r = request_of(R"({"purpose":"health","recipient":"clinic_a","data":["checkup"]})");
    Trace trace;
    Decision d = evaluate(*policy, r, &trace);
    json::object answer = decision_to_json(d, json::value(42), &trace);
    CHECK(answer.at("id") == 42);
    CHECK(answer.at("decision") == "deny");
    CHECK(answer.at("rule").is_null());
    CHECK(answer.at("legal_basis").is_null());
    CHECK(answer.at("obligations").as_array().empty());
    const json::array& steps = answer.at("trace").as_array();
    REQUIRE(steps.size() == 1);
    CHECK(json::serialize(steps[0]) ==
          R"({"rule":"p","effect":"permit","at":"j.policy:11","activity":"programme",)"
          R"("data":"checkup","matched":false,"why":"'to' does not match"})");
}

TEST_CASE("request json: describe lists purposes, parties and categories", "[dsl]") {
    auto policy = small_policy();
    json::object described = describe_to_json(*policy);
    CHECK(json::serialize(described.at("purposes")) ==
          R"([{"id":"health","label":"保健事業","activities":[{"id":"programme","label":"P",)"
          R"("kind":"outsource","recipients":["prevent"],"categories":["checkup"]}]}])");
    CHECK(json::serialize(described.at("parties").as_array()[1]) ==
          R"({"id":"clinics","label":"健診機関","role":"contractor","members":["clinic_a"]})");
    CHECK(json::serialize(described.at("categories")) ==
          R"([{"id":"checkup","label":"健診結果","sensitivity":"special_care"}])");
    CHECK(described.at("policy").as_string() == policy->hash());
}

TEST_CASE("request json: the daemon's direct answer text equals the serialized JSON answer",
          "[dsl][json]") {
    LoadResult loaded = load_policy(std::filesystem::path(FLOWGATE_SOURCE_DIR) / "policies");
    REQUIRE(loaded);
    const std::vector<Request> requests = bundled_test_requests();
    for (const Request& request : requests) {
        Decision decision = evaluate(*loaded.policy, request);
        for (const boost::json::value& id :
             {boost::json::value(nullptr), boost::json::value(42), boost::json::value("a\"b")}) {
            INFO(request.purpose << " " << request.activity.value_or("-") << " "
                                 << request.recipient);
            CHECK(decision_to_text(decision, id) ==
                  boost::json::serialize(decision_to_json(decision, id)));
        }
        CHECK(obligations_to_text(decision) ==
              boost::json::serialize(decision_to_json(decision, nullptr).at("obligations")));
    }
    CHECK(requests.size() > 300);
}

TEST_CASE("decision cache: every answer is the one a fresh evaluation gives, hit or miss",
          "[dsl][cache]") {
    namespace fs = std::filesystem;
    LoadResult loaded = load_policy(fs::path(FLOWGATE_SOURCE_DIR) / "policies");
    REQUIRE(loaded);
    // The policy's own test requests, each also without its activity (every activity
    // of the purpose is tried) and with consent turned over.
    std::vector<Request> requests;
    for (Request request : bundled_test_requests()) {
        requests.push_back(request);
        request.activity.reset();
        requests.push_back(request);
        request.context.consent = !request.context.consent;
        requests.push_back(request);
    }
    REQUIRE(requests.size() > 900);
    auto same = [](const Decision& cached, const Decision& fresh) {
        CHECK(decision_to_text(cached, nullptr) == decision_to_text(fresh, nullptr));
        CHECK(cached.activity == fresh.activity);
        CHECK(cached.failed_category == fresh.failed_category);
    };
    for (std::size_t capacity : {std::size_t{4096}, std::size_t{7}}) {
        DecisionCache cache(capacity);
        for (int pass = 0; pass < 2; ++pass) {
            for (const Request& request : requests) {
                INFO("capacity " << capacity << ", pass " << pass << ": " << request.purpose << " "
                                 << request.activity.value_or("-") << " " << request.recipient);
                same(cache.evaluate(loaded.policy, request), evaluate(*loaded.policy, request));
            }
        }
        CHECK(cache.size() <= capacity);
        CHECK(cache.hits() > 0);
    }

    // Another policy (even the same text, loaded again) starts an empty cache.
    DecisionCache cache;
    cache.evaluate(loaded.policy, requests.front());
    REQUIRE(cache.size() == 1);
    LoadResult again = load_policy(fs::path(FLOWGATE_SOURCE_DIR) / "policies");
    REQUIRE(again);
    const Decision& decision = cache.evaluate(again.policy, requests.front());
    CHECK(decision.policy == again.policy.get());
    CHECK(cache.size() == 1);
    CHECK(cache.hits() == 0);
}

TEST_CASE("request json: answer text escapes quotes, backslashes and control characters as "
          "Boost.JSON does",
          "[dsl][json]") {
    // Labels with a quote, a backslash and a tab, through the fast path (a decision of a
    // compiled policy) and the JSON tree.
    const std::string text = "category c \"健診\" sensitivity ordinary;\n"
                             "party p \"P\\\"社\" role contractor;\n"
                             "ground g \"根拠 \\\\ \\\"27条\\\"\";\n"
                             "obligation o \"記録\tする\";\n"
                             "purpose u \"目的\" {\n"
                             "  activity a \"委託\"\n"
                             "    kind outsource to [p] data [c];\n"
                             "}\n"
                             "permit r {\n"
                             "  purpose u;\n"
                             "  activity a;\n"
                             "  basis g;\n"
                             "  oblige o;\n"
                             "  source row 1 case \"x\\\"y\";\n"
                             "  because \"a \\\"quoted\\\" \\\\ reason\";\n"
                             "}\n";
    LoadResult loaded = load_policy(std::vector<PolicyText>{{"escapes.policy", text}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    Request request;
    request.purpose = "u";
    request.recipient = "p";
    request.data = {"c"};
    Decision decision = evaluate(*loaded.policy, request);
    REQUIRE(decision.allowed);
    REQUIRE(decision.policy != nullptr);
    for (const boost::json::value& id : {boost::json::value("x\x1f\n"), boost::json::value(7)}) {
        CHECK(decision_to_text(decision, id) ==
              boost::json::serialize(decision_to_json(decision, id)));
    }
    CHECK_THAT(decision_to_text(decision, nullptr),
               Catch::Contains("\\\"quoted\\\"") && Catch::Contains("\\t"));
}

namespace {

// `data` as a JSON array of NAMES, in a check of the bundled policy's allowed flow.
std::string check_naming(const std::vector<std::string>& names) {
    json::array data;
    for (const std::string& name : names) {
        data.emplace_back(name);
    }
    return json::serialize(json::object{{"op", "explain"},
                                        {"purpose", "health_services"},
                                        {"recipient", "prevent"},
                                        {"data", data}});
}

// N names of the same category, each spelled differently: its identifier with 0 to
// N-1 trailing blanks (white space is ignored when names are looked up).
std::vector<std::string> spellings(std::string_view category, std::size_t n) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < n; ++i) {
        names.push_back(std::string(category) + std::string(i, ' '));
    }
    return names;
}

std::shared_ptr<const CompiledPolicy> bundled_policy() {
    static std::shared_ptr<const CompiledPolicy> policy = [] {
        LoadResult loaded = load_policy(std::filesystem::path(FLOWGATE_SOURCE_DIR) / "policies");
        INFO(format(loaded.diagnostics));
        REQUIRE(loaded);
        return loaded.policy;
    }();
    return policy;
}

} // namespace

TEST_CASE("request json: data naming one name twice is refused, naming it", "[dsl][limits]") {
    RequestError e = error_of(R"({"purpose":"h","recipient":"p",)"
                              R"("data":["status","checkup_result","benefit","checkup_result"]})");
    CHECK(e.code == "bad_field_value");
    CHECK(e.message == "field 'data' names 'checkup_result' twice");
    CHECK(error_of(R"({"purpose":"h","recipient":"p","data":["a","a"]})").message ==
          "field 'data' names 'a' twice");

    SECTION("names are compared as given: a label, or other blanks, is another name") {
        Request r = request_of(
            R"({"purpose":"h","recipient":"p",)"
            R"("data":["checkup_result","健診結果","checkup_result ","Checkup_result"]})");
        CHECK(r.data.size() == 4);
    }
    SECTION("the daemon's line reader refuses it the same way") {
        ReadLine read = line_of(R"({"op":"check","id":3,"purpose":"h","recipient":"p",)"
                                R"("data":["x","y","x"]})");
        REQUIRE(read.line.refusal);
        CHECK(read.line.refusal->code == "bad_field_value");
        CHECK(read.line.refusal->message == "field 'data' names 'x' twice");
        REQUIRE(read.line.id != nullptr);
        CHECK(*read.line.id == 3);
    }
}

TEST_CASE("request json: a recorded decision is read again whatever today's limits",
          "[dsl][limits]") {
    // A row decided before there were limits (or under larger ones) names 100 categories,
    // one of them twice: replay re-decides it instead of calling it unparseable.
    std::string data = "[\"status\"";
    for (int i = 0; i < 99; ++i) {
        data += ",\"c" + std::to_string(i) + "\"";
    }
    data += ",\"status\"]";
    const json::value value = json::parse(R"({"purpose":"h","recipient":"p","data":)" + data + "}");
    CHECK(std::holds_alternative<RequestError>(request_from_json(value)));
    RequestParse read = request_from_json(value, no_request_limits);
    REQUIRE(std::holds_alternative<Request>(read));
    CHECK(std::get<Request>(read).data.size() == 101);
}

TEST_CASE("request json: data past max_categories is refused naming the limit, at it, it is read",
          "[dsl][limits]") {
    std::vector<std::string> names;
    for (int i = 0; i < 65; ++i) {
        names.push_back("c" + std::to_string(i));
    }
    const std::vector<std::string> at_limit(names.begin(), names.begin() + 64);

    SECTION("the default limit is 64") {
        CHECK(RequestLimits{}.max_categories == 64);
        CHECK(request_of(check_naming(at_limit)).data == at_limit);
        RequestError e = error_of(check_naming(names));
        CHECK(e.code == "too_many_categories");
        CHECK(e.message == "field 'data' names 65 categories; at most 64 are allowed");
    }
    SECTION("a limit passed in is the one applied, by both readers") {
        const RequestLimits three{3};
        const json::value four = json::parse(R"({"op":"check","purpose":"h","recipient":"p",)"
                                             R"("data":["a","b","c","d"]})");
        RequestParse parsed = request_from_json(four, three);
        REQUIRE(std::holds_alternative<RequestError>(parsed));
        CHECK(std::get<RequestError>(parsed).message ==
              "field 'data' names 4 categories; at most 3 are allowed");
        const RequestLine line = request_line_from_json(&four, {}, three);
        REQUIRE(line.refusal);
        CHECK(line.refusal->code == "too_many_categories");
        CHECK(line.refusal->message == "field 'data' names 4 categories; at most 3 are allowed");

        const json::value exactly = json::parse(R"({"op":"check","purpose":"h","recipient":"p",)"
                                                R"("data":["a","b","c"]})");
        CHECK_FALSE(request_line_from_json(&exactly, {}, three).refusal);
        CHECK_FALSE(request_line_from_json(&four).refusal); // the default, 64
    }
    SECTION("the count is refused before the items are read") {
        // 7,000 of one name: one refusal for the count, not a duplicate found by reading.
        std::vector<std::string> repeated(7000, "checkup_result");
        RequestError e = error_of(check_naming(repeated));
        CHECK(e.code == "too_many_categories");
        CHECK(e.message == "field 'data' names 7000 categories; at most 64 are allowed");
        json::value mistyped = json::parse(check_naming(names));
        mistyped.as_object()["data"].as_array().back() = 1;
        CHECK(refusal_of(json::serialize(mistyped)) == "too_many_categories");
    }
}

TEST_CASE("request line: too_many_categories comes where data is read, after the op", "[dsl]") {
    std::vector<std::string> many(65, "c");
    json::value line = json::parse(check_naming(many));
    CHECK(refusal_of(json::serialize(line)) == "too_many_categories");
    line.as_object().erase("purpose");
    CHECK(refusal_of(json::serialize(line)) == "missing_field");
    line.as_object()["op"] = "describe";
    CHECK(refusal_of(json::serialize(line)).empty());
}

TEST_CASE("request json: every trace step's text is at least min_trace_step_bytes",
          "[dsl][trace]") {
    // The shortest names there can be: one letter, a file of one letter.
    LoadResult loaded = load_policy(
        std::vector<PolicyText>{{"f", "category c \"C\" sensitivity ordinary;\n"
                                      "party p \"P\" role contractor;\n"
                                      "party q \"Q\" role contractor;\n"
                                      "purpose u \"U\" {\n"
                                      "  activity a \"A\" kind outsource to [p, q] data [c];\n"
                                      "}\n"
                                      "permit r { purpose u; to p; }\n"
                                      "forbid f { purpose u; to q; when not consent; }\n"
                                      "permit s { purpose u; to q; when consent; }\n"}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    std::size_t steps = 0;
    for (const char* recipient : {"p", "q"}) {
        for (bool consent : {false, true}) {
            Request r;
            r.purpose = "u";
            r.recipient = recipient;
            r.data = {"c"};
            r.context.consent = consent;
            Trace trace;
            evaluate(*loaded.policy, r, &trace);
            for (const json::value& step : trace_to_json(trace)) {
                INFO(json::serialize(step));
                CHECK(json::serialize(step).size() >= min_trace_step_bytes);
                ++steps;
            }
        }
    }
    CHECK(steps >= 8);
    CHECK(trace_steps_within(1048576) == 1048576 / min_trace_step_bytes);
}

TEST_CASE("request json: an explain's answer text equals the serialized JSON answer, cut or not",
          "[dsl][json][trace]") {
    auto policy = bundled_policy();
    const std::vector<Request> requests = bundled_test_requests();
    std::size_t cut = 0;
    for (const Request& request : requests) {
        for (std::size_t max_steps : {std::numeric_limits<std::size_t>::max(), std::size_t{5}}) {
            INFO(request.purpose << " " << request.activity.value_or("-") << " "
                                 << request.recipient << " max_steps " << max_steps);
            Trace trace;
            trace.max_steps = max_steps;
            Decision decision = evaluate(*policy, request, &trace);
            CHECK(decision_to_text(decision, json::value("x"), &trace) ==
                  json::serialize(decision_to_json(decision, json::value("x"), &trace)));
            cut += trace.omitted != 0 ? 1 : 0;
        }
    }
    CHECK(cut > 100);
}

TEST_CASE("request json: an explain's answer past max_bytes carries the steps that fit, marked "
          "truncated",
          "[dsl][trace][limits]") {
    auto policy = bundled_policy();
    // 64 spellings of one category the flow allows: every one is traced over every rule
    // of the purpose, some thousands of steps.
    const Request request = request_of(check_naming(spellings("checkup_result", 64)));
    Trace full;
    const Decision decided = evaluate(*policy, request, &full);
    REQUIRE(decided.allowed);
    REQUIRE(full.steps.size() > 1000);
    const json::value id("req-7");
    const std::string untrimmed = decision_to_text(decided, id, &full);
    REQUIRE(untrimmed.size() > 100'000);
    const json::object plain = decision_to_json(decided, id);

    for (std::size_t limit :
         {std::size_t{4096}, std::size_t{10'000}, std::size_t{65'536}, untrimmed.size() - 1}) {
        INFO("limit " << limit);
        Trace trace;
        trace.max_steps = trace_steps_within(limit);
        const Decision decision = evaluate(*policy, request, &trace);
        CHECK(trace.steps.size() <= limit / min_trace_step_bytes); // built no more
        const std::string text = decision_to_text(decision, id, &trace, limit);
        CHECK(text.size() <= limit);
        CHECK(text.find('\n') == std::string::npos);
        boost::system::error_code error;
        const json::value parsed = json::parse(text, error);
        REQUIRE_FALSE(error);
        const json::object& answer = parsed.as_object();
        // The decision's fields are all there, as without a trace.
        for (const auto& [key, value] : plain) {
            INFO(key);
            CHECK(answer.at(key) == value);
        }
        CHECK(answer.at("trace_truncated") == true);
        const json::array& steps = answer.at("trace").as_array();
        CHECK(steps.size() > 0);
        CHECK(steps.size() + answer.at("trace_steps_omitted").to_number<std::size_t>() ==
              full.steps.size());
        // The steps carried are the first of the full trace, in order.
        const json::array all = trace_to_json(full);
        for (std::size_t i = 0; i < steps.size(); ++i) {
            CHECK(steps[i] == all[i]);
        }
        // Not cut short: the room left is less than one more step (and up to 20 digits
        // the omitted count may need).
        CHECK(text.size() + json::serialize(all[steps.size()]).size() + 1 + 20 > limit);
    }

    SECTION("an answer exactly at the limit is not cut") {
        Trace trace;
        trace.max_steps = trace_steps_within(untrimmed.size());
        evaluate(*policy, request, &trace);
        CHECK(decision_to_text(decided, id, &trace, untrimmed.size()) == untrimmed);
    }
    SECTION("a decision whose own fields are past the limit keeps them, with no step") {
        const json::value long_id(std::string(5000, 'i'));
        const std::string text = decision_to_text(decided, long_id, &full, 4096);
        const json::object answer = json::parse(text).as_object();
        CHECK(answer.at("id") == long_id);
        CHECK(answer.at("decision") == "allow");
        CHECK(answer.at("trace").as_array().empty());
        CHECK(answer.at("trace_truncated") == true);
        CHECK(answer.at("trace_steps_omitted") == full.steps.size());
    }
}
