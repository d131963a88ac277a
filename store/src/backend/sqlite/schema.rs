//! Connection settings and the schema, versioned by `PRAGMA user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Result, StoreError};

/// How long a connection waits for a lock another connection holds. Readers never
/// block the writer in WAL mode; this only covers checkpoints and a second process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migrations in order: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
/// Append only; never edit a shipped entry.
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// Ids are 16-byte UUID blobs (v7, so byte order is creation order); tenants, projects,
/// keys and nodes are their text. Records are `codec` blobs; the plain columns beside
/// them exist for lookups and stay in sync with the blob on every write.
pub(super) const V1: &str = "
CREATE TABLE sessions (
    tenant           TEXT    NOT NULL,
    id               BLOB    NOT NULL,
    project          TEXT    NOT NULL,
    key              TEXT,
    meta             BLOB    NOT NULL,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_activity_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX sessions_by_key ON sessions (tenant, project, key)
    WHERE key IS NOT NULL;
-- Covers list_sessions entirely, order included.
CREATE INDEX sessions_by_activity ON sessions (tenant, project, last_activity_ms, id);

-- Clustered by session, so a page of a log is a contiguous range. Large bodies go to
-- overflow pages, which costs less than scattering one session's log over the file.
CREATE TABLE messages (
    tenant     TEXT    NOT NULL,
    session_id BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    body       BLOB    NOT NULL,
    PRIMARY KEY (tenant, session_id, seq),
    FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Liveness: a row exists while a node holds (or held, until expiry) the lease.
CREATE TABLE leases (
    tenant        TEXT    NOT NULL,
    session_id    BLOB    NOT NULL,
    node          TEXT    NOT NULL,
    fence         INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, session_id)
) WITHOUT ROWID;

-- Safety: the last fence granted. Never deleted, so fences only grow.
CREATE TABLE fences (
    tenant     TEXT    NOT NULL,
    session_id BLOB    NOT NULL,
    fence      INTEGER NOT NULL,
    PRIMARY KEY (tenant, session_id)
) WITHOUT ROWID;
";

/// Archives, idempotency keys, retention policies and the project list. Expiring rows
/// carry their expiry (wall clock, ms): reads ignore expired rows, writes replace them
/// and sweep a few at a time (`lifecycle::sweep_expired`), so nothing needs a timer.
/// Since V2 a session's `fences` row goes when the session is deleted
/// (`lifecycle::delete_session`); V1's "never deleted" holds for live sessions.
pub(super) const V2: &str = "
-- One row per session that has an archive: when the whole archive expires. Each move
-- into the archive pushes the expiry out (as PEXPIRE does on Redis). No foreign key:
-- an archive outlives its session when a delete keeps it.
CREATE TABLE archives (
    tenant        TEXT    NOT NULL,
    session_id    BLOB    NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, session_id)
) WITHOUT ROWID;
CREATE INDEX archives_by_expiry ON archives (expires_at_ms);

-- Messages moved out of `messages`, same layout.
CREATE TABLE archived_messages (
    tenant     TEXT    NOT NULL,
    session_id BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    body       BLOB    NOT NULL,
    PRIMARY KEY (tenant, session_id, seq)
) WITHOUT ROWID;

-- scope is 's:<session id>' or 'p:<project>' (IdempotencyScope).
CREATE TABLE idempotency (
    tenant        TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    answer        TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at_ms);

-- A codec blob, like the meta, so the policy can gain fields.
CREATE TABLE retention (
    tenant  TEXT NOT NULL,
    project TEXT NOT NULL,
    policy  BLOB NOT NULL,
    PRIMARY KEY (tenant, project)
) WITHOUT ROWID;

-- Every project that ever had a session; deletes leave it (retention sweeps read it).
CREATE TABLE projects (
    tenant  TEXT NOT NULL,
    project TEXT NOT NULL,
    PRIMARY KEY (tenant, project)
) WITHOUT ROWID;
INSERT INTO projects (tenant, project) SELECT DISTINCT tenant, project FROM sessions;
";

/// The node registry: each node's last heartbeat and the sessions it holds. On the
/// embedded store this is how a node restarted after a crash (same id, kept in its
/// data directory) finds the sessions it held and recovers them.
const V3: &str = "
-- The NodeRecord as a codec blob, so it can gain fields. Kept until remove_node, dead
-- or alive: a node past its expiry is what a recovery sweep looks for.
CREATE TABLE nodes (
    id     TEXT NOT NULL PRIMARY KEY,
    record BLOB NOT NULL
) WITHOUT ROWID;

-- No foreign key to nodes: remove_node clears both, and nothing else ties them (as on
-- Redis, where they are separate keys). session is the 16-byte id, as everywhere.
CREATE TABLE held (
    node    TEXT NOT NULL,
    tenant  TEXT NOT NULL,
    session BLOB NOT NULL,
    PRIMARY KEY (node, tenant, session)
) WITHOUT ROWID;
";

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens the write connection: creates the parent directory and the file, switches
/// the file to WAL and brings the schema up to [`SCHEMA_VERSION`].
pub(super) fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Unavailable(format!("sqlite: cannot create {}: {e}", parent.display()))
        })?;
    }
    let mut conn = Connection::open(path)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "sqlite: {} cannot use WAL (journal_mode is {mode})",
            path.display()
        )));
    }
    configure(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read connection on a file [`open_writer`] has prepared.
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Settings of every connection (they are per connection, not stored in the file).
fn configure(conn: &Connection) -> Result<()> {
    // FULL: a commit is on disk before the writer answers, which is what lets the
    // session actor acknowledge a prompt as durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "sqlite schema version {current} is newer than this build knows ({SCHEMA_VERSION})"
        )));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        // user_version lives in the file header, so it commits with the migration.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = from + 1, "sqlite schema migrated");
    }
    Ok(())
}
