//! The zonesweep worker: registers with a coordinator, leases jobs (contiguous
//! sample ranges of a sweep) up to its thread count (twice it while jobs
//! take under 10 s), runs each job as one task on a rayon pool and returns
//! the job's partial aggregate.
//!
//! - Work is pulled: the worker asks for `threads − in hand` jobs (or
//!   `2 × threads − in hand`: a thread's next short job waits in the pool
//!   while the last one's result is being acknowledged), and backs
//!   off (200 ms to 1 s) while there are none. Delivering a result leases
//!   the job's successor in the same call (none while draining).
//! - Samples never run on the runtime's threads: one job is one task on a
//!   pool of `threads` rayon threads (the `job` module).
//! - A sweep's dataset, configuration and spec are fetched and parsed once
//!   per worker ([`cache`]).
//! - Every held lease is reported each heartbeat interval; a lease the
//!   coordinator names in `abandon` is finished but its result discarded.
//! - An unreachable coordinator is retried with backoff at every step,
//!   never fatal; only a refused token or registration ends [`run`].
//! - On shutdown the worker drains: it stops leasing, finishes the jobs in
//!   hand, delivers their results and returns.
//!
//! The worker logs through `tracing` (connecting, sweeps started, outages
//! and stopping at INFO; every job at DEBUG); the program installs the
//! subscriber.

pub mod cache;
mod deliver;
mod error;
pub mod held;
mod job;
pub mod rpc;
mod session;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use zonesweep_shared::sweep::runner::Mode;

use tokio::task::{JoinError, JoinSet};
use tonic::Code;
use zonesweep_proto::client::DEFAULT_MAX_MESSAGE_MIB;
use zonesweep_proto::pb;

pub use crate::error::WorkerError;
use crate::rpc::{Backoff, CONTROL_DEADLINE, Disposition, Log, bounded, classify};
use crate::session::Worker;

/// How a worker joins a coordinator.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The coordinator's URL, such as `http://127.0.0.1:7070`.
    pub coordinator: String,
    /// The bearer token the coordinator requires.
    pub token: String,
    /// Sample threads, and so the most jobs held at once; at least 1.
    pub threads: usize,
    /// How the coordinator lists this worker.
    pub hostname: String,
    /// The largest message sent or accepted, in MiB (1–4096; the
    /// coordinator's limit is set on its side).
    pub max_message_mib: usize,
    /// Stop (and return `Ok`) once the coordinator has offered no job for
    /// this long while none is in hand: one-shot workers of batch systems.
    pub exit_when_idle: Option<Duration>,
    /// Give up (and return [`WorkerError::Disconnected`]) once the
    /// coordinator has been unreachable this long; `None` waits forever.
    pub max_disconnect: Option<Duration>,
    /// For an `https://` coordinator: the CA certificate(s), PEM; the
    /// system's roots when `None`.
    pub ca_pem: Option<Vec<u8>>,
    /// Which chain runs the samples: the fast path (the default), or
    /// [`Mode::Verify`] to compare it with the reference chain on every
    /// sample and fail the job at the first difference.
    pub chain: Mode,
}

impl WorkerConfig {
    /// A configuration with the default message limit, quiet.
    pub fn new(coordinator: &str, token: &str, threads: usize, hostname: &str) -> WorkerConfig {
        WorkerConfig {
            coordinator: coordinator.to_owned(),
            token: token.to_owned(),
            threads,
            hostname: hostname.to_owned(),
            max_message_mib: DEFAULT_MAX_MESSAGE_MIB,
            exit_when_idle: None,
            max_disconnect: None,
            ca_pem: None,
            chain: Mode::default(),
        }
    }
}

/// Shows everything but the token, so a configuration can be logged.
impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("coordinator", &self.coordinator)
            .field("token", &"<redacted>")
            .field("threads", &self.threads)
            .field("hostname", &self.hostname)
            .field("max_message_mib", &self.max_message_mib)
            .field("chain", &self.chain)
            .field("exit_when_idle", &self.exit_when_idle)
            .field("max_disconnect", &self.max_disconnect)
            .finish()
    }
}

/// How long an idle worker lets the coordinator hold a lease call that
/// finds no work (the coordinator answers as soon as work appears).
const IDLE_LEASE_WAIT: Duration = Duration::from_secs(1);
/// While idle and the coordinator answers at once (it did not hold the
/// call), ask for work again after 200 ms, backing off to 1 s.
const IDLE_BACKOFF_FIRST: Duration = Duration::from_millis(200);
const IDLE_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// While the coordinator is unreachable or refuses leases.
const LEASE_BACKOFF_FIRST: Duration = Duration::from_millis(200);
const LEASE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a lease request already sent may take once shutdown is asked:
/// jobs granted meanwhile are still run, but a hung coordinator must not
/// hold the shutdown for the full request timeout.
const LEASE_GRACE_ON_SHUTDOWN: Duration = Duration::from_secs(5);

