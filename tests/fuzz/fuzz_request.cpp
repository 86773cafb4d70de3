// Fuzzes the request side of the wire protocol against the bundled policy: any line a
// client may send is either refused with an error or decided, and the decision's
// answer text is the same as the serialized JSON answer. Never a crash.
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace {

const flowgate::dsl::CompiledPolicy& bundled_policy() {
    static const auto loaded = [] {
        const char* dir = std::getenv("FLOWGATE_POLICY_DIR");
        auto result = flowgate::dsl::load_policy(
            std::filesystem::path(dir != nullptr ? dir : FLOWGATE_SOURCE_DIR "/policies"));
        if (!result) {
            std::abort();
        }
        return result.policy;
    }();
    return *loaded;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace flowgate::dsl;
    const CompiledPolicy& policy = bundled_policy();
    boost::system::error_code error;
    boost::json::value value =
        boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), error);
    if (error) {
        return 0;
    }
    RequestParse parsed = request_from_json(value);
    if (!std::holds_alternative<Request>(parsed)) {
        return 0;
    }
    Trace trace;
    Decision decision = evaluate(policy, std::get<Request>(parsed), &trace);
    Decision untraced = evaluate(policy, std::get<Request>(parsed));
    if (decision.allowed != untraced.allowed || decision.rule != untraced.rule) {
        std::abort(); // the trace walk and the index must decide alike
    }
    if (decision_to_text(untraced, nullptr) !=
        boost::json::serialize(decision_to_json(untraced, nullptr))) {
        std::abort();
    }
    return 0;
}
