//! `zonesweep bench`: throughput figures of the whole system, printed (never
//! asserted): end-to-end samples per second of the embedded cluster with 1
//! and 2 workers, and durable completions per second of a coordinator fed by
//! a load generator that fakes many workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zonesweep_coordinator::server::serve_coordinator;
use zonesweep_coordinator::{Coordinator, CoordinatorConfig};
use zonesweep_proto::client::{ClientOptions, Connection};
use zonesweep_proto::convert::{aggregate_to_pb, result_to_pb};
use zonesweep_proto::pb;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::runner::{Mode, SweepRunner};

use crate::client::{LimitArgs, Remote, SweepArgs, status_error};
use crate::data::demo_dataset;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// End-to-end samples/s of `run` on the demonstration dataset, 1 and 2
    /// worker threads.
    Run {
        /// Samples per measurement.
        #[arg(long, default_value_t = 40_000)]
        samples: u64,
        /// Samples per job: by default about a second of one thread's work,
        /// as the README's job sizing advises (with much shorter jobs the
        /// coordinator's share of the two cores grows).
        #[arg(long, default_value_t = 5000)]
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
        /// Threads per fake worker: each holds this many jobs and, its
        /// samples taking no time, sends their results together, as a real
        /// worker sends the results that end while its last call is out.
        /// The bench runs one-thread workers first, then these.
        #[arg(long, default_value_t = 4)]
        threads: u32,
        /// Distinct one-sample results (real samples, computed before the
        /// clock starts) the fake workers send in turn.
        #[arg(long, default_value_t = 1000)]
        distinct: u64,
        /// A dataset folder to sweep instead of the demonstration dataset
        /// (e.g. one written by `zonesweep data demo --units 2844`).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
}

pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Run { samples, job_size } => end_to_end(samples, job_size).await,
        BenchCommand::Sample { samples, units } => sample_cost(samples, units),
        BenchCommand::Coordinator { jobs, workers, threads, distinct, data } => {
            coordinator_load(jobs, workers, threads, distinct, data).await
        }
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
    let (target, met) = match units {
        None => ("≥ 20,000 samples/s for the 81-unit demonstration dataset", fast <= 50e-6),
        Some(_) => {
            ("≤ 2 ms per sample at 2,844 units, growing linearly with units", fast <= 2e-3 * n_units as f64 / 2844.0)
        }
    };
    println!("  target: {target}{}", if met { " (met)" } else { " (not met)" });
    // The regional answers' share of a sample: `Aggregate::add_regional`
    // over real outcomes, repeated until it has run for a while.
    let outcomes: Vec<_> = (0..samples.min(200)).filter_map(|k| runner.sample(k).ok()).collect();
    let mut regional = zonesweep_shared::sweep::aggregate::Aggregate::empty(runner.shape());
    let (mut rounds, started) = (0u64, Instant::now());
    while rounds == 0 || started.elapsed().as_secs_f64() < 0.3 {
        for outcome in &outcomes {
            regional.add_regional(std::hint::black_box(outcome));
        }
        rounds += 1;
    }
    let per_add = started.elapsed().as_secs_f64() / (rounds * outcomes.len().max(1) as u64) as f64;
    println!(
        "  regional accumulators (peak year, units per zone): {:.2} µs per sample = {:.2} % of a fast-path sample (target < 15 %)",
        per_add * 1e6,
        100.0 * per_add / fast
    );
    // A job of the bench's samples, at most 1,000 (a job's size by time
    // is about a second of samples).
    let job = samples.min(1000);
    let memory = runner.thread_memory(job);
    // Two lines: as one, it wrapped in a terminal of 160 columns.
    println!(
        "  memory per worker thread: {:.1} KiB of buffers, {:.1} KiB of histogram bins and counters",
        memory.scratch as f64 / 1024.0,
        memory.accumulator as f64 / 1024.0,
    );
    println!(
        "    (after a {job}-sample job; beside them the job's aggregate, {:.1} KiB encoded)",
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
    println!("speed-up with 2 workers: {:.2}× (target ≥ 1.9× on 2 cores)", rates[1] / rates[0]);
    Ok(())
}

/// The CPU seconds (user + system) of this process's threads whose names
/// start with `prefix`, and of all its threads, from `/proc/self/task`
/// (Linux; `None` elsewhere). Threads that ended are counted in neither.
fn thread_cpu(prefix: &str) -> Option<(f64, f64)> {
    // Clock ticks per second: 100 on every Linux configuration in use.
    const TICKS: f64 = 100.0;
    let (mut named, mut all) = (0u64, 0u64);
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(text) = std::fs::read_to_string(entry.ok()?.path().join("stat")) else { continue };
        // `pid (comm) state ...`: the name may hold spaces and parentheses.
        let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else { continue };
        let name = &text[open + 1..close];
        let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else { continue };
        let ticks = user.parse::<u64>().unwrap_or(0) + system.parse::<u64>().unwrap_or(0);
        all += ticks;
        if name.starts_with(prefix) {
            named += ticks;
        }
    }
    Some((named as f64 / TICKS, all as f64 / TICKS))
}

