//! The coordinator: gRPC handlers for clients and workers over the shared
//! [`State`], and the committer task that makes every result durable in
//! group commits before it is acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use zonesweep_proto::convert::{aggregate_from_pb, aggregate_to_pb};
use zonesweep_proto::ids::{SweepId, WorkerId};
use zonesweep_proto::pb;
use zonesweep_shared::data::blob::DatasetBlob;
use zonesweep_shared::model::config::Config;
use zonesweep_shared::sweep::SweepSpec;
use zonesweep_shared::sweep::aggregate::{Aggregate, Shape};
use zonesweep_shared::sweep::runner::SweepRunner;

use crate::error::CoordinatorError;
use crate::state::{JobState, State, SweepRuntime};
use crate::store::{BatchEntry, Store, SweepRecord, SweepState};

/// Coordinator settings; [`CoordinatorConfig::validate`] checks that they
/// make sense together.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub db: PathBuf,
    pub token: String,
    /// Samples per job when a submission does not say.
    pub default_job_size: u64,
    pub heartbeat_interval: Duration,
    /// A lease without a heartbeat for this long expires.
    pub lease_timeout: Duration,
    /// A job that fails or expires this many times fails its sweep.
    pub max_attempts: u32,
    /// The longest a job may stay leased, heartbeats or not: a worker whose
    /// samples hang loses the job after this and it runs elsewhere.
    pub max_job_time: Duration,
    /// The largest message accepted or sent.
    pub max_message_bytes: usize,
    /// The most completions one durable commit takes.
    pub max_batch: usize,
}

impl CoordinatorConfig {
    pub fn new(db: PathBuf, token: String) -> CoordinatorConfig {
        CoordinatorConfig {
            db,
            token,
            default_job_size: 100,
            heartbeat_interval: Duration::from_secs(2),
            lease_timeout: Duration::from_secs(20),
            max_attempts: 5,
            max_job_time: Duration::from_secs(3600),
            max_message_bytes: 256 * 1024 * 1024,
            max_batch: 1024,
        }
    }

    pub fn validate(&self) -> Result<(), CoordinatorError> {
        let bad = |m: &str| Err(CoordinatorError::Config(m.to_owned()));
        if self.token.is_empty() {
            return bad("the access token is empty");
        }
        if self.default_job_size == 0 {
            return bad("the default job size must be at least 1");
        }
        if self.lease_timeout < self.heartbeat_interval * 3 {
            return bad(
                "the lease timeout must be at least three heartbeat intervals, or live workers lose their leases",
            );
        }
        if self.max_job_time < self.lease_timeout {
            return bad("the maximum job time must be at least the lease timeout");
        }
        if self.max_attempts == 0 || self.max_batch == 0 {
            return bad("max attempts and max batch must be at least 1");
        }
        Ok(())
    }
}

/// The largest number of jobs one sweep may have.
const MAX_JOBS: u64 = 10_000_000;
/// The most samples one sweep may have: far beyond any real sweep, and low
/// enough that no count of a merged aggregate can overflow.
const MAX_SAMPLES: u64 = 1_000_000_000_000;

/// A durable change the committer applies, in order.
enum Command {
    Complete {
        sweep_id: String,
        job_index: u32,
        aggregate: Box<Aggregate>,
        reply: oneshot::Sender<Result<bool, CoordinatorError>>,
    },
    Stop {
        sweep_id: String,
        state: SweepState,
        reason: String,
        reply: Option<oneshot::Sender<Result<(), CoordinatorError>>>,
    },
}

struct Inner {
    store: Arc<Store>,
    state: Mutex<State>,
    config: CoordinatorConfig,
    commands: mpsc::Sender<Command>,
    /// Bumped after every change a watcher could see.
    changes: watch::Sender<u64>,
    /// Set when the server shuts down, so open watch streams end.
    stopping: watch::Sender<bool>,
    /// Serializes submissions (sequence numbers).
    submissions: tokio::sync::Mutex<()>,
    next_worker: AtomicU64,
}

/// The coordinator service; cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CoordinatorError> + Send + 'static,
) -> Result<T, CoordinatorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoordinatorError::Internal(format!("a storage task panicked: {e}")))?
}

