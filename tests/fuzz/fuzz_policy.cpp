// Fuzzes the policy pipeline with arbitrary file contents: parsing, checking and
// compiling must never crash, hang or leak, whatever the bytes; a file that parses
// formats to text that parses again, and formatting that text changes nothing.
#include "dsl/formatter.hpp"
#include "dsl/parser.hpp"
#include "dsl/policy_loader.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace flowgate::dsl;
    std::string text(reinterpret_cast<const char*>(data), size);

    LoadResult loaded = load_policy(std::vector<PolicyText>{{"fuzz.policy", text}});
    (void)loaded;

    Diagnostics diagnostics;
    std::optional<std::string> formatted = format_policy_text("fuzz.policy", text, diagnostics);
    if (!formatted) {
        return 0;
    }
    Diagnostics again;
    std::optional<std::string> twice = format_policy_text("fuzz.policy", *formatted, again);
    if (!twice || *twice != *formatted) {
        std::abort(); // formatting must be idempotent and keep the text parseable
    }
    return 0;
}