/// Run until `shutdown` resolves (then drain: stop leasing, finish the jobs
/// in hand and deliver their results, then return `Ok`) or an unrecoverable
/// error: a refused token, a refused registration, a bad configuration.
pub async fn run(config: WorkerConfig, shutdown: impl Future<Output = ()> + Send) -> Result<(), WorkerError> {
    if config.threads == 0 {
        return Err(WorkerError::Config("threads must be at least 1".to_owned()));
    }
    let log = Log;
    let client = rpc::connect(&config.coordinator, &config.token, config.max_message_mib, config.ca_pem.clone())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .thread_name(|i| format!("zonesweep-sample-{i}"))
        .build()
        .map_err(|e| WorkerError::ThreadPool(e.to_string()))?;
    let mut worker = Worker::new(client, log, pool, config.threads, config.hostname.clone(), config.chain);
    // Results sent together stay well within the message limit.
    worker.deliveries = deliver::Deliveries::new((config.max_message_mib << 20) / 2);
    let worker = Arc::new(worker);

    let mut shutdown = std::pin::pin!(shutdown);
    let watchdog = disconnect_watchdog(&worker, config.max_disconnect);
    let mut watchdog = std::pin::pin!(watchdog);
    tokio::select! {
        registered = worker.register() => registered?,
        () = &mut shutdown => return Ok(()),
        error = &mut watchdog => return Err(error),
    }
    let heartbeat = AbortOnDrop(tokio::spawn(session::heartbeat_loop(worker.clone())));
    let result = tokio::select! {
        result = lease_loop(&worker, shutdown, config.exit_when_idle) => result,
        error = &mut watchdog => Err(error),
    };
    drop(heartbeat);
    match &result {
        Ok(()) => log.notice(format_args!("stopped")),
        Err(error) => log.notice(format_args!("stopping: {error}")),
    }
    result
}

/// Resolves with [`WorkerError::Disconnected`] once the coordinator has been
/// unreachable for longer than `limit`; never without a limit.
async fn disconnect_watchdog(worker: &Worker, limit: Option<Duration>) -> WorkerError {
    let Some(limit) = limit else { return std::future::pending().await };
    let mut tick = tokio::time::interval(Duration::from_millis(250).min(limit));
    loop {
        tick.tick().await;
        let outage = worker.outage.duration();
        if outage > limit {
            return WorkerError::Disconnected { seconds: outage.as_secs_f64() };
        }
    }
}

/// Aborts the heartbeat task however `run` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Jobs whose samples ran in less than this leave their thread waiting
/// noticeably for the acknowledgement and the next lease, so a worker then
/// holds a spare job per thread; longer jobs do not need one, and a spare
/// job's time limit (the coordinator's `max_job_time`, counted from its
/// lease) would run while it waits.
const SPARE_JOB_BELOW: Duration = Duration::from_secs(10);

/// Jobs held at once: the threads, and a spare one per thread while jobs
/// are short (see [`SPARE_JOB_BELOW`]), so a thread that finishes a job
/// starts the next one at once instead of waiting for its result to be
/// acknowledged (a durable commit) and the next lease.
fn held_limit(worker: &Worker) -> usize {
    let last = worker.last_job_millis.load(std::sync::atomic::Ordering::Relaxed);
    if u128::from(last) < SPARE_JOB_BELOW.as_millis() { worker.threads.saturating_mul(2) } else { worker.threads }
}

type Jobs = JoinSet<Result<job::Granted, WorkerError>>;