impl Coordinator {
    /// Open the database, recover every sweep (leased jobs become pending)
    /// and start the committer and the lease-expiry tasks.
    pub async fn start(config: CoordinatorConfig) -> Result<Coordinator, CoordinatorError> {
        config.validate()?;
        let path = config.db.clone();
        let (store, sweeps) = blocking(move || {
            let store = Store::open(&path)?;
            let mut sweeps = Vec::new();
            for record in store.sweeps()? {
                let aggregate = store.aggregate(&record.id)?.ok_or_else(|| {
                    CoordinatorError::Internal(format!("sweep {} has no stored aggregate", record.id))
                })?;
                let done = store.done_jobs(&record.id)?;
                sweeps.push(SweepRuntime::new(record, aggregate, &done));
            }
            Ok((store, sweeps))
        })
        .await?;
        // Lease ids must never repeat across restarts, or a stale completion
        // could be taken for a current one: start from the clock.
        let first_lease = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let mut state = State::new(first_lease);
        for sweep in sweeps {
            state.insert(sweep);
        }
        let (commands, receiver) = mpsc::channel(4096);
        let (changes, _) = watch::channel(0);
        let (stopping, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            store: Arc::new(store),
            state: Mutex::new(state),
            config,
            commands,
            changes,
            stopping,
            submissions: tokio::sync::Mutex::new(()),
            next_worker: AtomicU64::new(first_lease),
        });
        let coordinator = Coordinator { inner };
        tokio::spawn(coordinator.clone().committer(receiver));
        tokio::spawn(coordinator.clone().expiry());
        Ok(coordinator)
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; the state itself is
        // still consistent (every change is a single assignment), so carry on.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// End every open watch stream: the server is shutting down, and a
    /// graceful shutdown waits for open streams.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    fn changed(&self) {
        self.inner.changes.send_modify(|v| *v += 1);
    }

    /// The status of a sweep.
    pub fn status(&self, id: &str) -> Result<pb::SweepStatus, CoordinatorError> {
        let state = self.state();
        let sweep = state.sweeps.get(id).ok_or_else(|| CoordinatorError::NotFound(format!("sweep {id}")))?;
        Ok(status_of(sweep))
    }

    // ------------------------------------------------------------ clients

    pub async fn submit(&self, request: pb::SubmitRequest) -> Result<pb::SweepStatus, CoordinatorError> {
        let blob = DatasetBlob {
            units_csv: request.units_csv,
            panel_csv: request.panel_csv,
            units_geojson: (!request.units_geojson.is_empty()).then_some(request.units_geojson),
        };
        let dataset = blob.parse().map_err(|e| CoordinatorError::InvalidArgument(e.to_string()))?;
        let config = Config::from_toml_overrides(&request.config_toml, "the configuration")
            .map_err(|e| CoordinatorError::InvalidArgument(e.to_string()))?;
        let mut spec = if request.spec_toml.trim().is_empty() {
            SweepSpec::default()
        } else {
            SweepSpec::from_toml(&request.spec_toml, "the sweep spec")
                .map_err(|e| CoordinatorError::InvalidArgument(e.to_string()))?
        };
        if request.samples > 0 {
            spec.samples = request.samples;
        }
        if request.has_seed {
            spec.seed = request.seed;
        }
        let runner =
            SweepRunner::new(&dataset, &config, &spec).map_err(|e| CoordinatorError::InvalidArgument(e.to_string()))?;
        if spec.samples > MAX_SAMPLES {
            return Err(CoordinatorError::InvalidArgument(format!(
                "{} samples is more than the {MAX_SAMPLES} a sweep may have",
                spec.samples
            )));
        }
        let job_size = if request.job_size == 0 { self.inner.config.default_job_size } else { request.job_size };
        let jobs = spec.samples.div_ceil(job_size);
        if jobs > MAX_JOBS {
            return Err(CoordinatorError::InvalidArgument(format!(
                "{} samples in jobs of {job_size} make {jobs} jobs; at most {MAX_JOBS} are allowed (use a larger job size)",
                spec.samples
            )));
        }
        let shape: Shape = runner.shape();
        let dataset_bytes = blob.to_bytes();
        let config_bytes = request.config_toml.into_bytes();
        let spec_bytes = spec.to_toml().into_bytes();
        let (dataset_hash, config_hash, spec_hash) = (hash(&dataset_bytes), hash(&config_bytes), hash(&spec_bytes));
        let id_seed = format!("{dataset_hash}{spec_hash}{:?}{}", SystemTime::now(), rand_suffix());
        let id = format!("sw-{}", &hash(id_seed.as_bytes())[..16]);
        let store = self.inner.store.clone();
        let mut record = SweepRecord {
            id,
            sequence: 0,
            dataset_hash,
            config_hash,
            spec_hash,
            samples: spec.samples,
            seed: spec.seed,
            job_size,
            jobs: jobs as u32,
            state: SweepState::Running,
            reason: String::new(),
            unit_ids: dataset.units().iter().map(|u| u.id.clone()).collect(),
            unit_names: dataset.units().iter().map(|u| u.name.clone()).collect(),
        };
        let empty = Aggregate::empty(shape);
        // Stored and made known in a task of its own: if the client goes
        // away mid-way, the handler is dropped but this still finishes, so
        // no sweep is stored without the coordinator knowing it.
        let coordinator = self.clone();
        let task = tokio::spawn(async move {
            // One submission at a time, so sequence numbers are unique.
            let _turn = coordinator.inner.submissions.lock().await;
            let (record, empty) = blocking(move || {
                record.sequence = store.next_sequence()?;
                let blobs = [
                    (record.dataset_hash.as_str(), dataset_bytes.as_slice()),
                    (record.config_hash.as_str(), config_bytes.as_slice()),
                    (record.spec_hash.as_str(), spec_bytes.as_slice()),
                ];
                store.create_sweep(&record, &blobs, &empty)?;
                Ok((record, empty))
            })
            .await?;
            let runtime = SweepRuntime::new(record, empty, &[]);
            let status = status_of(&runtime);
            coordinator.state().insert(runtime);
            coordinator.changed();
            Ok(status)
        });
        task.await.map_err(|e| CoordinatorError::Internal(format!("the submission task failed: {e}")))?
    }

    pub async fn cancel(&self, id: &str) -> Result<pb::SweepStatus, CoordinatorError> {
        {
            let state = self.state();
            let sweep = state.sweeps.get(id).ok_or_else(|| CoordinatorError::NotFound(format!("sweep {id}")))?;
            if !sweep.is_running() {
                return Ok(status_of(sweep));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.send(Command::Stop {
            sweep_id: id.to_owned(),
            state: SweepState::Cancelled,
            reason: "cancelled by request".to_owned(),
            reply: Some(reply),
        })
        .await?;
        answer.await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))??;
        self.status(id)
    }

    pub fn list(&self) -> Vec<pb::SweepStatus> {
        let state = self.state();
        state.order.iter().map(|id| status_of(&state.sweeps[id])).collect()
    }

    pub fn query(&self, id: &str) -> Result<pb::QueryResponse, CoordinatorError> {
        let state = self.state();
        let sweep = state.sweeps.get(id).ok_or_else(|| CoordinatorError::NotFound(format!("sweep {id}")))?;
        Ok(pb::QueryResponse {
            status: Some(status_of(sweep)),
            unit_ids: sweep.record.unit_ids.clone(),
            unit_names: sweep.record.unit_names.clone(),
            aggregate: Some(aggregate_to_pb(&sweep.aggregate)),
        })
    }

    /// A stream of a sweep's status: now, after every change, and a last
    /// one when it is final.
    pub fn watch(&self, id: &str) -> Result<mpsc::Receiver<Result<pb::SweepStatus, Status>>, CoordinatorError> {
        self.status(id)?;
        let (sender, receiver) = mpsc::channel(16);
        let coordinator = self.clone();
        let id = id.to_owned();
        let mut changes = self.inner.changes.subscribe();
        let mut stopping = self.inner.stopping.subscribe();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let status = match coordinator.status(&id) {
                    Ok(status) => status,
                    Err(e) => {
                        let _ = sender.send(Err(e.into())).await;
                        return;
                    }
                };
                let final_state = status.state != pb::SweepState::Running as i32;
                if last.as_ref() != Some(&status) {
                    if sender.send(Ok(status.clone())).await.is_err() {
                        return;
                    }
                    last = Some(status);
                }
                if final_state {
                    return;
                }
                // Wake on a change, at least once a second; end when the
                // client has gone or the server is shutting down.
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()) => {}
                    _ = sender.closed() => return,
                    _ = async { stopping.wait_for(|s| *s).await.is_ok() } => {
                        let _ = sender.send(Err(Status::unavailable("the coordinator is shutting down"))).await;
                        return;
                    }
                }
            }
        });
        Ok(receiver)
    }

    // ------------------------------------------------------------ workers

    pub fn register(&self, hostname: &str, threads: u32) -> pb::RegisterResponse {
        let n = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
        let host: String = hostname.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect();
        let _ = threads;
        pb::RegisterResponse {
            worker_id: format!("wk-{}-{n:x}", if host.is_empty() { "anon" } else { &host }),
            heartbeat_millis: self.inner.config.heartbeat_interval.as_millis() as u32,
            lease_millis: self.inner.config.lease_timeout.as_millis() as u32,
        }
    }

    pub fn lease(&self, worker: &WorkerId, capacity: u32) -> Vec<pb::Job> {
        let now = Instant::now();
        let deadline = now + self.inner.config.lease_timeout;
        let until = now + self.inner.config.max_job_time;
        let capacity = capacity.min(1024) as usize;
        let mut state = self.state();
        let leased = state.lease(worker.as_str(), capacity, deadline, until);
        let jobs = leased
            .into_iter()
            .map(|job| {
                let record = &state.sweeps[&job.sweep_id].record;
                pb::Job {
                    sweep_id: job.sweep_id.clone(),
                    job_index: job.job_index,
                    lease_id: job.lease,
                    sample_start: job.samples.start,
                    sample_end: job.samples.end,
                    dataset_hash: record.dataset_hash.clone(),
                    config_hash: record.config_hash.clone(),
                    spec_hash: record.spec_hash.clone(),
                    samples: record.samples,
                    seed: record.seed,
                }
            })
            .collect::<Vec<_>>();
        drop(state);
        if !jobs.is_empty() {
            self.changed();
        }
        jobs
    }

    pub fn heartbeat(&self, worker: &WorkerId, leases: Vec<pb::LeaseRef>) -> Vec<pb::LeaseRef> {
        let now = Instant::now();
        let deadline = now + self.inner.config.lease_timeout;
        let until = now + self.inner.config.max_job_time;
        let held: Vec<(String, u32, u64)> = leases.into_iter().map(|l| (l.sweep_id, l.job_index, l.lease_id)).collect();
        let abandon = self.state().heartbeat(worker.as_str(), &held, deadline, until);
        abandon
            .into_iter()
            .map(|(sweep_id, job_index, lease_id)| pb::LeaseRef { sweep_id, job_index, lease_id })
            .collect()
    }

    /// Merge a job's result exactly once: `Ok(false)` when it was merged before.
    pub async fn complete(&self, lease: &pb::LeaseRef, aggregate: Aggregate) -> Result<bool, CoordinatorError> {
        {
            let state = self.state();
            let sweep = state
                .sweeps
                .get(&lease.sweep_id)
                .ok_or_else(|| CoordinatorError::NotFound(format!("sweep {}", lease.sweep_id)))?;
            let Some(job) = sweep.jobs.get(lease.job_index as usize) else {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "sweep {} has {} jobs; there is no job {}",
                    lease.sweep_id, sweep.record.jobs, lease.job_index
                )));
            };
            let already_done = *job == JobState::Done;
            if !already_done && !sweep.is_running() {
                return Err(CoordinatorError::FailedPrecondition(format!(
                    "sweep {} is {}; its results are no longer taken",
                    lease.sweep_id,
                    state_name(sweep.record.state)
                )));
            }
            aggregate
                .check_consistency()
                .map_err(|e| CoordinatorError::InvalidArgument(format!("the result is inconsistent: {e}")))?;
            if aggregate.shape != sweep.aggregate.shape {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "the result's shape {:?} does not fit sweep {} ({:?})",
                    aggregate.shape, lease.sweep_id, sweep.aggregate.shape
                )));
            }
            let range = sweep.job_range(lease.job_index);
            let expected = range.end - range.start;
            if aggregate.samples_total() != expected {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "job {} covers samples {}..{} ({expected}), but the result counts {}",
                    lease.job_index,
                    range.start,
                    range.end,
                    aggregate.samples_total()
                )));
            }
            let outside = aggregate.failures.values().flat_map(|f| f.samples.iter()).find(|s| !range.contains(s));
            if let Some(sample) = outside {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "the result reports sample {sample}, outside job {}'s samples {}..{}",
                    lease.job_index, range.start, range.end
                )));
            }
            // Checked after the fit, so a broken worker is told even when
            // another worker already delivered this job.
            if already_done {
                return Ok(false);
            }
        }
        let (reply, answer) = oneshot::channel();
        self.send(Command::Complete {
            sweep_id: lease.sweep_id.clone(),
            job_index: lease.job_index,
            aggregate: Box::new(aggregate),
            reply,
        })
        .await?;
        answer.await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))?
    }

    pub async fn fail(&self, lease: &pb::LeaseRef, reason: &str) -> Result<(), CoordinatorError> {
        let reason: String = reason.chars().take(2000).collect();
        let failed = self.state().fail_job(
            &lease.sweep_id,
            lease.job_index,
            lease.lease_id,
            &reason,
            self.inner.config.max_attempts,
        );
        if let Some(reason) = failed {
            self.send(Command::Stop {
                sweep_id: lease.sweep_id.clone(),
                state: SweepState::Failed,
                reason,
                reply: None,
            })
            .await?;
        }
        self.changed();
        Ok(())
    }

    pub async fn fetch_blob(&self, hash: &str) -> Result<Vec<u8>, CoordinatorError> {
        let store = self.inner.store.clone();
        let key = hash.to_owned();
        blocking(move || store.blob(&key)?.ok_or_else(|| CoordinatorError::NotFound(format!("blob {key}")))).await
    }

    async fn send(&self, command: Command) -> Result<(), CoordinatorError> {
        self.inner.commands.send(command).await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))
    }

    // ------------------------------------------------------------ tasks

    /// Expire leases whose heartbeats stopped.
    async fn expiry(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let failed = self.state().expire(Instant::now(), self.inner.config.max_attempts);
            for (sweep_id, reason) in failed {
                let _ = self.send(Command::Stop { sweep_id, state: SweepState::Failed, reason, reply: None }).await;
            }
        }
    }

    /// The single writer: takes every queued command, applies them to copies
    /// of the affected sweeps, commits them in one durable transaction and
    /// only then publishes them and answers the callers.
    async fn committer(self, mut receiver: mpsc::Receiver<Command>) {
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.inner.config.max_batch {
                match receiver.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.commit(batch).await;
        }
    }

    async fn commit(&self, batch: Vec<Command>) {
        // Work on copies of the durable parts (record, aggregate) of the
        // sweeps the batch touches; the shared state changes only after the
        // commit. Job tables are not copied: they can be large.
        let mut touched: BTreeMap<String, Pending> = BTreeMap::new();
        let mut replies_merged = Vec::new();
        let mut replies_stop = Vec::new();
        {
            let state = self.state();
            for command in batch {
                match command {
                    Command::Complete { sweep_id, job_index, aggregate, reply } => {
                        let Some(original) = state.sweeps.get(&sweep_id) else {
                            let _ = reply.send(Err(CoordinatorError::NotFound(format!("sweep {sweep_id}"))));
                            continue;
                        };
                        let sweep = touched.entry(sweep_id.clone()).or_insert_with(|| Pending::of(original));
                        let already = original.jobs[job_index as usize] == JobState::Done;
                        if already || sweep.newly_done.contains(&job_index) {
                            replies_merged.push((reply, Ok(false)));
                            continue;
                        }
                        if sweep.record.state != SweepState::Running {
                            let message = format!("sweep {sweep_id} is {}", state_name(sweep.record.state));
                            replies_merged.push((reply, Err(CoordinatorError::FailedPrecondition(message))));
                            continue;
                        }
                        if let Err(e) = sweep.aggregate.merge(&aggregate) {
                            replies_merged.push((reply, Err(CoordinatorError::InvalidArgument(e.to_string()))));
                            continue;
                        }
                        sweep.newly_done.insert(job_index);
                        replies_merged.push((reply, Ok(true)));
                        if original.jobs_done() + sweep.newly_done.len() as u32 == sweep.record.jobs {
                            finish(&mut sweep.record, &sweep.aggregate);
                        }
                    }
                    Command::Stop { sweep_id, state: stop_state, reason, reply } => {
                        let Some(original) = state.sweeps.get(&sweep_id) else {
                            if let Some(reply) = reply {
                                let _ = reply.send(Err(CoordinatorError::NotFound(format!("sweep {sweep_id}"))));
                            }
                            continue;
                        };
                        let sweep = touched.entry(sweep_id.clone()).or_insert_with(|| Pending::of(original));
                        if sweep.record.state == SweepState::Running {
                            sweep.record.state = stop_state;
                            sweep.record.reason = reason.clone();
                        }
                        replies_stop.push(((sweep_id, stop_state, reason), reply));
                    }
                }
            }
        }
        // The entries own the copies; the store hands them back for publishing.
        let entries: Vec<BatchEntry> = touched
            .into_values()
            .map(|sweep| BatchEntry {
                record: sweep.record,
                aggregate: sweep.aggregate,
                newly_done: sweep.newly_done.into_iter().collect(),
            })
            .collect();
        let store = self.inner.store.clone();
        let committed = blocking(move || {
            store.commit_batch(&entries)?;
            Ok(entries)
        })
        .await;
        match committed {
            Ok(entries) => {
                {
                    let mut state = self.state();
                    for updated in entries {
                        let Some(current) = state.sweeps.get_mut(&updated.record.id) else { continue };
                        for &j in &updated.newly_done {
                            current.mark_done(j);
                        }
                        if current.record.state == SweepState::Running && updated.record.state != SweepState::Running {
                            current.stop(updated.record.state, updated.record.reason.clone());
                        }
                        current.record = updated.record;
                        current.aggregate = updated.aggregate;
                    }
                }
                self.changed();
                for (reply, result) in replies_merged {
                    let _ = reply.send(result);
                }
                for (_, reply) in replies_stop {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
            Err(e) => {
                // Storage trouble may pass: answer "unavailable" so workers
                // keep their results and retry, and try internal stops again.
                let message = e.to_string();
                let unavailable = || CoordinatorError::Unavailable(format!("not stored, retry: {message}"));
                for (reply, _) in replies_merged {
                    let _ = reply.send(Err(unavailable()));
                }
                for (stop, reply) in replies_stop {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(Err(unavailable()));
                        }
                        None => {
                            let coordinator = self.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                let (sweep_id, state, reason) = stop;
                                let _ = coordinator.send(Command::Stop { sweep_id, state, reason, reply: None }).await;
                            });
                        }
                    }
                }
            }
        }
    }
}

