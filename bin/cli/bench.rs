//! `sessiond bench`: measures a node end to end over HTTP and SSE, on one or more
//! stores in one run, so their figures can be compared as ratios.
//!
//! For each store it starts a node in this process on a loopback port, creates
//! `--sessions` scripted sessions and drives them all at once: every session sends
//! `--prompts` prompts one after another, timing the acknowledgement (the prompt is
//! durable) and the whole run (its last message and final status arrive on the
//! session's SSE stream). Client and server share the machine: on 2 cores the
//! figures are a floor, not a ceiling.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
use sessiond_client::model::CreateSessionRequest;
use sessiond_client::{Client, Event};
use sessiond_runtime::config::{Config, StoreConfig};
use sessiond_runtime::node::{Drivers, Node};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Stores to measure in this run: memory, sqlite, redis (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "memory,sqlite")]
    stores: Vec<String>,
    /// Redis URL for the `redis` store (a server you started; its data is left there).
    #[arg(long)]
    redis: Option<String>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Prompts each session sends, one after another.
    #[arg(long, default_value_t = 20)]
    prompts: usize,
    /// Assistant messages per run.
    #[arg(long, default_value_t = 4)]
    chunks: u32,
}

/// Figures of one store.
struct Report {
    store: String,
    wall: Duration,
    sends: u64,
    messages: u64,
    ack: Histogram<u64>,
    run: Histogram<u64>,
    rss_per_session_kb: Option<i64>,
}

fn rss_kb() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.sessions == 0 || args.prompts == 0 || args.chunks == 0 {
        return Err(anyhow!(
            "--sessions, --prompts and --chunks must be at least 1"
        ));
    }
    println!(
        "sessiond bench: {} sessions x {} prompts, {} assistant messages per run, {} cores",
        args.sessions,
        args.prompts,
        args.chunks,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "store",
        "sends/s",
        "msgs/s",
        "ack p50",
        "ack p99",
        "run p50",
        "run p99",
        "run max",
        "rss/session"
    );
    let mut reports = Vec::new();
    for store in &args.stores {
        let r = bench_store(&args, store).await?;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:<8} {:>9.0} {:>10.0} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>9}",
            r.store,
            r.sends as f64 / r.wall.as_secs_f64(),
            r.messages as f64 / r.wall.as_secs_f64(),
            ms(&r.ack, 0.5),
            ms(&r.ack, 0.99),
            ms(&r.run, 0.5),
            ms(&r.run, 0.99),
            r.run.max() as f64 / 1000.0,
            r.rss_per_session_kb
                .map_or("-".into(), |kb| format!("{kb} KB")),
        );
        reports.push(r);
    }
    if let [base, others @ ..] = reports.as_slice() {
        for o in others {
            println!(
                "{} / {}: throughput x{:.2}, ack p50 x{:.2}",
                o.store,
                base.store,
                (o.messages as f64 / o.wall.as_secs_f64())
                    / (base.messages as f64 / base.wall.as_secs_f64()),
                o.ack.value_at_quantile(0.5) as f64 / base.ack.value_at_quantile(0.5).max(1) as f64,
            );
        }
    }
    Ok(())
}

async fn bench_store(args: &BenchArgs, store: &str) -> anyhow::Result<Report> {
    let data_dir =
        std::env::temp_dir().join(format!("sessiond-bench-{}", uuid::Uuid::now_v7().simple()));
    let store_config = match store {
        "memory" => StoreConfig::Memory,
        "sqlite" => StoreConfig::Sqlite {
            data_dir: data_dir.clone(),
        },
        "redis" => StoreConfig::Redis {
            url: args
                .redis
                .clone()
                .context("--redis URL is needed to measure the redis store")?,
        },
        other => return Err(anyhow!("unknown store '{other}' (memory, sqlite, redis)")),
    };
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        store: store_config,
        ..Config::default()
    };
    let rss_before = rss_kb();
    let node = Node::start(config, Drivers::with_scripted()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sessiond_runtime::server::serve(listener, node, async {
        let _ = stop_rx.await;
    }));

    let client = Client::new(&base)?;
    let mut ids = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        // One project per session: a project's retention (5 finished sessions by
        // default) would otherwise delete the bench's own sessions between prompts.
        let mut options = serde_json::Map::new();
        options.insert("chunks".into(), json!(args.chunks));
        let req = CreateSessionRequest {
            driver_options: Some(options),
            ..CreateSessionRequest::default()
        };
        let created = client.create_session(&format!("bench-{i}"), &req).await?;
        ids.push(created.session.id);
    }

    let ack = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let run = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in ids {
        let (client, ack, run) = (client.clone(), ack.clone(), run.clone());
        let (prompts, per_run) = (args.prompts, 1 + args.chunks as u64);
        tasks.push(tokio::spawn(async move {
            drive_session(&client, &id, prompts, per_run, &ack, &run).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let wall = started.elapsed();
    let rss_after = rss_kb();
    let _ = stop_tx.send(());
    server.await??;
    let _ = std::fs::remove_dir_all(&data_dir);
    let sends = (args.sessions * args.prompts) as u64;
    Ok(Report {
        store: store.to_string(),
        wall,
        sends,
        messages: sends * (1 + args.chunks as u64),
        ack: Arc::try_unwrap(ack)
            .map_err(|_| anyhow!("histogram in use"))?
            .into_inner()
            .map_err(|_| anyhow!("poisoned"))?,
        run: Arc::try_unwrap(run)
            .map_err(|_| anyhow!("histogram in use"))?
            .into_inner()
            .map_err(|_| anyhow!("poisoned"))?,
        rss_per_session_kb: rss_before
            .zip(rss_after)
            .map(|(b, a)| (a - b) / args.sessions as i64),
    })
}

/// Sends `prompts` prompts one after another; each waits for its run to end on the
/// session's SSE stream.
async fn drive_session(
    client: &Client,
    id: &str,
    prompts: usize,
    per_run: u64,
    ack: &Mutex<Histogram<u64>>,
    run: &Mutex<Histogram<u64>>,
) -> anyhow::Result<()> {
    let mut events = client.events(id, Some(0));
    for p in 0..prompts as u64 {
        let t0 = Instant::now();
        client.send(id, format!("prompt {p}")).await?;
        record(ack, t0.elapsed());
        let expected = (p + 1) * per_run;
        loop {
            match events.next().await.context("event stream ended")?? {
                Event::Status(s) if s.status != "running" && s.last_seq >= expected => break,
                _ => {}
            }
        }
        record(run, t0.elapsed());
    }
    Ok(())
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    let us = d.as_micros().clamp(1, 60_000_000) as u64;
    if let Ok(mut h) = h.lock() {
        let _ = h.record(us);
    }
}
