"""Connection settings and the versioned schema.

`PRAGMA user_version` records which schema a file holds, so an older
Subterfuge refuses a newer file instead of misreading it. `MIGRATIONS[v - 1]`
takes a file from version v - 1 to v; a new version appends one entry and
never edits a released one.
"""

from __future__ import annotations

import sqlite3

from subterfuge.store.errors import SchemaTooNew

BUSY_TIMEOUT_MS = 30_000

_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id   TEXT PRIMARY KEY,
    created  REAL NOT NULL,
    config   TEXT NOT NULL,
    finished REAL NULL
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id     TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    env        TEXT NOT NULL,
    stage      TEXT NOT NULL,
    variant    INTEGER NOT NULL,
    policy     TEXT NOT NULL,
    seed       INTEGER NOT NULL,
    verdict    TEXT NOT NULL,
    reward     REAL NULL,
    caught     INTEGER NULL,
    pays       INTEGER NOT NULL,
    prompt     TEXT NOT NULL,
    transcript TEXT NOT NULL,
    reasoning  TEXT NOT NULL,
    diffs      TEXT NOT NULL,
    details    TEXT NOT NULL,
    timings    TEXT NOT NULL,
    error      TEXT NULL,
    turns      INTEGER NOT NULL,
    started    REAL NOT NULL,
    ended      REAL NOT NULL,
    PRIMARY KEY (run_id, idx)
);
-- `idx` / `verdict` are appended so paging by idx and GROUP BY verdict read only the index.
CREATE INDEX IF NOT EXISTS episodes_run_verdict ON episodes (run_id, verdict, idx);
CREATE INDEX IF NOT EXISTS episodes_run_env_policy ON episodes (run_id, env, policy, verdict);
"""

# Monitor labels live beside verdicts and never overwrite them: one row per
# (episode, monitor, label name), e.g. ("intent", "malign") from an LLM judge or
# ("edits_reward_file", "true") from a rule, with the evidence spans as JSON.
_V2 = """
CREATE TABLE IF NOT EXISTS labels (
    run_id   TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    monitor  TEXT NOT NULL,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    evidence TEXT NOT NULL,
    created  REAL NOT NULL,
    PRIMARY KEY (run_id, idx, monitor, name)
);
CREATE INDEX IF NOT EXISTS labels_filter ON labels (run_id, monitor, name, value, idx);
-- Covers what readers filter and group by (report counts joined with labels, the viewer's
-- episode list), so neither has to read the large transcript rows to count or page.
CREATE INDEX IF NOT EXISTS episodes_browse ON episodes (run_id, verdict, stage, env, policy, idx);
"""

# Token usage and cost per episode (model policies). `usage` keeps the provider's detail
# (reasoning, cache reads and writes) as JSON; the two counts and the cost are columns
# with a covering index, so a run's totals are summed from the index, never from the
# large transcript rows.
_V3 = """
ALTER TABLE episodes ADD COLUMN usage TEXT NOT NULL DEFAULT '{}';
ALTER TABLE episodes ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE episodes ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE episodes ADD COLUMN cost REAL NULL;
CREATE INDEX IF NOT EXISTS episodes_run_usage
    ON episodes (run_id, input_tokens, output_tokens, cost);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: str) -> sqlite3.Connection:
    """Open `path` ready for use from any one thread at a time (callers hold a lock).

    `isolation_level=None` turns off the sqlite3 module's implicit transactions,
    so every transaction boundary in the store is an explicit BEGIN/COMMIT.
    """
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal" and path != ":memory:":
            raise RuntimeError(f"could not put {path} in WAL mode (journal_mode={mode})")
        # NORMAL in WAL mode: a crash may lose the last commits, never consistency.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{path} has store schema version {version}, but this Subterfuge reads up "
                f"to version {SCHEMA_VERSION}; upgrade Subterfuge to open it"
            )
        for script in MIGRATIONS[version:]:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