/// A sweep's durable parts as a batch will leave them.
struct Pending {
    record: SweepRecord,
    aggregate: Aggregate,
    newly_done: BTreeSet<u32>,
}

impl Pending {
    fn of(sweep: &SweepRuntime) -> Pending {
        Pending { record: sweep.record.clone(), aggregate: sweep.aggregate.clone(), newly_done: BTreeSet::new() }
    }
}

/// Every job is done: the sweep is done, or failed if no sample succeeded.
fn finish(record: &mut SweepRecord, aggregate: &Aggregate) {
    if record.state != SweepState::Running {
        return;
    }
    let failed = aggregate.samples_failed();
    if aggregate.samples_ok == 0 && failed > 0 {
        let example = aggregate.failures.values().next().map(|f| f.example.clone()).unwrap_or_default();
        record.state = SweepState::Failed;
        record.reason = format!("every sample failed; for example {example}");
    } else {
        record.state = SweepState::Done;
        record.reason = failure_summary(aggregate);
    }
}

/// "N samples failed: kind (count), …" or empty.
fn failure_summary(aggregate: &Aggregate) -> String {
    if aggregate.failures.is_empty() {
        return String::new();
    }
    let kinds: Vec<String> = aggregate.failures.iter().map(|(k, f)| format!("{k} ({})", f.count)).collect();
    format!("{} sample(s) failed: {}", aggregate.samples_failed(), kinds.join(", "))
}

