//! The bus payloads `append.lua` publishes, prepared in Rust.
//!
//! The script knows which messages are new, and the session's final `last_seq`, only
//! when it runs, and it cannot encode MessagePack records. So Rust encodes everything
//! but those two parts and hands the script a prefix and a suffix for each payload:
//!
//! - `Messages`: prefix + array header (`fresh` elements) + each new message's
//!   encoding without its version byte + suffix;
//! - `Status`: prefix + `last_seq` as a MessagePack uint + suffix.
//!
//! The result is byte for byte what `codec::encode(&BusEvent::..)` gives (tested
//! here against the Rust mirror, and in the backend tests against the script).

use crate::codec::{self, CodecError};
use crate::ids::MessageId;
use crate::records::{BusEvent, Message, Role, SessionMeta, StatusChange};

/// The constant parts of a payload around the part the script fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    pub(super) prefix: Vec<u8>,
    pub(super) suffix: Vec<u8>,
}

/// Splits `a` and `b` (encodings of the same value but for one field) around that
/// field: `width` bytes of `a` ending at the first byte where they differ.
fn split_around(a: Vec<u8>, b: &[u8], width: usize) -> Template {
    let d = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .expect("encodings differ");
    Template {
        prefix: a[..d + 1 - width].to_vec(),
        suffix: a[d + 1..].to_vec(),
    }
}

/// The `BusEvent::Messages` template (the same for every commit).
pub(super) fn messages_template() -> Result<Template, CodecError> {
    let none = codec::encode(&BusEvent::Messages { messages: vec![] })?;
    let one = codec::encode(&BusEvent::Messages {
        messages: vec![Message {
            seq: 1,
            id: MessageId::from_uuid(uuid::Uuid::nil()),
            run_id: None,
            role: Role::User,
            content: String::new(),
            tool: None,
            timestamp_ms: 0,
        }],
    })?;
    // The empty array is one byte (0x90); the one-element array starts 0x91.
    let t = split_around(none, &one, 1);
    debug_assert!(one.starts_with(&t.prefix) && one[t.prefix.len()] == 0x91);
    Ok(t)
}

/// The `BusEvent::Status` template of a meta write; `last_seq` is left out.
pub(super) fn status_template(meta: &SessionMeta) -> Result<Template, CodecError> {
    let mut status = StatusChange::of(meta);
    status.last_seq = u64::MAX;
    let a = codec::encode(&BusEvent::Status(status.clone()))?;
    status.last_seq = u64::MAX - 1;
    let b = codec::encode(&BusEvent::Status(status))?;
    // u64::MAX is 0xcf + 8 bytes; the two encodings differ in the last one only.
    debug_assert_eq!(a.len(), b.len());
    let t = split_around(a, &b, 9);
    debug_assert_eq!(b.get(t.prefix.len()), Some(&0xcf));
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::SessionStatus;
    use crate::testing::conformance::{fresh_tenant, msg, new_meta};

    // What append.lua does, in Rust.
    fn array_header(n: usize) -> Vec<u8> {
        match n {
            0..16 => vec![0x90 | n as u8],
            16..65536 => [&[0xdc][..], &(n as u16).to_be_bytes()].concat(),
            _ => [&[0xdd][..], &(n as u32).to_be_bytes()].concat(),
        }
    }

    fn uint(n: u64) -> Vec<u8> {
        match n {
            0..128 => vec![n as u8],
            128..256 => vec![0xcc, n as u8],
            256..65536 => [&[0xcd][..], &(n as u16).to_be_bytes()].concat(),
            65536..4294967296 => [&[0xce][..], &(n as u32).to_be_bytes()].concat(),
            _ => [&[0xcf][..], &n.to_be_bytes()].concat(),
        }
    }

    #[test]
    fn spliced_messages_equal_the_encoded_event() {
        let t = messages_template().unwrap();
        for n in [1usize, 2, 15, 16, 17, 300] {
            let messages: Vec<_> = (1..=n as u64)
                .map(|s| msg(s, Role::Assistant, &format!("m{s}")))
                .collect();
            let mut spliced = t.prefix.clone();
            spliced.extend(array_header(n));
            for m in &messages {
                spliced.extend(&codec::encode(m).unwrap()[1..]);
            }
            spliced.extend(&t.suffix);
            assert_eq!(
                spliced,
                codec::encode(&BusEvent::Messages { messages }).unwrap()
            );
        }
    }

    #[test]
    fn spliced_status_equals_the_encoded_event() {
        let mut meta = new_meta(&fresh_tenant(), "p", None);
        meta.status = SessionStatus::Running;
        meta.error = Some("last_seq \u{a8}".into());
        let t = status_template(&meta).unwrap();
        for n in [
            0u64,
            1,
            127,
            128,
            255,
            256,
            65535,
            65536,
            (1 << 32) - 1,
            1 << 32,
            1 << 40,
        ] {
            meta.last_seq = n;
            let spliced = [&t.prefix[..], &uint(n), &t.suffix[..]].concat();
            let want = codec::encode(&BusEvent::Status(StatusChange::of(&meta))).unwrap();
            assert_eq!(spliced, want, "last_seq {n}");
        }
    }
}
