// The audit report: the period's figures from one pass over its rows (in parts, side by
// side, merged after), then one HTML page of them. Every count is a count of rows as the
// reader gives them; labels and sensitivities come from the policies stored with the rows.
#include "cli/audit_report.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <iterator>
#include <type_traits>
#include <unordered_map>

namespace flowgate::cli {
namespace {

namespace json = boost::json;
using audit::AuditError;
using audit::AuditResult;
using audit::AuditRowView;

constexpr std::int64_t day_us = 86'400'000'000;

std::int64_t day_of(std::int64_t time_us) {
    return time_us >= 0 ? time_us / day_us : -((-time_us + day_us - 1) / day_us);
}

bool is_decision(std::string_view kind) {
    return kind == "check" || kind == "explain";
}

bool is_event(std::string_view kind) {
    return kind == "load" || kind == "reload" || kind == "reload_failed" ||
           kind == "admin_refused" || kind == "start" || kind == "stop" || kind == "init";
}

template <class Map> auto& entry(Map& map, std::string_view key) {
    auto found = map.find(key);
    if (found == map.end()) {
        found = map.emplace(std::string(key), typename Map::mapped_type{}).first;
    }
    return found->second;
}

} // namespace

// The period's figures from the rows of one part of the log.
class PeriodPass {
public:
    PeriodPass(PolicyFilesSource files, const AuditReportOptions& options)
        : m_selector(std::move(files), record_filter(options)) {}

    AuditResult<void> row(const AuditRowView& row) {
        ++m_period.rows;
        m_period.first_us = std::min(m_period.first_us.value_or(row.time_us), row.time_us);
        m_period.last_us = std::max(m_period.last_us.value_or(row.time_us), row.time_us);
        if (row.reason == audit::audit_unavailable_reason) {
            ++m_period.audit_unavailable;
        }
        if (is_decision(row.kind)) {
            return decision(row, caller(row));
        }
        if (row.kind == "refused") {
            ++m_period.refused;
            ++caller(row).refused;
            const std::string_view reason = row.reason;
            ++entry(m_period.refusal_codes, reason.substr(0, reason.find(':')));
            return boost::outcome_v2::success();
        }
        if (row.kind == "admin_refused") {
            ++caller(row).admin_refused;
        }
        if (is_event(row.kind)) {
            m_period.events.push_back({"", row.seq, row.time_us, std::string(row.kind),
                                       std::string(row.policy_hash), row.uid,
                                       std::string(row.service), std::string(row.detail)});
        }
        return boost::outcome_v2::success();
    }

    AuditPeriod& period() { return m_period; }

private:
    static RecordFilter record_filter(const AuditReportOptions& options) {
        RecordFilter filter;
        filter.consent_ground = options.consent_ground;
        return filter;
    }

    // The row's caller; rows come in runs from one caller, so the last is kept at hand.
    CallerCounts& caller(const AuditRowView& row) {
        if (m_caller == nullptr || row.uid != m_caller_uid || row.service != m_caller_service) {
            m_caller_uid = row.uid;
            m_caller_service = std::string(row.service);
            m_caller = &m_period.callers[{m_caller_uid, m_caller_service}];
        }
        return *m_caller;
    }

    AuditResult<void> decision(const AuditRowView& row, CallerCounts& caller) {
        ++m_period.decisions;
        const bool allowed = row.decision == "allow";
        ++(allowed ? m_period.allowed : m_period.denied);
        ++(allowed ? caller.allowed : caller.denied);
        AllowDeny& day = m_period.per_day[day_of(row.time_us)];
        ++(allowed ? day.allowed : day.denied);
        AllowDeny& purpose = entry(m_period.by_purpose, row.purpose);
        ++(allowed ? purpose.allowed : purpose.denied);
        AllowDeny& recipient = entry(m_period.by_recipient, row.recipient);
        ++(allowed ? recipient.allowed : recipient.denied);
        PolicyUse& use = entry(m_period.policies, row.policy_hash);
        use.first_us = use.decisions == 0 ? row.time_us : std::min(use.first_us, row.time_us);
        use.last_us = std::max(use.last_us, row.time_us);
        ++use.decisions;
        if (!allowed) {
            ++entry(m_period.deny_reasons, row.reason);
            return boost::outcome_v2::success();
        }
        auto record = m_selector.select(row);
        if (!record) {
            return record.error();
        }
        if (record.value()) {
            ++m_period.provision_records;
            ProvisionsTo& to = m_period.provisions[record.value()->recipient];
            to.label = record.value()->recipient_label;
            ++to.records;
            to.persons.insert(record.value()->subject);
        }
        if (row.direction == "send") {
            auto sensitivity = sensitivities(row);
            if (!sensitivity) {
                return sensitivity.error();
            }
            if (sensitivity.value().special_care != 0 || sensitivity.value().specific != 0) {
                SensitiveSends& sent = entry(m_period.sensitive, row.recipient);
                sent.special_care += sensitivity.value().special_care;
                sent.specific += sensitivity.value().specific;
            }
        }
        return boost::outcome_v2::success();
    }

