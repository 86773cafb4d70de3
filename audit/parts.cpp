// Cutting a log into parts; see parts.hpp.
#include "audit/parts.hpp"

namespace flowgate::audit {

std::vector<Part> split_log(std::uint64_t last, const PassOptions& options) {
    unsigned count = 1;
    if (last >= options.split_from_rows && last > 1) {
        const unsigned wanted = options.threads != 0
                                    ? options.threads
                                    : std::max(1U, std::thread::hardware_concurrency());
        count = std::min(wanted, 16U);
    }
    // Equal parts, each at least one seq long, none starting past the last row.
    const std::uint64_t size = (last + count - 1) / std::max(count, 1U);
    if (size > 0) {
        count = static_cast<unsigned>(std::min<std::uint64_t>(count, (last + size - 1) / size));
    }
    std::vector<Part> out;
    for (unsigned i = 0; i < count; ++i) {
        Part part;
        part.start = 1 + i * size;
        part.range.from_seq = i == 0 ? INT64_MIN : static_cast<std::int64_t>(part.start);
        if (i + 1 < count) {
            part.end = part.start + size - 1;
            part.range.to_seq = static_cast<std::int64_t>(*part.end);
        }
        out.push_back(part);
    }
    return out;
}

} // namespace flowgate::audit
