//! Key names (DESIGN.md §5). One hash tag per session, `{<sid>}`, so every per-session
//! script touches a single slot and runs unchanged on Redis Cluster. The tenant slug
//! is written plainly in the prefix so a Redis ACL (`~sd:<t>:*`) can confine a tenant.
//!
//! ```text
//! sd:<t>:s:{<sid>}:meta    HASH    rec (encoded SessionMeta), last_seq, project
//! sd:<t>:s:{<sid>}:log     STREAM  ids "<seq>-0", field m = encoded Message
//! sd:<t>:s:{<sid>}:fence   STRING  "<n>|<node>", never expires
//! sd:<t>:s:{<sid>}:lease   STRING  "<node>|<n>", PX ttl
//! sd:<t>:s:{<sid>}:arch    STREAM  ids "<seq>-0", field m, PEXPIRE on every move
//! sd:<t>:s:{<sid>}:idem:<key>     STRING  answer, PX ttl (sends to the session)
//! sd:<t>:s:{<sid>}:ev      channel (SPUBLISH), see `Channel::session`
//! sd:<t>:p:<project>:idx   ZSET    sid -> last_activity_ms
//! sd:<t>:p:<project>:keys  HASH    session key -> sid (key uniqueness per project)
//! sd:<t>:p:<project>:idem:<key>   STRING  answer, PX ttl (creates in the project)
//! sd:<t>:p:<project>:retention    STRING  encoded RetentionPolicy
//! sd:<t>:projects          SET     every project that ever had a session
//! sd:nodes                 ZSET    node id -> heartbeat expiry (ms)
//! sd:node:<id>             STRING  encoded NodeRecord, PX until an hour past expiry
//! sd:node:<id>:held        SET     "<tenant>|<sid>" per session the node holds
//! sd:node:<id>:rpc         channel (SPUBLISH), see `Channel::node`
//! ```
//!
//! Not in DESIGN.md §5:
//! - `:keys` is the claim table behind `SessionKey` uniqueness (HSETNX-like claim in
//!   `claim_key.lua`), a project-level key like `:idx`.
//! - `:idem:<key>` remembers an idempotency key's first answer until it expires. The
//!   session-scoped ones carry the session's hash tag, so `append.lua` records them
//!   in the same script as the write they belong to; idempotency keys hold no braces
//!   (`valid_idempotency_key`), so the tag stays the only braced part. One STRING per
//!   key rather than one HASH, because Redis 7.0 cannot expire a hash field.
//! - `:retention` is a project's retention policy (`codec` envelope).
//! - `sd:<t>:projects` lists the projects for the periodic retention sweep; SADD in
//!   `create_session`, never removed (a project without sessions costs one member).
//! - `sd:node:<id>` and `sd:node:<id>:held` complete `sd:nodes` (`nodes.rs`): what a
//!   node's last heartbeat said, and which sessions it took, so survivors find the
//!   sessions of a dead node. The three keys sit in three slots and are written by
//!   single-key commands. Node ids hold no braces, so these keys carry no hash tag.
//!   They share the `sd:node:` prefix a tenant slugged `node` would have (whose
//!   `sd:node:projects` is the record key of a node named `projects`, and whose ACL
//!   `~sd:node:*` would cover every node's keys): that slug must not be issued.

use crate::ids::{NodeId, ProjectId, SessionId, TenantId};

/// The keys of one session; all share the `{<sid>}` hash tag.
#[derive(Debug, Clone)]
pub(super) struct SessionKeys {
    /// `{<sid>}`: what Redis Cluster hashes; groups commands by slot.
    pub(super) tag: String,
    pub(super) meta: String,
    pub(super) log: String,
    pub(super) fence: String,
    pub(super) lease: String,
    pub(super) arch: String,
    /// `sd:<t>:s:{<sid>}`, which the idempotency keys extend.
    prefix: String,
}

impl SessionKeys {
    pub(super) fn new(tenant: &TenantId, id: SessionId) -> Self {
        let prefix = format!("sd:{tenant}:s:{{{id}}}");
        Self {
            tag: format!("{{{id}}}"),
            meta: format!("{prefix}:meta"),
            log: format!("{prefix}:log"),
            fence: format!("{prefix}:fence"),
            lease: format!("{prefix}:lease"),
            arch: format!("{prefix}:arch"),
            prefix,
        }
    }

