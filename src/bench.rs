//! `zonesweep bench`: throughput figures of the whole system, printed (never
//! asserted): end-to-end samples per second of the embedded cluster with 1
//! and 2 workers, and durable completions per second of a coordinator fed by
//! a load generator that fakes many workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig};
use zonesweep_proto::client::{ClientOptions, Connection};
use zonesweep_proto::convert::aggregate_to_pb;
use zonesweep_proto::pb;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::{Mode, SweepRunner};

use crate::client::{LimitArgs, Remote, SweepArgs, status_error};
use crate::data::demo_dataset;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// End-to-end samples/s of `run` on the demonstration dataset, 1 and 2 workers.
    Run {
        /// Samples per measurement.
        #[arg(long, default_value_t = 4000)]
        samples: u64,
        /// Samples per job.
        #[arg(long, default_value_t = 100)]
        job_size: u64,
    },
    /// The cost of one sample on this thread by the fast path and by the
    /// reference chain (the same samples, in the same run), their ratio,
    /// and the memory one worker thread holds for it.
    Sample {
        /// Samples to run by each chain.
        #[arg(long, default_value_t = 4000)]
        samples: u64,
        /// Run on a generated dataset of this many units (as `data demo
        /// --units`) instead of the 81-unit demonstration dataset.
        #[arg(long)]
        units: Option<usize>,
    },
    /// Durable completions/s of a coordinator under a fake-worker load.
    Coordinator {
        /// Jobs to complete (one sample each).
        #[arg(long, default_value_t = 20000)]
        jobs: u64,
        /// Concurrent fake workers.
        #[arg(long, default_value_t = 64)]
        workers: usize,
    },
}

pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Run { samples, job_size } => end_to_end(samples, job_size).await,
        BenchCommand::Sample { samples, units } => sample_cost(samples, units),
        BenchCommand::Coordinator { jobs, workers } => coordinator_load(jobs, workers).await,
    }
}

/// Time the same samples by the reference chain and by the fast path, one
/// thread, and check the two aggregates are identical.
fn sample_cost(samples: u64, units: Option<usize>) -> Result<()> {
    if samples == 0 {
        bail!("--samples must be at least 1");
    }
    let dataset = match units {
        None => demo_dataset(),
        Some(n) => zonesweep_shared::data::demo::generate(n, 1).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let config = Config::default();
    let spec = SweepSpec { samples, ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &spec)?;
    let time = |mode: Mode| {
        let runner = runner.clone().with_mode(mode);
        let started = Instant::now();
        let aggregate = runner.run_range(0..samples);
        (started.elapsed().as_secs_f64() / samples as f64, aggregate)
    };
    // Reference first, then the fast path, then the reference again: the
    // ratio uses the faster of the two reference runs, so a noisy start does
    // not flatter the fast path.
    let (reference_a, reference) = time(Mode::Reference);
    let (fast, fast_aggregate) = time(Mode::Fast);
    let (reference_b, _) = time(Mode::Reference);
    let reference_cost = reference_a.min(reference_b);
    if fast_aggregate != reference {
        bail!("the fast path's aggregate differs from the reference chain's: a defect, please report it");
    }
    if reference.samples_ok == 0 {
        bail!("every sample failed: {:?}", reference.failures.keys().collect::<Vec<_>>());
    }
    let n_units = dataset.n_units();
    println!(
        "sample: {samples} samples of a {n_units}-unit dataset, default spec, one thread ({} failed)",
        reference.samples_failed()
    );
    println!(
        "  fast path:       {:>9.1} µs per sample = {:>8.0} samples/s = {:.3} µs per unit",
        fast * 1e6,
        1.0 / fast,
        fast * 1e6 / n_units as f64
    );
    println!(
        "  reference chain: {:>9.1} µs per sample = {:>8.0} samples/s (runs {:.1} and {:.1} µs)",
        reference_cost * 1e6,
        1.0 / reference_cost,
        reference_a * 1e6,
        reference_b * 1e6
    );
    println!("  ratio: the fast path is {:.2}× the reference chain; aggregates identical", reference_cost / fast);
    let memory = runner.thread_memory();
    println!(
        "  memory per worker thread: {:.1} KiB of buffers for a sample and {:.1} KiB of pending histogram bins, beside the job's aggregate ({:.1} KiB encoded)",
        memory.scratch as f64 / 1024.0,
        memory.accumulator as f64 / 1024.0,
        prost::Message::encoded_len(&aggregate_to_pb(&fast_aggregate)) as f64 / 1024.0
    );
    Ok(())
}

struct Embedded {
    url: String,
    token: String,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), zonesweep_coordinator::error::CoordinatorError>>,
    _dir: tempfile::TempDir,
}