    // Whether the row's data holds special-care or specific categories (1 or 0 each),
    // under its own policy; worked out once per policy and data text.
    AuditResult<SensitiveSends> sensitivities(const AuditRowView& row) {
        const StoredPolicy& stored = m_selector.policies().get(row.policy_hash);
        if (!stored.policy) {
            return AuditError{audit::AuditErrc::bad_schema,
                              "seq " + std::to_string(row.seq) + ": " + stored.error};
        }
        auto& known = m_sensitivities[stored.policy.get()];
        auto found = known.find(row.data);
        if (found != known.end()) {
            return found->second;
        }
        SensitiveSends flags;
        boost::system::error_code error;
        const json::value data = json::parse(row.data, error);
        if (!error && data.is_array()) {
            for (const json::value& item : data.as_array()) {
                if (!item.is_string()) {
                    continue;
                }
                const dsl::Id id = stored.policy->find_category(item.as_string());
                if (id == dsl::no_id) {
                    continue;
                }
                const dsl::Sensitivity level = stored.policy->model().categories[id].sensitivity;
                flags.special_care |= level == dsl::Sensitivity::special_care ? 1 : 0;
                flags.specific |= level == dsl::Sensitivity::specific ? 1 : 0;
            }
        }
        known.emplace(std::string(row.data), flags);
        return flags;
    }

