//! A Redis Cluster of three masters on loopback for tests: redis-server processes
//! with `--cluster-enabled yes` on free ports, joined by `redis-cli --cluster
//! create`. Stopped (and their directories removed) on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::redis_server::{RedisServer, free_port};

/// A running three-master cluster, no replicas.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

fn redis_cli_binary() -> PathBuf {
    std::env::var_os("REDIS_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-cli"))
}

impl RedisCluster {
    /// Starts three masters, assigns them the slots and waits until every node
    /// answers `cluster_state:ok`.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                // The cluster bus defaults to port + 10000, which may not exist for
                // a high free port: give it its own.
                let bus_port = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus_port,
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let out = Command::new(redis_cli_binary())
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}); install it or set REDIS_CLI"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_ready(Duration::from_secs(30));
        cluster
    }

    fn wait_ready(&self, deadline: Duration) {
        let end = Instant::now() + deadline;
        for node in &self.nodes {
            loop {
                let info = redis::Client::open(node.url())
                    .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                    .unwrap_or_default();
                if info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains("cluster_known_nodes:3")
                {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "redis cluster not ready after {deadline:?}: {info}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>`, the seed list
    /// `connect_redis` takes for a cluster.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The masters.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}