/// This process's resident memory, in bytes (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The heap bytes an aggregate's tables and histograms hold (an estimate:
/// the lengths of its vectors, not their capacities).
fn aggregate_heap_bytes(a: &Aggregate) -> usize {
    let tables = [
        &a.zone_counts,
        &a.total_counts,
        &a.score_counts,
        &a.cep_counts,
        &a.peak_counts,
        &a.neutral_counts,
        &a.regional_peak_counts,
        &a.zone_size_counts,
    ];
    let counts: usize = tables.iter().map(|t| t.as_flat().len() * 8).sum();
    let log = |h: &[zonesweep_shared::sweep::histogram::LogHistogram]| -> usize {
        h.iter().map(|h| std::mem::size_of_val(h) + h.bins.len() * 16).sum()
    };
    let linear: usize = a.coefficients.iter().chain([&a.r2, &a.k]).map(|h| h.bins.len() * 16).sum();
    let failures: usize = a.failures.iter().map(|(k, f)| k.len() + f.example.len() + f.samples.len() * 8 + 64).sum();
    counts + log(&a.ce_milestone) + log(&a.ce_horizon) + log(&a.regional_ce) + linear + failures
}

/// The name prefix of the load generator's threads.
const LOAD_THREADS: &str = "zs-load";

async fn coordinator_load(jobs: u64, workers: usize, threads: u32, distinct: u64, data: Option<PathBuf>) -> Result<()> {
    if jobs == 0 || workers == 0 || threads == 0 || distinct == 0 {
        bail!("--jobs, --workers, --threads and --distinct must be at least 1");
    }
    // Distinct one-sample results, computed before the clock starts: job j
    // is sent result j mod their number, so the merged aggregate's
    // histograms grow as a real sweep's do (no two samples alike).
    let dataset = match &data {
        Some(dir) => crate::data::load_dataset(dir)?,
        None => demo_dataset(),
    };
    let config = Config::default();
    let spec = SweepSpec { samples: jobs, ..SweepSpec::default() };
    let runner = SweepRunner::new(&dataset, &config, &spec)?;
    let computing = Instant::now();
    let mut results = Vec::new();
    let mut wire_bytes = 0usize;
    let mut sample = 0u64;
    while (results.len() as u64) < distinct.min(jobs) && sample < jobs {
        let result = runner.run_range(sample..sample + 1);
        sample += 1;
        // A failed sample names its index, which would not fit another job.
        if result.samples_ok == 1 {
            // The form a worker sends a result in.
            let wire = result_to_pb(&result);
            wire_bytes += prost::Message::encoded_len(&wire);
            results.push(wire);
        }
    }
    if results.is_empty() {
        bail!("every sample of the dataset failed; the load needs successful ones");
    }
    let results = Arc::new(results);
    let wire_bytes = wire_bytes / results.len();
    println!(
        "coordinator: {} distinct one-sample results of {} units computed in {:.1} s ({} bytes each on the wire on average)",
        results.len(),
        dataset.n_units(),
        computing.elapsed().as_secs_f64(),
        wire_bytes
    );

    // One thread per fake worker (a result a call), then the threads asked
    // for (results that end together sent together), in the same run.
    let mut rates = Vec::new();
    for threads in if threads == 1 { vec![1] } else { vec![1, threads] } {
        rates.push(load_once(jobs, workers, threads, data.clone(), results.clone()).await?);
    }
    if let [one, many] = rates[..] {
        println!(
            "coordinator: workers of {threads} threads {:.2}× the completions/s of one-thread workers",
            many / one
        );
    }
    Ok(())
}

