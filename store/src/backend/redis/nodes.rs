//! `NodeRegistry` on Redis: `sd:nodes` (ZSET node -> heartbeat expiry), and per node
//! its record (`sd:node:<id>`) and the sessions it holds (`sd:node:<id>:held`).
//!
//! Those keys hash to different slots of a cluster, so no script can span them: every
//! call is single-key commands sent as one batch (one pipeline on one server, one per
//! key on a cluster, all at once). What may then be seen half done is harmless:
//!
//! - the ZSET is the list of nodes and its score the expiry; the record adds the rest.
//!   A member whose record is missing (not written yet on a cluster, where the SET and
//!   the ZADD of a heartbeat may land in either order; or expired, below) is listed
//!   with no address and `started_at_ms` 0 (unknown), rather than left out: a dead
//!   node must stay in sight until a survivor has taken its sessions and removed it;
//! - the record expires an hour after the heartbeat it holds ([`RECORD_GRACE_MS`]),
//!   so a node nobody removed does not keep its record forever, while survivors,
//!   which sweep far more often, still see it dead with its address.

use async_trait::async_trait;
use redis::Value;

use super::conn::{Op, ok};
use super::keys::{NODES, node_held, node_record};
use super::lifecycle::px;
use super::sessions::corrupt;
use super::{RedisStore, parse};
use crate::codec;
use crate::error::Result;
use crate::ids::{NodeId, SessionId, TenantId};
use crate::node_registry::{NodeRecord, NodeRegistry};
use crate::records::{TimestampMs, now_ms};

/// How long a record outlives the expiry it announces, in ms.
const RECORD_GRACE_MS: u64 = 60 * 60 * 1000;

