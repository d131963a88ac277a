//! Redis backend: sessions, leases, the node registry and the event bus on one Redis,
//! or a Redis Cluster (7.0 or newer: sharded pub/sub), through redis-rs connections
//! speaking RESP3 (`ConnectionManager`s, or `ClusterConnection`s).
//!
//! Every write that must be atomic is a Lua script on the keys of one session (one
//! hash tag, so one Redis Cluster slot); project-level keys are changed by commands
//! of their own (`:idx` and `sd:<t>:projects` in the same round trip as the scripts,
//! a `:keys` claim just before the session is stored; a delete's `:idx` and `:keys`
//! removals just after its script). Commits publish their bus events from inside the
//! append script (SPUBLISH), so an event is never seen before what it announces is
//! durable. A write's archive move and idempotency key are in its append script.
//!
//! # Layout
//! - `keys`: key names (the layout of DESIGN.md §5 plus `:keys`, `:idem:<key>`,
//!   `:retention` and `sd:<t>:projects`)
//! - `conn`: the command connection, the scripts, batches in one round trip
//! - `payload`: the bus payloads the append script splices together
//! - `sessions`, `leases`: `SessionStore` and `LeaseStore` on the scripts
//! - `nodes`: `NodeRegistry` on `sd:nodes` and two keys per node, single-key commands
//! - `lifecycle`: the rest of `SessionStore` (delete, archive reads, idempotency
//!   keys, retention policies, the project list)
//! - `bus`: `EventBus` over RESP3 push messages, fanned out per channel
//! - `*.lua`: the scripts (`append`, `create`, `delete`, `claim_key`,
//!   `release_key`, `acquire`, `renew`, `release`; `archive` is the archive move
//!   `append` and `delete` share)

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{IntoConnectionInfo, ProtocolVersion};

use crate::backend::Backend;
use crate::error::{Result, StoreError};

mod bus;
mod conn;
mod keys;
mod leases;
mod lifecycle;
mod nodes;
mod payload;
mod sessions;
#[cfg(all(test, feature = "testing"))]
mod tests;

use conn::{Conn, Scripts};
use payload::Template;

/// Timeouts and reconnection of the Redis connections. The defaults make a call on a
/// dead server fail as `Unavailable` within a few seconds rather than hang.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// How long a command waits for its reply.
    pub response_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// Reconnection attempts (exponential backoff from 100 ms) before a waiting
    /// command fails; the next command starts a new round.
    pub reconnect_retries: usize,
    /// The longest pause between two reconnection attempts.
    pub max_backoff: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            response_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            reconnect_retries: 3,
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RedisOptions {
    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(self.connect_timeout))
            .set_number_of_retries(self.reconnect_retries)
            .set_max_delay(self.max_backoff)
    }
}

/// Connects to the Redis at `url` with default options. The backend's `kind` is
/// `"redis"`.
///
/// - one server: `redis://[user:pass@]host:port[/db]` (or `rediss://`);
/// - a Redis Cluster: `redis+cluster://[user:pass@]host:port,host:port,...` (or
///   `rediss+cluster://`), the seed nodes the cluster's topology is read from.
pub async fn connect_redis(url: &str) -> Result<Backend> {
    connect_redis_with(url, &RedisOptions::default()).await
}

/// [`connect_redis`] with explicit options.
pub async fn connect_redis_with(url: &str, options: &RedisOptions) -> Result<Backend> {
    let (conn, bus) = match cluster_seeds(url) {
        Some(seeds) => connect_cluster(seeds, options).await?,
        None => connect_single(url, options).await?,
    };
    let store = RedisStore::new(conn).await?;
    Ok(Backend {
        sessions: Arc::new(store.clone()),
        leases: Arc::new(store.clone()),
        bus: Arc::new(bus),
        nodes: Arc::new(store),
        kind: "redis",
    })
}

/// Two connections: commands, and the bus's subscriptions (a connection with
/// subscriptions can still run commands, but a slow command must not hold up the
/// push messages, nor the reverse).
async fn connect_single(url: &str, options: &RedisOptions) -> Result<(Conn, bus::RedisBus)> {
    let info = url
        .into_connection_info()
        .map_err(|e| StoreError::Unavailable(format!("redis url: {e}")))?;
    // RESP3 whatever the URL says: the bus needs push messages.
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let config = options.manager_config();
    let conn = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
    let conn = Conn::Single(conn);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let config = config.set_push_sender(tx).set_automatic_resubscription();
    let subs = ConnectionManager::new_with_config(client, config).await?;
    let bus = bus::RedisBus::new(bus::Subs::Single(subs), rx, conn.clone());
    Ok((conn, bus))
}

async fn connect_cluster(
    seeds: Vec<String>,
    options: &RedisOptions,
) -> Result<(Conn, bus::RedisBus)> {
    let builder = || {
        ClusterClientBuilder::new(seeds.clone())
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.response_timeout)
            .retries(options.reconnect_retries as u32)
            .max_retry_wait(options.max_backoff.as_millis() as u64)
    };
    let conn = Conn::Cluster(builder().build()?.get_async_connection().await?);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let subs = builder()
        .push_sender(tx)
        .build()?
        .get_async_connection()
        .await?;
    let bus = bus::RedisBus::new(bus::Subs::Cluster(subs), rx, conn.clone());
    Ok((conn, bus))
}

/// The seed URLs of a `redis+cluster://` (or `rediss+cluster://`) URL; `None` for
/// any other URL. Credentials and a path or query apply to every seed.
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = match scheme {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return None,
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (userinfo, hosts) = authority.split_at(authority.rfind('@').map_or(0, |i| i + 1));
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("{scheme}://{userinfo}{h}{tail}"))
            .collect(),
    )
}

/// `SessionStore`, `LeaseStore` and `NodeRegistry` on one command connection.
#[derive(Clone)]
struct RedisStore {
    inner: Arc<Shared>,
}

struct Shared {
    conn: Conn,
    scripts: Scripts,
    /// The `BusEvent::Messages` template, the same for every commit.
    messages: Template,
}

impl RedisStore {
    async fn new(conn: Conn) -> Result<Self> {
        let scripts = Scripts::new();
        // Loaded now to spare the first batches a NOSCRIPT round; a server that
        // restarts forgets them and `Conn::run` loads them again.
        scripts.load(&conn).await?;
        Ok(Self {
            inner: Arc::new(Shared {
                conn,
                scripts,
                messages: payload::messages_template()?,
            }),
        })
    }
}

/// Parses a reply into `T`; an unexpected shape is a backend failure.
fn parse<T: redis::FromRedisValue>(v: redis::Value) -> Result<T> {
    let v = conn::ok(v)?;
    redis::from_redis_value(v)
        .map_err(|e| StoreError::Unavailable(format!("redis: unexpected reply: {e}")))
}

#[cfg(test)]
mod url_tests {
    use super::cluster_seeds;

    #[test]
    fn cluster_urls_name_their_seeds() {
        assert_eq!(cluster_seeds("redis://h:1"), None);
        assert_eq!(
            cluster_seeds("redis+cluster://a:1,b:2").unwrap(),
            ["redis://a:1", "redis://b:2"]
        );
        assert_eq!(
            cluster_seeds("rediss+cluster://u:p@a:1,b:2/0?x=1").unwrap(),
            ["rediss://u:p@a:1/0?x=1", "rediss://u:p@b:2/0?x=1"]
        );
    }
}
