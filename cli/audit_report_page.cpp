// The audit report's page and its words: the verdict first, then the period in numbers,
// its charts, the policies in force and the callers. Every text from the store is
// escaped (a recipient typed by a caller is data, never markup); every figure carries a
// data- attribute naming it, so a test reads what a person sees.
#include "cli/audit_report.hpp"
#include "cli/html.hpp"
#include "cli/svg_chart.hpp"

#include <algorithm>

namespace flowgate::cli {
namespace {

using html::append_escaped;
using html::figure;

constexpr std::int64_t day_us = 86'400'000'000;

std::string date_of_day(std::int64_t day) {
    return iso_time(day * day_us).substr(0, 10);
}

std::string count(std::uint64_t n, std::string_view one, std::string_view many) {
    return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// "label (id)", or the id alone when the policies have no label for it.
std::string labelled(const std::map<std::string, std::string>& labels, const std::string& id) {
    if (id.empty()) {
        return "(none)";
    }
    auto found = labels.find(id);
    if (found == labels.end() || found->second.empty() || found->second == id) {
        return id;
    }
    return found->second + " (" + id + ")";
}

template <class Map>
std::vector<svg::Bar> allow_deny_bars(const Map& counts,
                                      const std::map<std::string, std::string>& labels) {
    std::vector<svg::Bar> bars;
    for (const auto& [id, c] : counts) {
        bars.push_back({labelled(labels, id),
                        {static_cast<double>(c.allowed), static_cast<double>(c.denied)},
                        id});
    }
    std::stable_sort(bars.begin(), bars.end(), [](const svg::Bar& a, const svg::Bar& b) {
        return a.values[0] + a.values[1] > b.values[0] + b.values[1];
    });
    return bars;
}

const std::vector<svg::Series> allow_deny_series = {{"allowed", "#2e7d32"}, {"denied", "#c62828"}};

void chart(std::string& out, const svg::BarChart& bar_chart, bool over_time,
           std::string_view note) {
    out += "<figure><figcaption>";
    append_escaped(out, bar_chart.title);
    out += "</figcaption>";
    if (bar_chart.bars.empty()) {
        out += "<p class=\"muted\" data-empty=\"";
        append_escaped(out, bar_chart.id);
        out += "\">None in the period.</p>";
    } else {
        out += over_time ? svg::columns(bar_chart) : svg::horizontal_bars(bar_chart);
    }
    if (!note.empty()) {
        out += "<p class=\"muted\">";
        append_escaped(out, note);
        out += "</p>";
    }
    out += "</figure>\n";
}

svg::BarChart per_day_chart(const AuditPeriod& period) {
    svg::BarChart days{"chart-per-day", "Decisions per day (UTC)", allow_deny_series, {}};
    if (period.per_day.empty()) {
        return days;
    }
    const std::int64_t first = period.per_day.begin()->first;
    const std::int64_t last = period.per_day.rbegin()->first;
    // Every day between the first and the last, so that a quiet day shows as one; a
    // period of years shows only its days with decisions.
    const bool fill = last - first < 1000;
    for (std::int64_t day = first; day <= last; ++day) {
        auto found = period.per_day.find(day);
        if (found == period.per_day.end()) {
            if (fill) {
                days.bars.push_back({date_of_day(day), {0, 0}, date_of_day(day)});
            }
            continue;
        }
        days.bars.push_back({date_of_day(day),
                             {static_cast<double>(found->second.allowed),
                              static_cast<double>(found->second.denied)},
                             date_of_day(day)});
    }
    return days;
}

// The verdict on one log: the file's (its section the page's #verification), or one
// host's in the central store (named by its origin).
void verdict(std::string& out, const ReportVerification& verification,
             const std::string& origin = "") {
    const audit::VerifyResult& result = verification.result;
    out += origin.empty() ? "<section id=\"verification\" class=\"verdict"
                          : "<section class=\"verdict host";
    out += verification.ok() ? "" : " failed";
    out += "\" data-verdict=\"";
    out += verification.ok() ? "ok" : "failed";
    out += "\" data-rows=\"" + std::to_string(result.rows) + "\" data-last-seq=\"" +
           std::to_string(result.tail.seq) + "\" data-tree-nodes=\"" +
           std::to_string(result.tree_nodes) + "\" data-checkpoints=\"" +
           std::to_string(result.checkpoints) + "\" data-key=\"";
    append_escaped(out, verification.key_name.value_or(""));
    if (!origin.empty()) {
        out += "\" data-origin=\"";
        append_escaped(out, origin);
        out += "\"><h3>";
        append_escaped(out, origin);
        out += verification.ok() ? ": 改ざんなし (the log verifies)"
                                 : ": 不一致 (the log does NOT verify)";
        out += "</h3>\n";
    } else {
        out += "\"><h2>";
        out += verification.ok() ? "検証結果: 改ざんなし (the log verifies)"
                                 : "検証結果: 不一致 (the log does NOT verify)";
        out += "</h2>\n";
    }
    for (const std::string& sentence : verification_sentences(verification)) {
        out += "<p>";
        append_escaped(out, sentence);
        out += "</p>\n";
    }
    out += "</section>\n";
}

std::string period_words(const AuditPeriod& period) {
    std::string from = period.since_us ? iso_time(*period.since_us) : "the log's first row";
    std::string to = period.until_us ? iso_time(*period.until_us) : "its last row";
    std::string words = "Period: from " + from + " (inclusive) to " + to +
                        (period.until_us ? " (exclusive)" : "") + ", UTC.";
    if (period.first_us) {
        words += " Its rows run from " + iso_time(*period.first_us) + " to " +
                 iso_time(*period.last_us) + ".";
    }
    return words;
}

void provisions_table(std::string& out, const AuditPeriod& period) {
    out += "<table id=\"provisions\"><thead><tr><th>提供先 (recipient)</th><th>records</th>"
           "<th>persons</th></tr></thead><tbody>\n";
    for (const auto& [recipient, to] : period.provisions) {
        out += "<tr data-recipient=\"";
        append_escaped(out, recipient);
        out += "\" data-records=\"" + std::to_string(to.records) + "\" data-persons=\"" +
               std::to_string(to.persons.size()) + "\"><td>";
        append_escaped(out, to.label.empty() ? recipient : to.label + " (" + recipient + ")");
        out += "</td><td>" + std::to_string(to.records) + "</td><td>" +
               std::to_string(to.persons.size()) + "</td></tr>\n";
    }
    out += "</tbody></table>\n";
}

std::string_view event_words(std::string_view kind) {
    if (kind == "load") {
        return "loaded at start";
    }
    if (kind == "reload") {
        return "reloaded";
    }
    if (kind == "reload_failed") {
        return "reload refused (the old policy kept serving)";
    }
    if (kind == "admin_refused") {
        return "admin command from a caller who is not an admin";
    }
    if (kind == "start") {
        return "daemon started";
    }
    if (kind == "stop") {
        return "daemon stopped";
    }
    return "store created";
}

void policies_section(std::string& out, const AuditPeriod& period) {
    out += "<section id=\"policies\"><h2>適用されたポリシー (policies in force)</h2>\n"
           "<h3>Policies that decided the period's checks</h3>\n<table id=\"policies-used\">"
           "<thead><tr><th>policy</th><th>decisions</th><th>first</th><th>last</th></tr>"
           "</thead><tbody>\n";
    std::vector<std::pair<std::string, PolicyUse>> uses(period.policies.begin(),
                                                        period.policies.end());
    std::sort(uses.begin(), uses.end(),
              [](const auto& a, const auto& b) { return a.second.first_us < b.second.first_us; });
    for (const auto& [hash, use] : uses) {
        out += "<tr data-hash=\"";
        append_escaped(out, hash);
        out += "\" data-decisions=\"" + std::to_string(use.decisions) + "\"><td><code>";
        append_escaped(out, hash);
        out += "</code></td><td>" + std::to_string(use.decisions) + "</td><td>" +
               iso_time(use.first_us) + "</td><td>" + iso_time(use.last_us) + "</td></tr>\n";
    }
    out += "</tbody></table>\n<h3>Loads, reloads, failed reloads and refused admin "
           "commands</h3>\n<table id=\"policy-events\"><thead><tr><th>seq</th><th>time</th>"
           "<th>event</th><th>policy</th><th>who (uid / service)</th><th>detail</th></tr>"
           "</thead><tbody>\n";
    for (const PolicyEvent& event : period.events) {
        out += "<tr class=\"event ";
        append_escaped(out, event.kind);
        out += "\" data-seq=\"" + std::to_string(event.seq);
        if (!event.origin.empty()) {
            out += "\" data-origin=\"";
            append_escaped(out, event.origin);
        }
        out += "\" data-kind=\"";
        append_escaped(out, event.kind);
        out += "\" data-hash=\"";
        append_escaped(out, event.policy_hash);
        out += "\" data-uid=\"" + std::to_string(event.uid) + "\" data-service=\"";
        append_escaped(out, event.service);
        out += "\"><td>";
        if (!event.origin.empty()) {
            append_escaped(out, event.origin);
            out += " ";
        }
        out += std::to_string(event.seq) + "</td><td>" + iso_time(event.time_us) + "</td><td>";
        append_escaped(out, event_words(event.kind));
        out += " <code class=\"muted\">";
        append_escaped(out, event.kind);
        out += "</code></td><td><code>";
        append_escaped(out, event.policy_hash);
        out += "</code></td><td>" + std::to_string(event.uid) + " / ";
        append_escaped(out, event.service);
        out += "</td><td><pre class=\"detail\">";
        // A failed reload's diagnostics can run long: their first lines say what failed.
        const std::size_t limit = 600;
        append_escaped(out, event.detail.substr(0, limit));
        if (event.detail.size() > limit) {
            out += "…";
        }
        out += "</pre></td></tr>\n";
    }
    out += "</tbody></table></section>\n";
}

// A caller worth a look: it sent requests that could not be understood, tried an admin
// command it may not, is denied at least as often as it is allowed, or has no service
// name in the configuration.
bool stands_out(const std::pair<std::int64_t, std::string>& who, const CallerCounts& c) {
    return c.refused > 0 || c.admin_refused > 0 || (c.denied > 0 && c.denied >= c.allowed) ||
           who.second.starts_with("uid:");
}

void callers_section(std::string& out, const AuditPeriod& period) {
    svg::BarChart callers{"chart-callers",
                          "Requests per caller (uid / service)",
                          {{"allowed", "#2e7d32"}, {"denied", "#c62828"}, {"refused", "#6d4c41"}},
                          {}};
    out += "<section id=\"callers\"><h2>呼び出し元 (callers)</h2>\n";
    for (const auto& [who, c] : period.callers) {
        callers.bars.push_back({std::to_string(who.first) + " / " + who.second,
                                {static_cast<double>(c.allowed), static_cast<double>(c.denied),
                                 static_cast<double>(c.refused)},
                                std::to_string(who.first) + "/" + who.second});
    }
    chart(out, callers, false, "");
    out += "<p class=\"muted\">Marked ⚠: a caller that sent requests that could not be "
           "understood, tried an admin command it may not, was denied at least as often as "
           "allowed, or has no service name in the configuration (uid:N).</p>\n"
           "<table id=\"callers-table\"><thead><tr><th></th><th>uid</th><th>service</th>"
           "<th>decisions</th><th>allowed</th><th>denied</th><th>refused</th>"
           "<th>admin refused</th></tr></thead><tbody>\n";
    for (const auto& [who, c] : period.callers) {
        const bool marked = stands_out(who, c);
        out += "<tr class=\"caller";
        out += marked ? " stands-out" : "";
        out += "\" data-uid=\"" + std::to_string(who.first) + "\" data-service=\"";
        append_escaped(out, who.second);
        out += "\" data-allowed=\"" + std::to_string(c.allowed) + "\" data-denied=\"" +
               std::to_string(c.denied) + "\" data-refused=\"" + std::to_string(c.refused) +
               "\" data-admin-refused=\"" + std::to_string(c.admin_refused) +
               "\" data-stands-out=\"" + (marked ? "yes" : "no") + "\"><td>" + (marked ? "⚠" : "") +
               "</td><td>" + std::to_string(who.first) + "</td><td>";
        append_escaped(out, who.second);
        out += "</td><td>" + std::to_string(c.allowed + c.denied) + "</td><td>" +
               std::to_string(c.allowed) + "</td><td>" + std::to_string(c.denied) + "</td><td>" +
               std::to_string(c.refused) + "</td><td>" + std::to_string(c.admin_refused) +
               "</td></tr>\n";
    }
    out += "</tbody></table></section>\n";
}

std::vector<svg::Bar> count_bars(const std::map<std::string, std::uint64_t, std::less<>>& denied,
                                 const std::map<std::string, std::uint64_t, std::less<>>& refused) {
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> both;
    for (const auto& [reason, n] : denied) {
        both[reason].first += n;
    }
    for (const auto& [code, n] : refused) {
        both[code].second += n;
    }
    std::vector<svg::Bar> bars;
    for (const auto& [reason, n] : both) {
        bars.push_back({reason.empty() ? "(none)" : reason,
                        {static_cast<double>(n.first), static_cast<double>(n.second)},
                        reason});
    }
    std::stable_sort(bars.begin(), bars.end(), [](const svg::Bar& a, const svg::Bar& b) {
        return a.values[0] + a.values[1] > b.values[0] + b.values[1];
    });
    return bars;
}

} // namespace

std::vector<std::string> verification_sentences(const ReportVerification& verification) {
    const audit::VerifyResult& result = verification.result;
    std::vector<std::string> out;
    if (result.fault) {
        out.push_back("The log does NOT verify: at seq " + std::to_string(result.fault->seq) +
                      ", " + result.fault->message + ". " + count(result.rows, "row", "rows") +
                      " before it chain from seq 1; from there on the rows are not the log "
                      "that was written, and the figures below count them as they are.");
        return out;
    }
    if (result.tree_fault) {
        out.push_back("The log does NOT verify: its " + count(result.rows, "row", "rows") +
                      " chain from seq 1 to seq " + std::to_string(result.tail.seq) + ", but " +
                      *result.tree_fault + ".");
        return out;
    }
    out.push_back("The log verifies: all " + count(result.rows, "row", "rows") +
                  " chain from seq 1 to seq " + std::to_string(result.tail.seq) +
                  " with no row altered, removed or inserted (the whole log is checked, not "
                  "only the period).");
    if (verification.chain_checkpoint) {
        out.push_back("The checkpoint kept outside the store matches: its row holds exactly "
                      "its hash.");
    }
    if (result.tree_checked) {
        std::string tree = "Its Merkle tree matches its rows: " +
                           count(result.tree_nodes, "stored node", "stored nodes") + " and " +
                           count(result.checkpoints, "stored checkpoint", "stored checkpoints");
        if (verification.key_name && result.checkpoints > 0) {
            tree += ", each signed by " + *verification.key_name + ".";
        } else if (verification.key_name) {
            tree += "; there is no stored checkpoint to hold against the key " +
                    *verification.key_name + ".";
        } else {
            tree += ". Their signatures were not checked: no --key was given (give the log's "
                    "verifier key to check them).";
        }
        out.push_back(std::move(tree));
    } else {
        out.push_back("The store is of a schema version without a tree or checkpoints: only "
                      "the chain was checked.");
    }
    if (verification.kept_from) {
        out.push_back("The log holds the tree of each of the " +
                      std::to_string(result.kept_checkpoints) + " checkpoints of " +
                      *verification.kept_from +
                      (verification.key_name ? ", each signed by " + *verification.key_name
                                             : std::string(" (their signatures not checked: "
                                                           "no --key)")) +
                      ".");
    }
    return out;
}

std::string period_line(const AuditPeriod& period) {
    return std::to_string(period.rows) +
           " rows in the period: " + std::to_string(period.decisions) + " decisions (" +
           std::to_string(period.allowed) + " allowed, " + std::to_string(period.denied) +
           " denied), " + std::to_string(period.refused) + " refused, " +
           std::to_string(period.audit_unavailable) + " audit_unavailable; " +
           std::to_string(period.provision_records) +
           " third-party provision records (APPI Art. 29)";
}

namespace {

void report_body(std::string& out, const AuditPeriod& period);

std::string report_head(const std::string& store, const AuditPeriod& period) {
    std::string out = html::page_begin("監査ログ報告 — flowgate audit report " + store);
    out += "<header><h1>監査ログ報告 (audit report)</h1>\n<p>Store <code id=\"store\">";
    append_escaped(out, store);
    out += "</code>. <span id=\"period\">";
    append_escaped(out, period_words(period));
    out += "</span></p>\n</header>\n";
    return out;
}

} // namespace

std::string audit_report_html(const std::string& store, const ReportVerification& verification,
                              const AuditPeriod& period) {
    std::string out = report_head(store, period);
    verdict(out, verification);
    report_body(out, period);
    return out;
}

std::string audit_report_html(const std::string& store, const std::vector<HostVerification>& hosts,
                              const AuditPeriod& period) {
    std::string out = report_head(store, period);
    const bool ok = std::all_of(hosts.begin(), hosts.end(), [](const HostVerification& host) {
        return host.verification.ok();
    });
    out += "<section id=\"verification\" class=\"verdict";
    out += ok ? "" : " failed";
    out += "\" data-verdict=\"";
    out += ok ? "ok" : "failed";
    out += "\" data-hosts=\"" + std::to_string(hosts.size()) + "\"><h2>";
    out += ok ? "検証結果: 改ざんなし (every host's log verifies)"
              : "検証結果: 不一致 (a host's log does NOT verify)";
    out += "</h2>\n<p>The central store holds the logs of " + std::to_string(hosts.size()) +
           (hosts.size() == 1 ? " host" : " hosts") +
           ", each verified against its own checkpoints; the figures below are of all of "
           "them.</p>\n";
    for (const HostVerification& host : hosts) {
        verdict(out, host.verification, host.origin);
    }
    out += "</section>\n";
    report_body(out, period);
    return out;
}

namespace {

void report_body(std::string& out, const AuditPeriod& period) {

    out += "<section id=\"numbers\"><h2>期間の概要 (the period in numbers)</h2>\n"
           "<div class=\"figures\">";
    figure(out, "rows", "rows", period.rows);
    figure(out, "decisions", "decisions", period.decisions);
    figure(out, "allowed", "allowed", period.allowed);
    figure(out, "denied", "denied", period.denied);
    figure(out, "refused", "refused requests", period.refused);
    figure(out, "audit-unavailable", "audit_unavailable", period.audit_unavailable);
    figure(out, "provision-records", "provision records (Art. 29)", period.provision_records);
    figure(out, "policy-events", "policy events", period.events.size());
    figure(out, "callers", "callers", period.callers.size());
    out += "</div>\n<p class=\"muted\">Decisions are the checks and explains answered; refused "
           "requests could not be understood (a refused check is a deny). A check the store "
           "could not record is answered deny, reason audit_unavailable, and by design leaves "
           "no row: the figure counts rows with that reason, and the daemon's status counts "
           "such answers.</p>\n";
    chart(out, per_day_chart(period), true, "");
    out += "</section>\n<section id=\"decisions\"><h2>判定 (decisions)</h2>\n";
    chart(out,
          {"chart-by-purpose", "Decisions by purpose", allow_deny_series,
           allow_deny_bars(period.by_purpose, period.purpose_labels)},
          false, "");
    chart(out,
          {"chart-by-recipient", "Decisions by recipient", allow_deny_series,
           allow_deny_bars(period.by_recipient, period.party_labels)},
          false, "");
    chart(out,
          {"chart-deny-reasons",
           "Denies by reason, and refused requests by code",
           {{"denied", "#c62828"}, {"refused", "#6d4c41"}},
           count_bars(period.deny_reasons, period.refusal_codes)},
          false, "");
    out += "</section>\n<section id=\"provision\"><h2>第三者提供の記録 (third-party provision "
           "records, APPI Art. 29)</h2>\n";
    svg::BarChart records{
        "chart-provisions", "Provision records per recipient", {{"records", "#1565c0"}}, {}};
    for (const auto& [recipient, to] : period.provisions) {
        records.bars.push_back({to.label.empty() ? recipient : to.label + " (" + recipient + ")",
                                {static_cast<double>(to.records)},
                                recipient});
    }
    chart(out, records, false,
          "The records `flowgate audit records` lists for the same period: allowed sends to a "
          "third party that relied on consent.");
    provisions_table(out, period);
    svg::BarChart sensitive{"chart-sensitive",
                            "Special-care (要配慮) and specific (特定個人情報) data sent, by "
                            "recipient",
                            {{"special-care", "#8e24aa"}, {"specific", "#c62828"}},
                            {}};
    for (const auto& [recipient, sent] : period.sensitive) {
        sensitive.bars.push_back(
            {labelled(period.party_labels, recipient),
             {static_cast<double>(sent.special_care), static_cast<double>(sent.specific)},
             recipient});
    }
    chart(out, sensitive, false,
          "Allowed sends whose data holds a category the policy in force gave that "
          "sensitivity; a send of both counts once in each.");
    out += "</section>\n";
    policies_section(out, period);
    callers_section(out, period);
    out += html::page_end();
}

} // namespace

} // namespace flowgate::cli
