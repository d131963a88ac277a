//! `LeaseStore` on Redis: a `:lease` key that expires (liveness) and a `:fence` key
//! that never does (safety), changed only by single-slot scripts.

use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::conn::{Op, evalsha};
use super::keys::SessionKeys;
use super::{RedisStore, parse};
use crate::error::{Result, StoreError};
use crate::ids::{NodeId, SessionId, TenantId};
use crate::lease_store::{LeaseGrant, LeaseRef, LeaseStore};

/// A TTL in whole milliseconds, at least 1 (PX 0 is an error).
fn ttl_ms(ttl: Duration) -> u64 {
    ttl.as_millis().clamp(1, i64::MAX as u128) as u64
}

/// The lease value of `node` holding `fence`.
fn lease_value(node: &NodeId, fence: u64) -> String {
    format!("{node}|{fence}")
}

fn node_id(s: &str) -> Result<NodeId> {
    NodeId::new(s).map_err(|e| StoreError::Corrupt(format!("stored lease owner: {e}")))
}

#[async_trait]
impl LeaseStore for RedisStore {
    async fn acquire(
        &self,
        tenant: &TenantId,
        session: SessionId,
        node: &NodeId,
        ttl: Duration,
    ) -> Result<LeaseGrant> {
        let s = &self.inner;
        let keys = SessionKeys::new(tenant, session);
        let mut cmd = evalsha(&s.scripts.acquire, &[&keys.fence, &keys.lease]);
        cmd.arg(node.as_str()).arg(ttl_ms(ttl));
        let reply: Vec<Value> = parse(s.conn.one(&s.scripts, Op::new(keys.tag, cmd)).await?)?;
        let [tag, value] = <[Value; 2]>::try_from(reply).map_err(|r| {
            StoreError::Unavailable(format!("redis: unexpected acquire reply {r:?}"))
        })?;
        match parse::<String>(tag)?.as_str() {
            "GRANTED" => Ok(LeaseGrant::Granted {
                fence: parse(value)?,
            }),
            "HELD" => Ok(LeaseGrant::Held {
                owner: node_id(&parse::<String>(value)?)?,
            }),
            other => Err(StoreError::Unavailable(format!(
                "redis: unexpected acquire reply {other}"
            ))),
        }
    }

    async fn renew(&self, node: &NodeId, leases: &[LeaseRef], ttl: Duration) -> Result<Vec<bool>> {
        let s = &self.inner;
        let ttl = ttl_ms(ttl);
        let ops: Vec<Op> = leases
            .iter()
            .map(|l| {
                let keys = SessionKeys::new(&l.tenant, l.session);
                let mut cmd = evalsha(&s.scripts.renew, &[&keys.lease]);
                cmd.arg(lease_value(node, l.fence)).arg(ttl);
                Op::new(keys.tag, cmd)
            })
            .collect();
        s.conn
            .run(&s.scripts, &ops)
            .await?
            .into_iter()
            .map(|v| Ok(parse::<i64>(v)? == 1))
            .collect()
    }

    async fn release(&self, node: &NodeId, lease: &LeaseRef) -> Result<()> {
        let s = &self.inner;
        let keys = SessionKeys::new(&lease.tenant, lease.session);
        let mut cmd = evalsha(&s.scripts.release, &[&keys.lease]);
        cmd.arg(lease_value(node, lease.fence));
        s.conn.one(&s.scripts, Op::new(keys.tag, cmd)).await?;
        Ok(())
    }

    async fn owner(&self, tenant: &TenantId, session: SessionId) -> Result<Option<NodeId>> {
        let s = &self.inner;
        let keys = SessionKeys::new(tenant, session);
        let mut cmd = redis::cmd("GET");
        cmd.arg(&keys.lease);
        let value: Option<String> = parse(s.conn.one(&s.scripts, Op::new(keys.tag, cmd)).await?)?;
        value
            .map(|v| match v.rsplit_once('|') {
                Some((owner, _fence)) => node_id(owner),
                None => Err(StoreError::Corrupt(format!("lease value {v:?}"))),
            })
            .transpose()
    }
}