    /// `sd:<t>:s:{<sid>}:idem:<key>`: a send's idempotency key, in the session's slot.
    pub(super) fn idempotency(&self, key: &str) -> String {
        debug_assert!(crate::session_store::valid_idempotency_key(key), "{key:?}");
        format!("{}:idem:{key}", self.prefix)
    }
}

/// `sd:<t>:p:<project>:idx`: the project's sessions by last activity.
pub(super) fn project_index(tenant: &TenantId, project: &ProjectId) -> String {
    format!("sd:{tenant}:p:{project}:idx")
}

/// `sd:<t>:p:<project>:keys`: session key -> session id.
pub(super) fn project_keys(tenant: &TenantId, project: &ProjectId) -> String {
    format!("sd:{tenant}:p:{project}:keys")
}

/// `sd:<t>:p:<project>:idem:<key>`: a create's idempotency key.
pub(super) fn project_idempotency(tenant: &TenantId, project: &ProjectId, key: &str) -> String {
    debug_assert!(crate::session_store::valid_idempotency_key(key), "{key:?}");
    format!("sd:{tenant}:p:{project}:idem:{key}")
}

/// `sd:<t>:p:<project>:retention`: the project's retention policy.
pub(super) fn project_retention(tenant: &TenantId, project: &ProjectId) -> String {
    format!("sd:{tenant}:p:{project}:retention")
}

/// `sd:<t>:projects`: every project of the tenant that ever had a session.
pub(super) fn projects(tenant: &TenantId) -> String {
    format!("sd:{tenant}:projects")
}

/// `sd:nodes`: every registered node by heartbeat expiry.
pub(super) const NODES: &str = "sd:nodes";

/// `sd:node:<id>`: the node's last `NodeRecord`.
pub(super) fn node_record(node: &NodeId) -> String {
    format!("sd:node:{node}")
}

/// `sd:node:<id>:held`: the sessions the node holds.
pub(super) fn node_held(node: &NodeId) -> String {
    format!("sd:node:{node}:held")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_bus::Channel;

    #[test]
    fn session_keys_and_channel_share_one_hash_tag() {
        let t = TenantId::new("acme").unwrap();
        let id: SessionId = "01890a5d-ac96-774b-bcce-b302099a8059".parse().unwrap();
        let k = SessionKeys::new(&t, id);
        assert_eq!(
            k.meta,
            "sd:acme:s:{01890a5d-ac96-774b-bcce-b302099a8059}:meta"
        );
        assert_eq!(
            k.log,
            "sd:acme:s:{01890a5d-ac96-774b-bcce-b302099a8059}:log"
        );
        let idem = k.idempotency("req-1");
        assert_eq!(
            idem,
            "sd:acme:s:{01890a5d-ac96-774b-bcce-b302099a8059}:idem:req-1"
        );
        for key in [&k.meta, &k.log, &k.fence, &k.lease, &k.arch, &idem] {
            assert!(key.contains(&k.tag));
            assert_eq!(key.matches('{').count(), 1);
        }
        assert!(Channel::session(&t, id).as_str().contains(&k.tag));
        let p = ProjectId::new("web").unwrap();
        assert_eq!(project_index(&t, &p), "sd:acme:p:web:idx");
        assert_eq!(project_keys(&t, &p), "sd:acme:p:web:keys");
        assert_eq!(project_idempotency(&t, &p, "c-1"), "sd:acme:p:web:idem:c-1");
        assert_eq!(project_retention(&t, &p), "sd:acme:p:web:retention");
        assert_eq!(projects(&t), "sd:acme:projects");
    }

    #[test]
    fn node_keys_and_inbox_have_no_hash_tag() {
        let n = NodeId::new("node-a.1").unwrap();
        assert_eq!(node_record(&n), "sd:node:node-a.1");
        assert_eq!(node_held(&n), "sd:node:node-a.1:held");
        let inbox = Channel::node(&n);
        assert_eq!(inbox.as_str(), "sd:node:node-a.1:rpc");
        for key in [node_record(&n), node_held(&n), NODES.to_owned()] {
            assert!(!key.contains('{'));
        }
    }
}
