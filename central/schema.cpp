// The central schema; see schema.hpp and docs/central-store.md.
#include "central/schema.hpp"

namespace flowgate::central {

namespace outcome = boost::outcome_v2;

const std::string_view schema_sql = R"SQL(
CREATE TABLE IF NOT EXISTS flowgate_log (
    origin         text COLLATE "C" NOT NULL,
    seq            bigint           NOT NULL,
    schema_version smallint         NOT NULL,
    canonical      bytea            NOT NULL,
    prev_hash      text             NOT NULL,
    hash           text             NOT NULL,
    time_us        bigint           NOT NULL,
    kind           text COLLATE "C" NOT NULL,
    decision       text COLLATE "C" NOT NULL,
    purpose        text COLLATE "C" NOT NULL,
    recipient      text COLLATE "C" NOT NULL,
    subject        text COLLATE "C" NOT NULL,
    PRIMARY KEY (origin, seq)
);
CREATE INDEX IF NOT EXISTS flowgate_log_time ON flowgate_log USING brin (time_us);
CREATE INDEX IF NOT EXISTS flowgate_log_recipient ON flowgate_log (recipient);
CREATE INDEX IF NOT EXISTS flowgate_log_subject ON flowgate_log (subject);
CREATE INDEX IF NOT EXISTS flowgate_log_purpose ON flowgate_log (purpose);
CREATE INDEX IF NOT EXISTS flowgate_log_decision ON flowgate_log (decision);
CREATE TABLE IF NOT EXISTS flowgate_tree (
    origin   text     NOT NULL,
    end_size bigint   NOT NULL,
    level    smallint NOT NULL,
    hash     bytea    NOT NULL,
    PRIMARY KEY (origin, end_size, level)
);
CREATE TABLE IF NOT EXISTS flowgate_checkpoint (
    origin    text   NOT NULL,
    tree_size bigint NOT NULL,
    time_us   bigint NOT NULL,
    note      text   NOT NULL,
    PRIMARY KEY (origin, tree_size, time_us)
);
CREATE TABLE IF NOT EXISTS flowgate_policy (
    origin      text NOT NULL,
    policy_hash text NOT NULL,
    file        text NOT NULL,
    content     text NOT NULL,
    PRIMARY KEY (origin, policy_hash, file)
);
)SQL";

CentralResult<void> ensure_schema(Connection& conn) {
    auto there = conn.exec("SELECT to_regclass('flowgate_log') IS NOT NULL AND "
                           "to_regclass('flowgate_tree') IS NOT NULL AND "
                           "to_regclass('flowgate_checkpoint') IS NOT NULL AND "
                           "to_regclass('flowgate_policy') IS NOT NULL");
    if (!there) {
        return there.error();
    }
    if (value(there.value(), 0, 0) == "t") {
        // A central store made before the policies were kept per origin.
        auto layout = conn.exec("SELECT count(*) FROM information_schema.columns WHERE "
                                "table_name = 'flowgate_policy' AND column_name = 'origin' AND "
                                "table_schema = ANY (current_schemas(false))");
        if (!layout) {
            return layout.error();
        }
        if (value(layout.value(), 0, 0) == "0") {
            return CentralError{CentralErrc::refused,
                                "the central store's flowgate_policy has no origin column (an "
                                "earlier layout): make the tables again as "
                                "docs/central-store.md has them and ship every host again"};
        }
        return outcome::success();
    }
    if (auto made = conn.exec_script(std::string(schema_sql)); !made) {
        return made.error();
    }
    return outcome::success();
}

} // namespace flowgate::central
