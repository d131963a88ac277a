//! Key names (DESIGN.md §5). One hash tag per session, `{<sid>}`, so every per-session
//! script touches a single slot and runs unchanged on Redis Cluster. The tenant slug
//! is written plainly in the prefix so a Redis ACL (`~sd:<t>:*`) can confine a tenant.
//!
//! ```text
//! sd:<t>:s:{<sid>}:meta    HASH    rec (encoded SessionMeta), last_seq, project
//! sd:<t>:s:{<sid>}:log     STREAM  ids "<seq>-0", field m = encoded Message
//! sd:<t>:s:{<sid>}:fence   STRING  "<n>|<node>", never expires
//! sd:<t>:s:{<sid>}:lease   STRING  "<node>|<n>", PX ttl
//! sd:<t>:s:{<sid>}:ev      channel (SPUBLISH), see `Channel::session`
//! sd:<t>:p:<project>:idx   ZSET    sid -> last_activity_ms
//! sd:<t>:p:<project>:keys  HASH    session key -> sid (key uniqueness per project)
//! ```
//!
//! `:keys` is not in DESIGN.md §5: it is the claim table behind `SessionKey`
//! uniqueness (HSETNX-like claim in `claim_key.lua`), a project-level key like `:idx`.

use crate::ids::{ProjectId, SessionId, TenantId};

/// The keys of one session; all share the `{<sid>}` hash tag.
#[derive(Debug, Clone)]
pub(super) struct SessionKeys {
    /// `{<sid>}`: what Redis Cluster hashes; groups commands by slot.
    pub(super) tag: String,
    pub(super) meta: String,
    pub(super) log: String,
    pub(super) fence: String,
    pub(super) lease: String,
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
        }
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
        for key in [&k.meta, &k.log, &k.fence, &k.lease] {
            assert!(key.contains(&k.tag));
            assert_eq!(key.matches('{').count(), 1);
        }
        assert!(Channel::session(&t, id).as_str().contains(&k.tag));
        let p = ProjectId::new("web").unwrap();
        assert_eq!(project_index(&t, &p), "sd:acme:p:web:idx");
        assert_eq!(project_keys(&t, &p), "sd:acme:p:web:keys");
    }
}
