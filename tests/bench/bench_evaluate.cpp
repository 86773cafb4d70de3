// Decision latency: median and p99 nanoseconds per evaluate() call, on the bundled
// policy (a mix of allowed and denied requests over all its activities) and on a
// generated policy of 10,000 permits loaded through the real parser, checker and
// compiler. The index promises that the second is not much slower than the first.
// Run a Release build: bench_evaluate [policies-dir]
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace flowgate::dsl;

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

// 100 purposes x 10 activities, each activity with 2 recipients and 5 categories and
// one permit per (recipient, category): 10,000 permits, plus a few forbids.
std::string generated_policy() {
    std::string text;
    for (int c = 0; c < 40; ++c) {
        text += "category cat" + std::to_string(c) + " \"区分" + std::to_string(c) +
                "\" sensitivity " + (c % 4 == 0 ? "special_care" : "ordinary") + ";\n";
    }
    text += "category number \"個人番号\" sensitivity specific;\n";
    for (int p = 0; p < 200; ++p) {
        text += "party party" + std::to_string(p) + " \"委託先" + std::to_string(p) + "\" role " +
                (p % 10 == 0 ? "third_party" : "contractor") + ";\n";
    }
    text += "party blocked \"取引停止先\" role contractor;\n";
    text += "ground outsourcing \"委託\";\nobligation record \"提供記録\";\n";
    const char* kinds[] = {"outsource", "provide", "internal", "joint", "report"};
    std::string rules;
    for (int p = 0; p < 100; ++p) {
        std::string purpose = "purpose" + std::to_string(p);
        text += "purpose " + purpose + " \"利用目的" + std::to_string(p) + "\" {\n";
        for (int a = 0; a < 10; ++a) {
            int n = p * 10 + a;
            std::string activity = "activity" + std::to_string(a);
            std::string r[2] = {"party" + std::to_string(n % 200),
                                "party" + std::to_string((n * 7 + 1) % 200)};
            if (r[1] == r[0]) {
                r[1] = "party" + std::to_string((n + 1) % 200);
            }
            std::string c[5];
            for (int k = 0; k < 5; ++k) {
                c[k] = "cat" + std::to_string((n * 3 + k * 8) % 40);
            }
            text += "  activity " + activity + " \"活動" + std::to_string(a) + "\" kind " +
                    kinds[n % 5] + " to [" + r[0] + ", " + r[1] + "] data [" + c[0] + ", " + c[1] +
                    ", " + c[2] + ", " + c[3] + ", " + c[4] + "];\n";
            for (int i = 0; i < 2; ++i) {
                for (int k = 0; k < 5; ++k) {
                    rules += "permit p" + std::to_string(n) + "_" + std::to_string(i) +
                             std::to_string(k) + " { purpose " + purpose + "; activity " +
                             activity + "; to " + r[i] + "; data " + c[k] + ";" +
                             (k == 0 ? " when consent and not objection;" : "") +
                             " basis outsourcing; oblige record; }\n";
                }
            }
        }
        text += "}\n";
    }
    text += rules;
    text += "forbid no_numbers { data sensitivity specific; kind not internal; }\n";
    text += "forbid no_blocked { to blocked; }\n";
    text += "forbid third_party_care { to role third_party; data sensitivity special_care; "
            "when objection; }\n";
    return text;
}

} // namespace

int main(int argc, char** argv) {
    std::string directory = argc > 1 ? argv[1] : FLOWGATE_SOURCE_DIR "/policies";
    LoadResult bundled = load_policy(std::filesystem::path(directory));
    if (!bundled) {
        std::fputs(format(bundled.diagnostics).c_str(), stderr);
        return 1;
    }
    std::size_t bundled_requests = measure("bundled policy", *bundled.policy);

    auto start = std::chrono::steady_clock::now();
    LoadResult generated =
        load_policy(std::vector<PolicyText>{{"generated.policy", generated_policy()}});
    auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    if (!generated) {
        std::fputs(format(generated.diagnostics).substr(0, 4000).c_str(), stderr);
        return 1;
    }
    std::printf("generated policy loaded in %lld ms\n", static_cast<long long>(load_ms));
    // Once with as many distinct requests as the bundled policy has (the same working set,
    // so only the rule count differs), once with every request of the generated policy
    // (a working set far larger than the caches).
    measure("generated 10k, sample", *generated.policy, bundled_requests);
    measure("generated 10k, all", *generated.policy);
    return 0;
}
