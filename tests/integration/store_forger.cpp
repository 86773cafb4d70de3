// A forged store through flowgate's own reader and writer; see store_forger.hpp.
#include "tests/integration/store_forger.hpp"

#include "audit/reader.hpp"
#include "audit/store.hpp"

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <set>

namespace flowgate::integration {

void forge_store(const std::filesystem::path& source, const std::filesystem::path& forged,
                 const std::function<void(std::vector<audit::AuditRecord>&)>& edit) {
    // The writer's own lines (its checkpoints) are not the test's output.
    const spdlog::level::level_enum level = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);
    auto reader = audit::AuditReader::open(source);
    REQUIRE(reader);
    auto origin = reader.value()->origin();
    auto rows = reader.value()->rows();
    REQUIRE(origin);
    REQUIRE(rows);
    std::vector<audit::AuditRecord> records = std::move(rows).value();
    edit(records);

    audit::AuditOptions options;
    options.durability = audit::AuditDurability::relaxed;
    auto store = audit::AuditStore::create(forged, options, origin.value());
    INFO((store ? std::string() : store.error().message));
    REQUIRE(store);
    std::set<std::string> hashes;
    for (const audit::AuditRecord& record : records) {
        if (!record.policy_hash.empty() && hashes.insert(record.policy_hash).second) {
            auto files = reader.value()->policy_files(record.policy_hash);
            REQUIRE(files);
            if (!files.value().empty()) {
                REQUIRE(store.value()->store_policy(record.policy_hash, files.value()));
            }
        }
        REQUIRE(store.value()->append(record));
    }
    store.value()->close();
    spdlog::set_level(level);
}

} // namespace flowgate::integration