/// One load of `jobs` one-sample jobs by `workers` fake workers of
/// `threads` threads on a coordinator of its own; the completions/s.
async fn load_once(
    jobs: u64,
    workers: usize,
    threads: u32,
    data: Option<PathBuf>,
    results: Arc<Vec<pb::Aggregate>>,
) -> Result<f64> {
    let cluster = start_coordinator().await?;
    let mut client = Remote::connect(&cluster.url, &cluster.token, &LimitArgs::default()).await?;
    let args = SweepArgs {
        samples: Some(jobs),
        seed: Some(1),
        data,
        spec: None,
        config: None,
        job_size: Some(1),
        until_ci: None,
        check_every: None,
    };
    let resident_before = resident_bytes();
    let status = client.submit(args.request()?).await?;
    // The load generator runs on a runtime of its own, so the CPU it takes
    // is told apart from the coordinator's (which runs on this one).
    let load =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name(LOAD_THREADS).enable_all().build()?;
    let cpu_before = thread_cpu(LOAD_THREADS);
    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (url, token) = (cluster.url.clone(), cluster.token.clone());
        let results = results.clone();
        let completed = completed.clone();
        tasks.spawn_on(
            async move {
                // One connection per fake worker, as separate worker processes have.
                let mut client = Connection::connect(&url, &token, &ClientOptions::default())
                    .await
                    .map_err(|e| tonic::Status::unavailable(format!("connecting: {e}")))?
                    .workers();
                let worker = client
                    .register(pb::RegisterRequest {
                        hostname: format!("fake{w}"),
                        threads,
                        chain: zonesweep_shared::CHAIN_REVISION,
                    })
                    .await?
                    .into_inner()
                    .worker_id;
                // Delivering results leases the next jobs in the same call,
                // as real workers do; Lease only for the first.
                let mut next = client
                    .lease(pb::LeaseRequest { worker_id: worker.clone(), capacity: threads, call: 0, wait_ms: 0 })
                    .await?
                    .into_inner()
                    .jobs;
                // Results go over one CompleteStream, as a real worker's do:
                // each request names its jobs' results and leases as many
                // jobs again, and its answer is awaited before the next.
                let (requests, outbox) = tokio::sync::mpsc::channel::<pb::CompleteManyRequest>(1);
                let mut answers =
                    client.complete_stream(tokio_stream::wrappers::ReceiverStream::new(outbox)).await?.into_inner();
                while !next.is_empty() {
                    // Results are built once; tonic still encodes every request.
                    let results: Vec<pb::JobResult> = next
                        .drain(..)
                        .map(|job| pb::JobResult {
                            aggregate: Some(results[job.job_index as usize % results.len()].clone()),
                            lease: Some(pb::LeaseRef {
                                sweep_id: job.sweep_id,
                                job_index: job.job_index,
                                lease_id: job.lease_id,
                            }),
                        })
                        .collect();
                    let sent = results.len() as u64;
                    let request = pb::CompleteManyRequest {
                        worker_id: worker.clone(),
                        results,
                        lease_capacity: sent as u32,
                        call: 0,
                    };
                    requests.send(request).await.map_err(|_| tonic::Status::unavailable("the result stream closed"))?;
                    let response = answers
                        .message()
                        .await?
                        .ok_or_else(|| tonic::Status::unavailable("the coordinator ended the result stream"))?;
                    if let Some(refused) = response.outcomes.iter().find(|o| o.code != 0) {
                        return Err(tonic::Status::new(tonic::Code::from(refused.code), refused.message.clone()));
                    }
                    next = response.jobs;
                    completed.fetch_add(sent, Ordering::Relaxed);
                }
                Ok::<_, tonic::Status>(())
            },
            load.handle(),
        );
    }
    while let Some(result) = tasks.join_next().await {
        result?.map_err(status_error)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = thread_cpu(LOAD_THREADS);
    let done = completed.load(Ordering::Relaxed);
    let final_status = client.status(&status.id).await?;
    println!(
        "coordinator: {done} durable completions by {workers} fake workers of {threads} thread(s) in {elapsed:.2} s = {:.0} completions/s (target ≥ 10,000/s); sweep {} with {}/{} samples",
        done as f64 / elapsed,
        final_status.state,
        final_status.samples_done,
        final_status.samples
    );
    if let (Some((load_before, all_before)), Some((load_after, all_after))) = (cpu_before, cpu_after) {
        let (load_cpu, all_cpu) = (load_after - load_before, all_after - all_before);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "cpu: the load generator took {load_cpu:.2} s of CPU ({:.0} % of the process's {all_cpu:.2} s; the coordinator the other {:.2} s, {:.0} µs per completion) over {elapsed:.2} s on {cores} cores",
            100.0 * load_cpu / all_cpu.max(1e-9),
            all_cpu - load_cpu,
            (all_cpu - load_cpu) * 1e6 / done.max(1) as f64
        );
    }
    let results = client.query(&status.id).await?;
    let encoded = zonesweep_proto::convert::encode_aggregate(&results.aggregate).len();
    let heap = aggregate_heap_bytes(&results.aggregate);
    let grown = match (resident_before, resident_bytes()) {
        (Some(before), Some(after)) => format!("{:.1} MiB", (after as f64 - before as f64) / (1 << 20) as f64),
        _ => "unknown".to_owned(),
    };
    println!(
        "memory per sweep: its merged aggregate is {:.1} KiB encoded, about {:.1} KiB in memory",
        encoded as f64 / 1024.0,
        heap as f64 / 1024.0
    );
    println!("memory of the process: resident memory grew {grown} during the run (coordinator and load generator)");
    drop(client);
    let _ = cluster.stop.send(());
    tokio::time::timeout(Duration::from_secs(10), cluster.server).await.ok();
    load.shutdown_background();
    Ok(done as f64 / elapsed)
}
