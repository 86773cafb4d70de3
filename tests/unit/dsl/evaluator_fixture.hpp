// What the evaluator's tests share: a policy written for a test, loaded through the real
// pipeline (parse, check, compile), and a request built in one line.
#pragma once

#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::dsl::testing {

inline std::shared_ptr<const CompiledPolicy> load_text(const std::string& name,
                                                       const std::string& text) {
    LoadResult loaded = load_policy(std::vector<PolicyText>{{name, text}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    return loaded.policy;
}

inline Request request(std::string purpose, std::optional<std::string> activity,
                       std::string recipient, std::vector<std::string> data) {
    Request r;
    r.purpose = std::move(purpose);
    r.activity = std::move(activity);
    r.recipient = std::move(recipient);
    r.data = std::move(data);
    return r;
}

} // namespace flowgate::dsl::testing
