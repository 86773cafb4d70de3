
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    time_us     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    service     TEXT NOT NULL,
    request     TEXT NOT NULL,
    decision    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    rule_source TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    obligations TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    activity    TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    direction   TEXT NOT NULL,
    data        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed'); END;
CREATE TRIGGER audit_log_in_sequence BEFORE INSERT ON audit_log
WHEN (NEW.seq - 1, NEW.prev_hash) IS NOT (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1)
  AND NOT (NEW.seq IS 1
           AND NEW.prev_hash IS '0000000000000000000000000000000000000000000000000000000000000000'
           AND NOT EXISTS (SELECT 1 FROM audit_log))
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: seq must follow the last row and prev_hash must be its hash'); END;

CREATE TABLE policy_files (
    policy_hash TEXT NOT NULL,
    name        TEXT NOT NULL,
    text        TEXT NOT NULL,
    stored_us   INTEGER NOT NULL,
    PRIMARY KEY (policy_hash, name)
);
CREATE TRIGGER policy_files_no_update BEFORE UPDATE ON policy_files
BEGIN SELECT RAISE(ABORT, 'policy_files is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER policy_files_no_delete BEFORE DELETE ON policy_files
BEGIN SELECT RAISE(ABORT, 'policy_files is append-only: DELETE is not allowed'); END;
CREATE TRIGGER policy_files_once BEFORE INSERT ON policy_files
WHEN EXISTS (SELECT 1 FROM policy_files WHERE policy_hash = NEW.policy_hash AND name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'policy_files is append-only: a stored file is never replaced'); END;
