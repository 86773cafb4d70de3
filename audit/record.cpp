// The stored names of kinds and decisions, and copies between owned and viewed rows;
// see record.hpp.
#include "audit/record.hpp"

namespace flowgate::audit {

namespace {

// Assigns field by field, whatever the rows' text types.
struct CopyField {
    template <class To, class From>
    void operator()(const AuditField& /*field*/, To& to, const From& from) const {
        to = from;
    }
};

} // namespace

std::optional<AuditKind> parse_audit_kind(std::string_view text) {
    for (auto kind : {AuditKind::check, AuditKind::explain, AuditKind::refused, AuditKind::start,
                      AuditKind::stop, AuditKind::load, AuditKind::reload, AuditKind::reload_failed,
                      AuditKind::admin_refused, AuditKind::init}) {
        if (to_string(kind) == text) {
            return kind;
        }
    }
    return std::nullopt;
}

std::optional<AuditDecision> parse_audit_decision(std::string_view text) {
    for (auto decision :
         {AuditDecision::none, AuditDecision::allow, AuditDecision::deny, AuditDecision::error}) {
        if (to_string(decision) == text) {
            return decision;
        }
    }
    return std::nullopt;
}

AuditRowView view_of(const AuditRecord& record) {
    AuditRowView row;
    for_each_field(CopyField{}, row, record);
    return row;
}

AuditRecord record_of(const AuditRowView& row) {
    AuditRecord record;
    for_each_field(CopyField{}, record, row);
    return record;
}

} // namespace flowgate::audit