/// The PX of a record expiring at `expires_at_ms`: the grace counted from that expiry,
/// or from now if it is already past.
fn record_px(expires_at_ms: TimestampMs) -> u64 {
    let left = u64::try_from(expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
    px(left.saturating_add(RECORD_GRACE_MS))
}

/// `<tenant>|<sid>`: tenant slugs hold no `|`.
fn held_member(tenant: &TenantId, session: SessionId) -> String {
    format!("{tenant}|{session}")
}

fn parse_held(member: &str) -> Option<(TenantId, SessionId)> {
    let (tenant, session) = member.split_once('|')?;
    Some((TenantId::new(tenant).ok()?, session.parse().ok()?))
}

/// A ZADD or ZREM on `sd:nodes`, a key of its own on a cluster.
fn nodes_op(cmd: redis::Cmd) -> Op {
    Op::new(NODES, cmd)
}

impl RedisStore {
    /// Runs a batch and fails if any command failed.
    async fn run_all(&self, ops: &[Op]) -> Result<()> {
        let s = &self.inner;
        for reply in s.conn.run(&s.scripts, ops).await? {
            ok(reply)?;
        }
        Ok(())
    }
}

/// The record of `id` as the ZSET lists it, expiring at `score`; `stored` is the GET
/// of its record key.
fn listed_record(id: NodeId, score: TimestampMs, stored: Value) -> Result<NodeRecord> {
    let stored: Option<Vec<u8>> = parse(stored)?;
    let Some(bytes) = stored else {
        return Ok(NodeRecord {
            id,
            advertise: None,
            started_at_ms: 0,
            expires_at_ms: score,
        });
    };
    let what = format!("record of node {id}");
    let mut record: NodeRecord = codec::decode(&bytes).map_err(|e| corrupt(&what, e))?;
    if record.id != id {
        return Err(corrupt(&what, format!("names node {}", record.id)));
    }
    // The score is the expiry the list is ordered by; the record's agrees but for
    // the moment between a heartbeat's two writes on a cluster.
    record.expires_at_ms = score;
    Ok(record)
}

#[async_trait]
impl NodeRegistry for RedisStore {
    /// SET of the record, then ZADD (in this order on one server).
    async fn heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let mut set = redis::cmd("SET");
        set.arg(node_record(&node.id))
            .arg(codec::encode(node)?)
            .arg("PX")
            .arg(record_px(node.expires_at_ms));
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(NODES)
            .arg(node.expires_at_ms)
            .arg(node.id.as_str());
        self.run_all(&[Op::new(node_record(&node.id), set), nodes_op(zadd)])
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let s = &self.inner;
        let mut zrange = redis::cmd("ZRANGE");
        zrange.arg(NODES).arg(0).arg(-1).arg("WITHSCORES");
        let listed: Vec<(String, f64)> = parse(s.conn.one(&s.scripts, nodes_op(zrange)).await?)?;
        let mut listed: Vec<(NodeId, TimestampMs)> = listed
            .into_iter()
            .filter_map(|(member, score)| match NodeId::new(&member) {
                // Scores are ms timestamps, exact in an f64 (below 2^53).
                Ok(id) => Some((id, score as TimestampMs)),
                Err(e) => {
                    tracing::warn!(member, error = %e, "redis node list member skipped");
                    None
                }
            })
            .collect();
        listed.sort();
        let gets: Vec<Op> = listed
            .iter()
            .map(|(id, _)| {
                let mut get = redis::cmd("GET");
                get.arg(node_record(id));
                Op::new(node_record(id), get)
            })
            .collect();
        let stored = s.conn.run(&s.scripts, &gets).await?;
        listed
            .into_iter()
            .zip(stored)
            .map(|((id, score), v)| listed_record(id, score, v))
            .collect()
    }

    async fn remove_node(&self, node: &NodeId) -> Result<()> {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(NODES).arg(node.as_str());
        let mut del_record = redis::cmd("DEL");
        del_record.arg(node_record(node));
        let mut del_held = redis::cmd("DEL");
        del_held.arg(node_held(node));
        self.run_all(&[
            nodes_op(zrem),
            Op::new(node_record(node), del_record),
            Op::new(node_held(node), del_held),
        ])
        .await
    }

    /// SADD, plus the unannounced record and a 0 score if the node has none yet (NX:
    /// never over a heartbeat, whichever of the two lands first).
    async fn add_held(&self, node: &NodeId, tenant: &TenantId, session: SessionId) -> Result<()> {
        let unannounced = NodeRecord::unannounced(node);
        let mut sadd = redis::cmd("SADD");
        sadd.arg(node_held(node)).arg(held_member(tenant, session));
        let mut set = redis::cmd("SET");
        set.arg(node_record(node))
            .arg(codec::encode(&unannounced)?)
            .arg("NX")
            .arg("PX")
            .arg(record_px(unannounced.expires_at_ms));
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(NODES)
            .arg("NX")
            .arg(unannounced.expires_at_ms)
            .arg(node.as_str());
        self.run_all(&[
            Op::new(node_held(node), sadd),
            Op::new(node_record(node), set),
            nodes_op(zadd),
        ])
        .await
    }

    async fn remove_held(
        &self,
        node: &NodeId,
        tenant: &TenantId,
        session: SessionId,
    ) -> Result<()> {
        let mut srem = redis::cmd("SREM");
        srem.arg(node_held(node)).arg(held_member(tenant, session));
        self.run_all(&[Op::new(node_held(node), srem)]).await
    }

    /// SMEMBERS, sorted. A member that does not parse is skipped with a warning, not
    /// an error: the node's other sessions must still be recovered.
    async fn held(&self, node: &NodeId) -> Result<Vec<(TenantId, SessionId)>> {
        let s = &self.inner;
        let mut smembers = redis::cmd("SMEMBERS");
        smembers.arg(node_held(node));
        let members: Vec<String> = parse(
            s.conn
                .one(&s.scripts, Op::new(node_held(node), smembers))
                .await?,
        )?;
        let mut out: Vec<_> = members
            .into_iter()
            .filter_map(|m| {
                let parsed = parse_held(&m);
                if parsed.is_none() {
                    tracing::warn!(node_id = %node, member = m, "redis held session skipped");
                }
                parsed
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_members_round_trip_and_garbage_is_refused() {
        let t = TenantId::new("acme").unwrap();
        let sid = SessionId::generate();
        let m = held_member(&t, sid);
        assert_eq!(m, format!("acme|{sid}"));
        assert_eq!(parse_held(&m), Some((t, sid)));
        for bad in ["", "acme", "acme|", "|x", "Acme|x", &format!("acme|{sid}x")] {
            assert_eq!(parse_held(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_record_outlives_its_expiry_by_the_grace() {
        let hour = RECORD_GRACE_MS;
        let ahead = record_px(now_ms() + 10_000);
        assert!(ahead > hour && ahead <= hour + 10_000, "{ahead}");
        assert_eq!(record_px(0), hour, "already expired: counted from now");
        assert_eq!(record_px(TimestampMs::MIN), hour);
    }
}
