// A policy's request space is finite: purposes × activities (and none) × recipients
// (every party, class members included) × data categories × direction × the context its
// conditions can test (consent, objection, each declared ground and none). This file
// walks the union of several policies' spaces, grouped into classes of requests that
// each of the policies decides alike, and decides one request of each class with the
// real evaluator. `policy diff` compares two policies over it and `policy lint` asks
// which rules ever allow; docs/policy-diff.md says why the grouping is exact.
#pragma once

#include "evaluator.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace flowgate::dsl {

// Bits of a boolean context key's values in a class: 1 the value false, 2 the value true.
inline constexpr std::uint8_t context_false = 1;
inline constexpr std::uint8_t context_true = 2;
inline constexpr std::uint8_t context_any = context_false | context_true;

// One class of single-category requests that every policy of the walk decides alike: one
// purpose, one activity (or none), one direction, and the product of its recipients, its
// categories, its consent and objection values and its legal grounds. Names are
// identifiers and view the policies' models; a name may be unknown to some policy, which
// then denies the whole class.
struct RequestClass {
    std::string_view purpose;
    std::optional<std::string_view> activity;
    Direction direction = Direction::send;
    std::vector<std::string_view> recipients;
    std::vector<std::string_view> categories;
    std::uint8_t consent = context_any;
    std::uint8_t objection = context_any;
    // Grounds named as `legal_basis`; an empty view is a request without one. "No
    // legal_basis" is always a class of its own.
    std::vector<std::string_view> grounds;

    // The number of concrete requests the class stands for.
    std::uint64_t size() const;
};

struct RequestSpace {
    std::uint64_t requests = 0; // concrete requests, the sum of the classes' sizes
    std::uint64_t classes = 0;  // classes visited, each decided once per policy
};

// `decisions[i]` is `policies[i]`'s decision of every request of the class (as
// evaluate() gives it for any one of them; the deny reason may name the one decided).
using RequestClassVisitor =
    std::function<void(const RequestClass&, std::span<const Decision> decisions)>;

// Visits classes that partition the union of the policies' request spaces (every
// purpose, activity, party, category and ground any of them declares, by identifier),
// in purpose, activity, direction order. Requests with several categories are not
// enumerated: their decision is made of the single-category decisions under each
// activity and of the order in which a purpose's activities are tried (see
// docs/policy-diff.md).
RequestSpace walk_request_space(std::span<const CompiledPolicy* const> policies,
                                const RequestClassVisitor& visit);

} // namespace flowgate::dsl