fn state_name(state: SweepState) -> &'static str {
    match state {
        SweepState::Running => "running",
        SweepState::Done => "done",
        SweepState::Failed => "failed",
        SweepState::Cancelled => "cancelled",
    }
}

fn status_of(sweep: &SweepRuntime) -> pb::SweepStatus {
    status_from(&sweep.record, &sweep.aggregate, sweep.jobs_done(), sweep.jobs_leased())
}

/// The wire status of a sweep record and its merged aggregate.
pub(crate) fn status_from(
    record: &SweepRecord,
    aggregate: &Aggregate,
    jobs_done: u32,
    jobs_leased: u32,
) -> pb::SweepStatus {
    let state = match record.state {
        SweepState::Running => pb::SweepState::Running,
        SweepState::Done => pb::SweepState::Done,
        SweepState::Failed => pb::SweepState::Failed,
        SweepState::Cancelled => pb::SweepState::Cancelled,
    };
    let reason = if record.reason.is_empty() { failure_summary(aggregate) } else { record.reason.clone() };
    pb::SweepStatus {
        sweep_id: record.id.clone(),
        state: state as i32,
        samples: record.samples,
        samples_done: aggregate.samples_total(),
        samples_failed: aggregate.samples_failed(),
        jobs: record.jobs,
        jobs_done,
        jobs_leased,
        reason,
        seed: record.seed,
        dataset_hash: record.dataset_hash.clone(),
        config_hash: record.config_hash.clone(),
        spec_hash: record.spec_hash.clone(),
        units: record.unit_ids.len() as u32,
        sequence: record.sequence,
    }
}

