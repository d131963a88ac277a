//! The persisted encoding: one version byte, then MessagePack with field names.
//!
//! Field names (not positions) let a record gain fields without breaking readers on
//! either side of a rolling upgrade; the version byte lets a future format change be
//! detected instead of misread. bincode is not used: it breaks on added fields and
//! cannot hold `serde_json::Value`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version byte written in front of every record.
pub const FORMAT_VERSION: u8 = 1;

/// A record could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Empty input.
    #[error("empty record")]
    Empty,
    /// Written by a format this build does not know.
    #[error("unsupported record format version {0}")]
    UnsupportedVersion(u8),
    /// MessagePack decoding failed.
    #[error("malformed record: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// MessagePack encoding failed.
    #[error("record cannot be encoded: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Encodes a record in the versioned envelope.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    out.push(FORMAT_VERSION);
    rmp_serde::encode::write_named(&mut out, value)?;
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(rmp_serde::from_slice(body)?),
        Some((&v, _)) => Err(CodecError::UnsupportedVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;
    use crate::records::*;

    fn sample_message() -> Message {
        Message {
            seq: 7,
            id: MessageId::from_uuid("01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap()),
            run_id: Some(RunId::from_uuid(
                "01890a5d-ac96-774b-bcce-b302099a8058".parse().unwrap(),
            )),
            role: Role::ToolCall,
            content: "read file".into(),
            tool: Some(ToolInfo {
                call_id: Some("c1".into()),
                name: Some("read".into()),
                input: Some(serde_json::json!({"path": "/tmp/x", "lines": [1, 2]})),
                path: Some("/tmp/x".into()),
                is_error: false,
                full_result: None,
            }),
            timestamp_ms: 1_700_000_000_123,
        }
    }

    fn sample_meta() -> SessionMeta {
        let mut env = std::collections::BTreeMap::new();
        env.insert("RUST_LOG".to_string(), "debug".to_string());
        SessionMeta {
            id: SessionId::from_uuid("01890a5d-ac96-774b-bcce-b302099a8059".parse().unwrap()),
            tenant: TenantId::new("acme").unwrap(),
            project: ProjectId::new("support").unwrap(),
            key: Some(SessionKey::new("main").unwrap()),
            parent_id: None,
            label: Some("first".into()),
            driver: "scripted".into(),
            driver_options: serde_json::json!({"reply": "hello"})
                .as_object()
                .cloned()
                .unwrap(),
            model: Some("m1".into()),
            system_prompt: Some("be brief".into()),
            status: SessionStatus::Idle,
            last_run: Some(LastRun {
                run_id: RunId::from_uuid("01890a5d-ac96-774b-bcce-b302099a805a".parse().unwrap()),
                prompt_seq: 1,
                outcome: Some(RunOutcome::Completed),
                error: None,
                started_at_ms: 1_700_000_000_000,
                ended_at_ms: Some(1_700_000_000_500),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 20,
                    context_tokens: 30,
                    cost_usd: 0.25,
                },
            }),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 20,
                context_tokens: 30,
                cost_usd: 0.25,
            },
            error: None,
            config: SessionConfig {
                max_turns: Some(4),
                thinking: Some(true),
                cwd: Some("/srv".into()),
                env,
                // Added after v1 was written: old bytes decode them as None.
                auto_compact_tokens: None,
                auto_compact_keep: None,
            },
            // Added after v1 was written: old bytes decode it as empty.
            driver_state: Default::default(),
            last_seq: 2,
            // Added after v1 was written: old bytes decode them as 0 / false.
            archived_upto: 0,
            paused: false,
            queued: Vec::new(),
            queue_tracked: false,
            protected: false,
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_000_500,
            last_activity_ms: 1_700_000_000_500,
        }
    }

    // Bytes written by format version 1 when it was introduced. They must decode to
    // the same values forever: change a record only in ways that keep this passing.
    const GOLDEN_MESSAGE_V1: &[u8] = include_bytes!("../testdata/message_v1.bin");
    const GOLDEN_META_V1: &[u8] = include_bytes!("../testdata/meta_v1.bin");

    #[test]
    fn golden_bytes_still_decode() {
        let m: Message = decode(GOLDEN_MESSAGE_V1).unwrap();
        assert_eq!(m, sample_message());
        let meta: SessionMeta = decode(GOLDEN_META_V1).unwrap();
        assert_eq!(meta, sample_meta());
    }

    /// Writes the golden files; run by hand only when a new format version is added:
    /// `cargo test -p sessiond-store write_golden -- --ignored`.
    #[test]
    #[ignore]
    fn write_golden() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            format!("{dir}/message_v1.bin"),
            encode(&sample_message()).unwrap(),
        )
        .unwrap();
        std::fs::write(
            format!("{dir}/meta_v1.bin"),
            encode(&sample_meta()).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn round_trip_and_version_checks() {
        let m = sample_message();
        let bytes = encode(&m).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Message>(&bytes).unwrap(), m);
        assert!(matches!(decode::<Message>(&[]), Err(CodecError::Empty)));
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(matches!(
            decode::<Message>(&future),
            Err(CodecError::UnsupportedVersion(9))
        ));
        assert!(decode::<Message>(&[FORMAT_VERSION, 0xc1]).is_err());
    }

    #[derive(serde::Serialize)]
    struct NewerMessage {
        #[serde(flatten)]
        base: Message,
        added_later: u32,
    }

    #[test]
    fn unknown_fields_and_variants_are_tolerated() {
        // A newer writer adds a field: an older reader ignores it.
        let newer = NewerMessage {
            base: sample_message(),
            added_later: 5,
        };
        let bytes = encode(&newer).unwrap();
        assert_eq!(decode::<Message>(&bytes).unwrap(), sample_message());

        // A newer writer adds a role: an older reader sees Unknown. The role is
        // swapped in the encoded bytes for a new name of the same length.
        let mut bytes = encode(&sample_message()).unwrap();
        let at = bytes
            .windows(9)
            .position(|w| w == b"tool_call")
            .expect("role in bytes");
        bytes[at..at + 9].copy_from_slice(b"critic_v2");
        assert_eq!(decode::<Message>(&bytes).unwrap().role, Role::Unknown);
    }
}
