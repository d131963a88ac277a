//! The command connection (one server or a cluster), the Lua scripts, and how a
//! batch of commands runs on it in one round trip.

use std::collections::HashMap;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisFuture, Script, ServerErrorKind, Value};

use crate::error::{Result, StoreError};

/// Commands go to one server (through a reconnecting manager) or to a cluster.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The Lua scripts (`redis/*.lua`), each touching the keys of one slot only.
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) create: Script,
    pub(super) delete: Script,
    pub(super) claim_key: Script,
    pub(super) release_key: Script,
    pub(super) acquire: Script,
    pub(super) renew: Script,
    pub(super) release: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            // `archive.lua` defines the archive move both scripts run.
            append: Script::new(concat!(
                include_str!("archive.lua"),
                include_str!("append.lua")
            )),
            create: Script::new(include_str!("create.lua")),
            delete: Script::new(concat!(
                include_str!("archive.lua"),
                include_str!("delete.lua")
            )),
            claim_key: Script::new(include_str!("claim_key.lua")),
            release_key: Script::new(include_str!("release_key.lua")),
            acquire: Script::new(include_str!("acquire.lua")),
            renew: Script::new(include_str!("renew.lua")),
            release: Script::new(include_str!("release.lua")),
        }
    }

    /// SCRIPT LOAD of every script (on every master of a cluster: the client routes
    /// SCRIPT LOAD to all of them).
    pub(super) async fn load(&self, conn: &Conn) -> Result<()> {
        let all = [
            &self.append,
            &self.create,
            &self.delete,
            &self.claim_key,
            &self.release_key,
            &self.acquire,
            &self.renew,
            &self.release,
        ];
        for s in all {
            s.load_async(&mut conn.clone()).await?;
        }
        Ok(())
    }
}

/// `EVALSHA <script> <keys>`; the caller adds the arguments.
pub(super) fn evalsha(script: &Script, keys: &[&str]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
    cmd
}

/// One command of a batch and its slot group: commands of one group run in order in
/// one pipeline (a session's `{sid}` tag, or a project-level key).
pub(super) struct Op {
    pub(super) group: String,
    pub(super) cmd: Cmd,
}

impl Op {
    pub(super) fn new(group: impl Into<String>, cmd: Cmd) -> Self {
        Self {
            group: group.into(),
            cmd,
        }
    }
}

fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript))
}

/// A reply that is a server error becomes `Unavailable`.
pub(super) fn ok(v: Value) -> Result<Value> {
    match v {
        Value::ServerError(e) => Err(StoreError::Unavailable(format!("redis: {e}"))),
        v => Ok(v),
    }
}

impl Conn {
    /// Runs a batch in one round trip and answers one reply per op, in order (server
    /// errors stay in place as `Value::ServerError`). One server: a single pipeline.
    /// A cluster: one pipeline per group, all sent at once (a cluster pipeline must
    /// stay in one slot). If a script was missing (a restarted or new server), the
    /// scripts are loaded and the whole batch runs again: every op is idempotent (the
    /// append script answers DUP for what is already stored).
    pub(super) async fn run(&self, scripts: &Scripts, ops: &[Op]) -> Result<Vec<Value>> {
        let replies = self.run_once(ops).await?;
        if !replies.iter().any(is_noscript) {
            return Ok(replies);
        }
        scripts.load(self).await?;
        self.run_once(ops).await
    }

    async fn run_once(&self, ops: &[Op]) -> Result<Vec<Value>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Single(_) => {
                let mut pipe = redis::pipe();
                for op in ops {
                    pipe.add_command(op.cmd.clone());
                }
                Ok(pipe.ignore_errors().query_async(&mut self.clone()).await?)
            }
            Self::Cluster(_) => {
                let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
                for (i, op) in ops.iter().enumerate() {
                    groups.entry(op.group.as_str()).or_default().push(i);
                }
                let runs = groups.into_values().map(|idx| async move {
                    let mut pipe = redis::pipe();
                    for &i in &idx {
                        pipe.add_command(ops[i].cmd.clone());
                    }
                    let replies: Vec<Value> =
                        pipe.ignore_errors().query_async(&mut self.clone()).await?;
                    Ok::<_, StoreError>(idx.into_iter().zip(replies))
                });
                let mut out = vec![Value::Nil; ops.len()];
                for group in futures::future::try_join_all(runs).await? {
                    for (i, v) in group {
                        out[i] = v;
                    }
                }
                Ok(out)
            }
        }
    }

    /// Runs one command through the batch path (so a missing script is loaded).
    pub(super) async fn one(&self, scripts: &Scripts, op: Op) -> Result<Value> {
        let mut replies = self.run(scripts, std::slice::from_ref(&op)).await?;
        ok(replies.pop().unwrap_or(Value::Nil))
    }
}