fn rand_suffix() -> u64 {
    rand::random()
}

// ---------------------------------------------------------------- gRPC

fn sweep_id(text: &str) -> Result<SweepId, Status> {
    Ok(SweepId::parse(text)?)
}

type StatusStream = Pin<Box<dyn Stream<Item = Result<pb::SweepStatus, Status>> + Send>>;

#[tonic::async_trait]
impl pb::sweeps_server::Sweeps for Coordinator {
    async fn submit(&self, request: Request<pb::SubmitRequest>) -> Result<Response<pb::SweepStatus>, Status> {
        Ok(Response::new(Coordinator::submit(self, request.into_inner()).await?))
    }

    async fn get(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(self.status(id.as_str())?))
    }

    type WatchStream = StatusStream;

    async fn watch(&self, request: Request<pb::SweepRef>) -> Result<Response<StatusStream>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        let receiver = Coordinator::watch(self, id.as_str())?;
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn cancel(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(Coordinator::cancel(self, id.as_str()).await?))
    }

    async fn list(&self, _request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        Ok(Response::new(pb::ListResponse { sweeps: Coordinator::list(self) }))
    }

    async fn query(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::QueryResponse>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(Coordinator::query(self, id.as_str())?))
    }
}

fn lease_ref(lease: Option<pb::LeaseRef>) -> Result<pb::LeaseRef, Status> {
    let lease = lease.ok_or_else(|| Status::invalid_argument("the request names no lease"))?;
    sweep_id(&lease.sweep_id)?;
    Ok(lease)
}