    ProvisionSelector m_selector;
    std::unordered_map<const dsl::CompiledPolicy*,
                       std::map<std::string, SensitiveSends, std::less<>>>
        m_sensitivities;
    AuditPeriod m_period;
    CallerCounts* m_caller = nullptr;
    std::int64_t m_caller_uid = -1;
    std::string m_caller_service;
};

namespace {

template <class Map> void add_counts(Map& into, const Map& from) {
    for (const auto& [key, counts] : from) {
        auto& target = into[key];
        if constexpr (std::is_same_v<typename Map::mapped_type, AllowDeny>) {
            target.allowed += counts.allowed;
            target.denied += counts.denied;
        } else if constexpr (std::is_same_v<typename Map::mapped_type, SensitiveSends>) {
            target.special_care += counts.special_care;
            target.specific += counts.specific;
        } else if constexpr (std::is_same_v<typename Map::mapped_type, CallerCounts>) {
            target.allowed += counts.allowed;
            target.denied += counts.denied;
            target.refused += counts.refused;
            target.admin_refused += counts.admin_refused;
        } else {
            target += counts;
        }
    }
}

} // namespace

void add_period(AuditPeriod& into, AuditPeriod& part) {
    into.rows += part.rows;
    into.decisions += part.decisions;
    into.allowed += part.allowed;
    into.denied += part.denied;
    into.refused += part.refused;
    into.audit_unavailable += part.audit_unavailable;
    if (part.first_us) {
        into.first_us = std::min(into.first_us.value_or(*part.first_us), *part.first_us);
        into.last_us = std::max(into.last_us.value_or(*part.last_us), *part.last_us);
    }
    add_counts(into.per_day, part.per_day);
    add_counts(into.by_purpose, part.by_purpose);
    add_counts(into.by_recipient, part.by_recipient);
    add_counts(into.deny_reasons, part.deny_reasons);
    add_counts(into.refusal_codes, part.refusal_codes);
    add_counts(into.sensitive, part.sensitive);
    add_counts(into.callers, part.callers);
    into.provision_records += part.provision_records;
    for (auto& [recipient, to] : part.provisions) {
        ProvisionsTo& target = into.provisions[recipient];
        target.label = to.label;
        target.records += to.records;
        target.persons.merge(to.persons);
    }
    std::move(part.events.begin(), part.events.end(), std::back_inserter(into.events));
    for (const auto& [hash, use] : part.policies) {
        PolicyUse& target = into.policies[hash];
        target.first_us =
            target.decisions == 0 ? use.first_us : std::min(target.first_us, use.first_us);
        target.last_us = std::max(target.last_us, use.last_us);
        target.decisions += use.decisions;
    }
    into.purpose_labels.merge(part.purpose_labels);
    into.party_labels.merge(part.party_labels);
}

namespace {

// Labels from the policies that decided the period, the latest first.
void find_labels(PolicyFilesSource files, AuditPeriod& period) {
    std::vector<std::pair<std::int64_t, std::string>> latest_first;
    for (const auto& [hash, use] : period.policies) {
        latest_first.emplace_back(use.last_us, hash);
    }
    std::sort(latest_first.rbegin(), latest_first.rend());
    PolicyCache cache(std::move(files));
    std::vector<const dsl::CompiledPolicy*> policies;
    for (const auto& [time, hash] : latest_first) {
        const StoredPolicy& stored = cache.get(hash);
        if (stored.policy) {
            policies.push_back(stored.policy.get());
        }
    }
    auto label = [&](const std::string& name, bool purpose) -> std::string {
        for (const dsl::CompiledPolicy* policy : policies) {
            const dsl::Id id = purpose ? policy->find_purpose(name) : policy->find_party(name);
            if (id != dsl::no_id) {
                return purpose ? policy->model().purposes[id].label
                               : policy->model().parties[id].label;
            }
        }
        return std::string();
    };
    for (const auto& [purpose, counts] : period.by_purpose) {
        period.purpose_labels[purpose] = label(purpose, true);
    }
    for (const auto& [recipient, counts] : period.by_recipient) {
        period.party_labels[recipient] = label(recipient, false);
    }
}

} // namespace

AuditResult<AuditPeriod> summarize_period(audit::AuditReader& reader,
                                          const AuditReportOptions& options) {
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    auto parts = audit::run_parts<AuditPeriod>(
        reader, last.value(), options.pass,
        [&options](audit::AuditReader& own, const audit::Part& part,
                   audit::RowCounter& counter) -> AuditResult<AuditPeriod> {
            PeriodPass pass(policy_files_of(own), options);
            audit::AuditRowRange range = part.range;
            range.since_us = options.since_us;
            range.until_us = options.until_us;
            std::optional<AuditError> failure;
            auto walked = own.for_each_row(range, [&](const AuditRowView& row) {
                counter.row();
                auto done = pass.row(row);
                if (!done) {
                    failure = done.error();
                    return false;
                }
                return true;
            });
            if (!walked) {
                return walked.error();
            }
            if (failure) {
                return *failure;
            }
            return std::move(pass.period());
        });
    if (!parts) {
        return parts.error();
    }
    AuditPeriod period;
    period.since_us = options.since_us;
    period.until_us = options.until_us;
    for (AuditPeriod& part : parts.value()) {
        add_period(period, part);
    }
    find_labels(policy_files_of(reader), period);
    return period;
}

PeriodSummary::PeriodSummary(PolicyFilesSource files, const AuditReportOptions& options)
    : m_files(files), m_options(options),
      m_pass(std::make_unique<PeriodPass>(std::move(files), options)) {}

PeriodSummary::~PeriodSummary() = default;

AuditResult<void> PeriodSummary::row(const AuditRowView& row) {
    if ((m_options.since_us && row.time_us < *m_options.since_us) ||
        (m_options.until_us && row.time_us >= *m_options.until_us)) {
        return boost::outcome_v2::success();
    }
    return m_pass->row(row);
}

AuditPeriod PeriodSummary::finish() {
    AuditPeriod period;
    period.since_us = m_options.since_us;
    period.until_us = m_options.until_us;
    add_period(period, m_pass->period());
    find_labels(m_files, period);
    return period;
}

} // namespace flowgate::cli
