//! Identifiers: tenant and project slugs, session keys and UUID v7 ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed (`tenant`, `project`, `session key`, ...).
    pub kind: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(kind: &'static str, reason: impl Into<String>) -> IdError {
    IdError {
        kind,
        reason: reason.into(),
    }
}

/// A slug is `[a-z0-9][a-z0-9_-]{0,62}`: safe in Redis keys, URLs and file names.
fn check_slug(kind: &'static str, s: &str) -> Result<(), IdError> {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > 63 {
        return Err(invalid(kind, "must be 1 to 63 characters"));
    }
    if !(bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit()) {
        return Err(invalid(
            kind,
            "must start with a lowercase letter or a digit",
        ));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
    {
        return Err(invalid(kind, "may hold only a-z, 0-9, '_' and '-'"));
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates a slug.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_slug($kind, &s)?;
                // `sd:node:...` keys are the node registry's (and `sd:nodes`):
                // a tenant with that slug would share their prefix.
                if $kind == "tenant" && matches!(s.as_str(), "node" | "nodes") {
                    return Err(invalid($kind, "'node' and 'nodes' are reserved"));
                }
                Ok(Self(s))
            }

            /// The slug as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// A tenant: the unit of isolation. Every key of a tenant's data carries its slug.
    TenantId,
    "tenant"
);
slug_id!(
    /// A project inside a tenant: sessions are grouped, listed and retained per project.
    ProjectId,
    "project"
);

/// A human key for a session, unique inside its project (`main`, `support-4711`).
///
/// Format: `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionKey(String);

impl SessionKey {
    /// Parses and validates a session key.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 128 {
            return Err(invalid("session key", "must be 1 to 128 characters"));
        }
        if !b[0].is_ascii_alphanumeric() {
            return Err(invalid(
                "session key",
                "must start with a letter or a digit",
            ));
        }
        if !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
        {
            return Err(invalid(
                "session key",
                "may hold only letters, digits, '.', '_', ':' and '-'",
            ));
        }
        Ok(Self(s))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<SessionKey> for String {
    fn from(k: SessionKey) -> String {
        k.0
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }

            /// The UUID inside.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| invalid($kind, "not a UUID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A session, globally unique (UUID v7, so ids sort by creation time).
    SessionId,
    "session id"
);
uuid_id!(
    /// One run of the agent: the work started by one prompt.
    RunId,
    "run id"
);
uuid_id!(
    /// One message of a transcript.
    MessageId,
    "message id"
);

/// The name a node goes by in leases, heartbeats and forwarded requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// Parses a node id: 1 to 64 characters of `[A-Za-z0-9._-]` (no `|`, which
    /// separates fields in lease values).
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        if s.is_empty() || s.len() > 64 {
            return Err(invalid("node id", "must be 1 to 64 characters"));
        }
        if !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            return Err(invalid(
                "node id",
                "may hold only letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(Self(s))
    }

    /// A fresh random node id (`node-<uuid v7 simple>`).
    pub fn generate() -> Self {
        Self(format!("node-{}", Uuid::now_v7().simple()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl From<NodeId> for String {
    fn from(n: NodeId) -> String {
        n.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_validated() {
        assert!(ProjectId::new("support-bot_2").is_ok());
        assert!(
            TenantId::new("node").is_err(),
            "reserved for the node registry"
        );
        assert!(ProjectId::new("node").is_ok());
        assert!(ProjectId::new("").is_err());
        assert!(ProjectId::new("Upper").is_err());
        assert!(ProjectId::new("-lead").is_err());
        assert!(ProjectId::new("a".repeat(63)).is_ok());
        assert!(ProjectId::new("a".repeat(64)).is_err());
        assert!(TenantId::new("has space").is_err());
    }

    #[test]
    fn keys_are_validated() {
        assert!(SessionKey::new("support-4711").is_ok());
        assert!(SessionKey::new("user:42.main").is_ok());
        assert!(SessionKey::new("").is_err());
        assert!(SessionKey::new(".hidden").is_err());
        assert!(SessionKey::new("a/b").is_err());
        assert!(SessionKey::new("k".repeat(129)).is_err());
    }

    #[test]
    fn uuid_ids_round_trip_and_sort_by_time() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<SessionId>().unwrap(), a);
        assert!("nope".parse::<SessionId>().is_err());
    }

    #[test]
    fn node_ids_reject_separators() {
        assert!(NodeId::new("node-a.1").is_ok());
        assert!(NodeId::new("a|b").is_err());
        assert!(NodeId::generate().as_str().starts_with("node-"));
    }
}