#[tonic::async_trait]
impl pb::workers_server::Workers for Coordinator {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(Coordinator::register(self, &request.hostname, request.threads)))
    }

    async fn lease(&self, request: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        Ok(Response::new(pb::LeaseResponse { jobs: Coordinator::lease(self, &worker, request.capacity) }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        Ok(Response::new(pb::HeartbeatResponse { abandon: Coordinator::heartbeat(self, &worker, request.leases) }))
    }

    async fn complete(&self, request: Request<pb::CompleteRequest>) -> Result<Response<pb::CompleteResponse>, Status> {
        let request = request.into_inner();
        WorkerId::parse(&request.worker_id)?;
        let lease = lease_ref(request.lease)?;
        let wire = request.aggregate.ok_or_else(|| Status::invalid_argument("the completion carries no aggregate"))?;
        let aggregate = aggregate_from_pb(&wire)?;
        let merged = Coordinator::complete(self, &lease, aggregate).await?;
        Ok(Response::new(pb::CompleteResponse { merged }))
    }

    async fn fail(&self, request: Request<pb::FailRequest>) -> Result<Response<pb::FailResponse>, Status> {
        let request = request.into_inner();
        WorkerId::parse(&request.worker_id)?;
        let lease = lease_ref(request.lease)?;
        Coordinator::fail(self, &lease, &request.reason).await?;
        Ok(Response::new(pb::FailResponse {}))
    }

    async fn fetch_blob(
        &self,
        request: Request<pb::FetchBlobRequest>,
    ) -> Result<Response<pb::FetchBlobResponse>, Status> {
        let hash = zonesweep_proto::ids::ContentHash::parse(&request.get_ref().hash)?;
        let content = Coordinator::fetch_blob(self, hash.as_str()).await?;
        Ok(Response::new(pb::FetchBlobResponse { content }))
    }
}