/// Lease while there is room, until shutdown; then drain.
async fn lease_loop<S: Future<Output = ()>>(
    worker: &Arc<Worker>,
    mut shutdown: Pin<&mut S>,
    exit_when_idle: Option<Duration>,
) -> Result<(), WorkerError> {
    let log = worker.log;
    let mut jobs: Jobs = JoinSet::new();
    // Since when the coordinator has answered that it has no work while
    // this worker had none in hand.
    let mut idle_since: Option<std::time::Instant> = None;
    let mut sweeps_seen = std::collections::HashSet::new();
    let mut idle = Backoff::new(IDLE_BACKOFF_FIRST, IDLE_BACKOFF_MAX);
    let mut unreachable = Backoff::new(LEASE_BACKOFF_FIRST, LEASE_BACKOFF_MAX);
    'leasing: loop {
        while let Some(joined) = jobs.try_join_next() {
            reap(worker, &mut jobs, joined)?;
        }
        let held_limit = held_limit(worker);
        if jobs.len() >= held_limit {
            tokio::select! {
                () = &mut shutdown => break 'leasing,
                Some(joined) = jobs.join_next() => reap(worker, &mut jobs, joined)?,
            }
            continue;
        }

        let capacity = held_limit - jobs.len();
        let worker_id = worker.worker_id();
        // Numbered, so that heartbeats can tell the coordinator once it has
        // ended, answered or not (see `held`).
        let call = worker.held.call();
        // With no job in hand, the coordinator may hold the call until work
        // appears; with jobs in hand the answer comes at once, and more work
        // also comes with the results.
        let wait = if jobs.is_empty() { IDLE_LEASE_WAIT } else { Duration::ZERO };
        let request = pb::LeaseRequest {
            worker_id: worker_id.clone(),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            call: call.number(),
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        let mut client = worker.client();
        let asked = std::time::Instant::now();
        let lease = bounded(CONTROL_DEADLINE, client.lease(request));
        let mut lease = std::pin::pin!(lease);
        let mut stopping = false;
        let answer = tokio::select! {
            answer = &mut lease => answer,
            () = &mut shutdown => {
                stopping = true;
                match tokio::time::timeout(LEASE_GRACE_ON_SHUTDOWN, &mut lease).await {
                    Ok(answer) => answer,
                    Err(_) => break 'leasing,
                }
            }
        };

        let delay = match answer {
            Ok(response) => {
                worker.outage.recovered(log);
                unreachable.reset();
                let granted = response.into_inner().jobs;
                call.received(&granted);
                let n_granted = granted.len();
                if n_granted > 0 || !jobs.is_empty() {
                    idle_since = None;
                } else {
                    // Idle since this call was sent (it may have been held).
                    let since = *idle_since.get_or_insert(asked);
                    if exit_when_idle.is_some_and(|limit| since.elapsed() >= limit) {
                        log.notice(format_args!(
                            "no work offered for {:.0} s: exiting (--exit-when-idle)",
                            since.elapsed().as_secs_f64()
                        ));
                        break 'leasing;
                    }
                }
                for job in granted {
                    if sweeps_seen.len() < 4096 && sweeps_seen.insert(job.sweep_id.clone()) {
                        log.notice(format_args!("started on sweep {}", job.sweep_id));
                    }
                    start_job(worker, &mut jobs, job);
                }
                if n_granted >= capacity {
                    idle.reset();
                    if stopping {
                        break 'leasing;
                    }
                    continue;
                } else if n_granted > 0 {
                    // Fewer than asked: the coordinator has run dry for now.
                    idle.reset();
                    IDLE_BACKOFF_FIRST
                } else if !wait.is_zero() && asked.elapsed() >= wait / 2 {
                    // The coordinator held the call for work and none came:
                    // ask again at once, to be held again.
                    idle.reset();
                    Duration::ZERO
                } else {
                    idle.next_delay()
                }
            }
            Err(status) => match classify(&status) {
                Disposition::Retry => {
                    worker.outage.failed(log, "lease", &status);
                    unreachable.next_delay()
                }
                Disposition::Fatal => return Err(WorkerError::from_auth_status(&status)),
                Disposition::Refused if status.code() == Code::NotFound && !stopping => {
                    tokio::select! {
                        registered = worker.reregister(&worker_id) => registered?,
                        () = &mut shutdown => break 'leasing,
                    }
                    continue;
                }
                Disposition::Refused => {
                    log.info(format_args!("lease refused ({:?}): {}", status.code(), status.message()));
                    unreachable.next_delay()
                }
            },
        };
        if stopping {
            break 'leasing;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => break 'leasing,
        }
    }

    worker.start_draining();
    if !jobs.is_empty() {
        log.info(format_args!("shutting down: finishing {} job(s) in hand", jobs.len()));
    }
    while let Some(joined) = jobs.join_next().await {
        reap(worker, &mut jobs, joined)?;
    }
    Ok(())
}

/// A job task's end: its error stops the worker; a panic of the task (a bug
/// of this crate, not of the model, whose panics fail the job) is logged and
/// costs that job's lease time only (the jobs its deliveries leased are let
/// go as the task unwinds, see `job::Granted`).
/// The jobs leased with its result's delivery are run like any other.
fn reap(
    worker: &Arc<Worker>,
    jobs: &mut Jobs,
    joined: Result<Result<job::Granted, WorkerError>, JoinError>,
) -> Result<(), WorkerError> {
    match joined {
        Ok(result) => {
            for job in result?.take() {
                start_job(worker, jobs, job);
            }
            Ok(())
        }
        Err(error) => {
            worker.log.info(format_args!("a job task ended abnormally: {error}"));
            Ok(())
        }
    }
}

/// Run a leased job as a task of `jobs`.
fn start_job(worker: &Arc<Worker>, jobs: &mut Jobs, job: pb::Job) {
    worker.log.info(format_args!(
        "leased job {}#{} (lease {}): samples {}..{}",
        job.sweep_id, job.job_index, job.lease_id, job.sample_start, job.sample_end
    ));
    jobs.spawn(job::run_job(worker.clone(), job));
}
