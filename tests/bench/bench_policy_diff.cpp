// `policy diff` time: the whole joint request space of two policies walked and compared,
// on the bundled policy (against itself, and against a copy whose lifestyle programme
// permit no longer asks for anything) and on the generated 10,000-permit policy
// (against itself, and against a copy without one forbid and with one condition
// dropped). The promise: under 1 s on the bundled policy and 30 s on the generated one.
// Run a Release build: bench_policy_diff [policies-dir]
#include "dsl/policy_diff.hpp"
#include "dsl/policy_loader.hpp"
#include "tests/bench/bench_policies.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace flowgate::dsl;

namespace {

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    if (at == std::string::npos) {
        std::fprintf(stderr, "bench_policy_diff: '%s' is not in the policy\n", from.c_str());
        std::exit(1);
    }
    return text.replace(at, from.size(), to);
}

void measure(const char* name, const CompiledPolicy& before, const CompiledPolicy& after) {
    auto start = std::chrono::steady_clock::now();
    PolicyDiff diff = diff_policies(before, after);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "%-34s rules %6zu  requests %12llu  classes %9llu  changed %8llu in %4zu groups  "
        "%7.3f s\n",
        name, after.model().rules.size(), static_cast<unsigned long long>(diff.space.requests),
        static_cast<unsigned long long>(diff.space.classes),
        static_cast<unsigned long long>(diff.changed_requests), diff.groups.size(), seconds);
}

} // namespace

int main(int argc, char** argv) {
    using flowgate::bench::load_or_exit;
    auto bundled = flowgate::bench::load_bundled_or_exit(argc, argv);
    std::vector<PolicyText> texts = bundled->texts();
    for (PolicyText& text : texts) {
        if (text.name.ends_with("kenpo.policy")) {
            text.text = replaced(text.text,
                                 "  when consent and not objection;\n  basis "
                                 "appi_27_1_consent;\n",
                                 "  basis appi_27_1_consent;\n");
        }
    }
    auto edited = load_or_exit(texts);
    measure("bundled, against itself", *bundled, *bundled);
    measure("bundled, one condition dropped", *bundled, *edited);

    std::string text = flowgate::bench::generated_policy();
    auto generated = load_or_exit({{"generated.policy", text}});
    std::string changed = replaced(text, "forbid no_blocked { to blocked; }\n", "");
    changed = replaced(changed,
                       "permit p500_00 { purpose purpose50; activity activity0; to "
                       "party100; data cat20; when consent and not objection;",
                       "permit p500_00 { purpose purpose50; activity activity0; to party100; "
                       "data cat20;");
    auto generated_changed = load_or_exit({{"generated.policy", changed}});
    measure("generated 10k, against itself", *generated, *generated);
    measure("generated 10k, two rules changed", *generated, *generated_changed);
    return 0;
}