async fn start_coordinator() -> Result<Embedded> {
    let dir = tempfile::tempdir()?;
    let token = "bench-token".to_owned();
    let config = CoordinatorConfig::new(dir.path().join("bench.redb"), token.clone());
    let coordinator = Coordinator::start(config).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve_coordinator(coordinator, listener, async {
        let _ = stopped.await;
    }));
    Ok(Embedded { url, token, stop, server, _dir: dir })
}

async fn end_to_end(samples: u64, job_size: u64) -> Result<()> {
    let mut rates = Vec::new();
    for workers in [1usize, 2] {
        let cluster = start_coordinator().await?;
        let (stop_worker, worker_stopped) = oneshot::channel::<()>();
        let worker = tokio::spawn(zonesweep_worker::run(
            zonesweep_worker::WorkerConfig::new(&cluster.url, &cluster.token, workers, "bench"),
            async {
                let _ = worker_stopped.await;
            },
        ));
        let mut client = Remote::connect(&cluster.url, &cluster.token, &LimitArgs::default()).await?;
        let args = SweepArgs {
            samples: Some(samples),
            seed: Some(1),
            data: None,
            spec: None,
            config: None,
            job_size: Some(job_size),
            until_ci: None,
            check_every: None,
        };
        let started = Instant::now();
        let status = client.submit(args.request()?).await?;
        let mut stream = client.watch(&status.id).await?;
        let mut last = None;
        while let Ok(s) = stream.next().await? {
            last = Some(s);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let last = last.context("no status")?;
        if last.samples_done != samples {
            bail!("the sweep ended with {} of {samples} samples", last.samples_done);
        }
        let rate = samples as f64 / elapsed;
        println!("run, {workers} worker thread(s): {samples} samples in {elapsed:.2} s = {rate:.0} samples/s");
        rates.push(rate);
        let _ = stop_worker.send(());
        let _ = worker.await;
        let _ = cluster.stop.send(());
        let _ = cluster.server.await;
    }
    println!("speed-up with 2 workers: {:.2}× (target ≥ 1.8× on 2 cores)", rates[1] / rates[0]);
    Ok(())
}

async fn coordinator_load(jobs: u64, workers: usize) -> Result<()> {
    let cluster = start_coordinator().await?;
    let mut client = Remote::connect(&cluster.url, &cluster.token, &LimitArgs::default()).await?;
    let args = SweepArgs {
        samples: Some(jobs),
        seed: Some(1),
        data: None,
        spec: None,
        config: None,
        job_size: Some(1),
        until_ci: None,
        check_every: None,
    };
    let status = client.submit(args.request()?).await?;
    // A valid one-sample result per job, made once: the load is the
    // coordinator's, not the model's.
    let dataset = demo_dataset();
    let config = Config::default();
    let spec = SweepSpec { samples: jobs, ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &spec)?;
    let template: Aggregate = runner.run_range(0..1);
    if template.samples_ok != 1 {
        bail!("sample 0 of the demonstration dataset failed; the load needs a successful one");
    }
    let wire = aggregate_to_pb(&template);
    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        // One connection per fake worker, as separate worker processes have.
        let mut client = Connection::connect(&cluster.url, &cluster.token, &ClientOptions::default()).await?.workers();
        let wire = wire.clone();
        let completed = completed.clone();
        tasks.spawn(async move {
            let worker = client
                .register(pb::RegisterRequest { hostname: format!("fake{w}"), threads: 1 })
                .await?
                .into_inner()
                .worker_id;
            loop {
                let leased =
                    client.lease(pb::LeaseRequest { worker_id: worker.clone(), capacity: 1 }).await?.into_inner().jobs;
                let Some(job) = leased.into_iter().next() else { return Ok::<_, tonic::Status>(()) };
                let lease = pb::LeaseRef { sweep_id: job.sweep_id, job_index: job.job_index, lease_id: job.lease_id };
                // The load generator should cost little next to the
                // coordinator: a successful one-sample result is the same
                // for every job, so its protobuf message is built once and
                // cloned (tonic still encodes every request).
                client
                    .complete(pb::CompleteRequest {
                        worker_id: worker.clone(),
                        lease: Some(lease),
                        aggregate: Some(wire.clone()),
                    })
                    .await?;
                completed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result?.map_err(status_error)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = completed.load(Ordering::Relaxed);
    let final_status = client.status(&status.id).await?;
    println!(
        "coordinator: {done} durable completions by {workers} fake workers in {elapsed:.2} s = {:.0} completions/s (target ≥ 2000/s); sweep {} with {}/{} samples",
        done as f64 / elapsed,
        final_status.state,
        final_status.samples_done,
        final_status.samples
    );
    let _ = cluster.stop.send(());
    tokio::time::timeout(Duration::from_secs(10), cluster.server).await.ok();
    Ok(())
}
