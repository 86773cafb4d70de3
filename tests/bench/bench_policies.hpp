// The policies the benchmarks load: the bundled one (or the directory the command line
// names) and a generated one of 100 purposes of 10 activities each, every activity with
// 2 recipients (of 200 contractors and third parties) and 5 of 40 categories, one permit
// per (recipient, category): 10,000 permits, plus a few forbids. bench_evaluate times
// decisions on them, bench_policy_diff the whole request space.
#pragma once

#include "dsl/policy_loader.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace flowgate::bench {

namespace dsl = flowgate::dsl;

// 100 purposes x 10 activities, each activity with 2 recipients and 5 categories and
// one permit per (recipient, category): 10,000 permits, plus a few forbids.
inline std::string generated_policy() {
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

// The policy of these texts; a policy that does not load ends the benchmark.
inline std::shared_ptr<const dsl::CompiledPolicy> load_or_exit(std::vector<dsl::PolicyText> texts) {
    dsl::LoadResult loaded = dsl::load_policy(std::move(texts));
    if (!loaded) {
        std::fputs(dsl::format(loaded.diagnostics).substr(0, 4000).c_str(), stderr);
        std::exit(1);
    }
    return loaded.policy;
}

// The policy directory given as the first argument, else the bundled one.
inline std::shared_ptr<const dsl::CompiledPolicy> load_bundled_or_exit(int argc, char** argv) {
    std::string directory = argc > 1 ? argv[1] : FLOWGATE_SOURCE_DIR "/policies";
    dsl::LoadResult bundled = dsl::load_policy(std::filesystem::path(directory));
    if (!bundled) {
        std::fputs(dsl::format(bundled.diagnostics).c_str(), stderr);
        std::exit(1);
    }
    return bundled.policy;
}

} // namespace flowgate::bench
