// Decision latency: median and p99 nanoseconds per evaluate() call, on the bundled
// policy (a mix of allowed and denied requests over all its activities) and on a
// generated policy of 10,000 permits loaded through the real parser, checker and
// compiler. The index promises that the second is not much slower than the first.
// Run a Release build: bench_evaluate [policies-dir]
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"
#include "tests/bench/bench_policies.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace flowgate::dsl;
using flowgate::bench::generated_policy;

namespace {

constexpr int batch = 64;
constexpr int batches = 20000;

// Allowed and denied requests over every activity: each of its recipients and one
// other party, each of its categories and one it does not list, with and without
// consent.
std::vector<Request> requests_for(const CompiledPolicy& policy) {
    const CheckedPolicy& model = policy.model();
    std::vector<Request> out;
    for (const Purpose& purpose : model.purposes) {
        for (Id a : purpose.activities) {
            const Activity& activity = model.activities[a];
            std::vector<Id> recipients = activity.recipients;
            recipients.push_back((a * 7 + 3) % static_cast<Id>(model.parties.size()));
            std::vector<Id> categories = activity.categories;
            categories.push_back((a * 5 + 1) % static_cast<Id>(model.categories.size()));
            for (Id r : recipients) {
                for (Id c : categories) {
                    for (bool consent : {true, false}) {
                        Request request;
                        request.purpose = purpose.id;
                        request.activity = activity.id;
                        request.recipient = model.parties[r].id;
                        request.data = {model.categories[c].id};
                        request.direction = activity.kind == FlowKind::receive ? Direction::receive
                                                                               : Direction::send;
                        request.context.consent = consent;
                        out.push_back(std::move(request));
                    }
                }
            }
        }
    }
    // Interleave so that consecutive calls do not share their keys.
    std::vector<Request> shuffled;
    for (std::size_t stride = 0; stride < 7; ++stride) {
        for (std::size_t i = stride; i < out.size(); i += 7) {
            shuffled.push_back(out[i]);
        }
    }
    return shuffled;
}

// `sample`: use that many requests spread over the whole set (0: all of them), so two
// policies can be compared with the same number of distinct requests in flight.
std::size_t measure(const char* name, const CompiledPolicy& policy, std::size_t sample = 0) {
    std::vector<Request> requests = requests_for(policy);
    if (sample != 0 && sample < requests.size()) {
        std::vector<Request> picked;
        for (std::size_t i = 0; i < sample; ++i) {
            picked.push_back(requests[i * requests.size() / sample]);
        }
        requests = std::move(picked);
    }
    std::size_t allowed = 0;
    for (const Request& request : requests) {
        allowed += evaluate(policy, request).allowed ? 1 : 0;
    }
    std::vector<double> per_call;
    per_call.reserve(batches);
    std::size_t next = 0;
    volatile std::size_t sink = 0;
    for (int b = 0; b < batches; ++b) {
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < batch; ++i) {
            Decision decision = evaluate(policy, requests[next]);
            sink = sink + (decision.allowed ? 1 : 0);
            next = next + 1 == requests.size() ? 0 : next + 1;
        }
        auto elapsed = std::chrono::steady_clock::now() - start;
        per_call.push_back(
            static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()) /
            batch);
    }
    std::sort(per_call.begin(), per_call.end());
    double median = per_call[per_call.size() / 2];
    double p99 = per_call[per_call.size() * 99 / 100];
    std::printf("%-22s rules %6zu  requests %5zu (%zu allowed)  median %7.1f ns  p99 %7.1f ns\n",
                name, policy.model().rules.size(), requests.size(), allowed, median, p99);
    return requests.size();
}

} // namespace

int main(int argc, char** argv) {
    auto bundled = flowgate::bench::load_bundled_or_exit(argc, argv);
    std::size_t bundled_requests = measure("bundled policy", *bundled);

    auto start = std::chrono::steady_clock::now();
    auto generated = flowgate::bench::load_or_exit({{"generated.policy", generated_policy()}});
    auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    std::printf("generated policy loaded in %lld ms\n", static_cast<long long>(load_ms));
    // Once with as many distinct requests as the bundled policy has (the same working set,
    // so only the rule count differs), once with every request of the generated policy
    // (a working set far larger than the caches).
    measure("generated 10k, sample", *generated, bundled_requests);
    measure("generated 10k, all", *generated);
    return 0;
}
