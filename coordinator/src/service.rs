//! The coordinator's operations for clients and workers over the shared
//! [`State`]; durable changes go through the committer ([`crate::committer`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::Status;
use zonesweep_proto::convert::aggregate_to_pb;
use zonesweep_proto::ids::WorkerId;
use zonesweep_proto::pb;
use zonesweep_shared::aggregate::{Aggregate, Shape};
use zonesweep_shared::blob::DatasetBlob;
use zonesweep_shared::config::Config;
use zonesweep_shared::runner::SweepRunner;
use zonesweep_shared::sweep::SweepSpec;

use crate::committer::{Command, failure_summary};
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::state::{JobState, State, SweepRuntime};
use crate::store::{Store, SweepRecord, SweepState};

/// The largest number of jobs one sweep may have.
const MAX_JOBS: u64 = 10_000_000;
/// The most samples one sweep may have: far beyond any real sweep, and low
/// enough that no count of a merged aggregate can overflow.
const MAX_SAMPLES: u64 = 1_000_000_000_000;

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

pub(crate) async fn blocking<T: Send + 'static>(
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
                let aggregate = store.stored_aggregate(&record.id)?;
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

    pub(crate) fn store(&self) -> Arc<Store> {
        self.inner.store.clone()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; the state itself is
        // still consistent (every change is a single assignment), so carry on.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// End every open watch stream: the server is shutting down, and a
    /// graceful shutdown waits for open streams.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    pub(crate) fn changed(&self) {
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

    pub(crate) async fn send(&self, command: Command) -> Result<(), CoordinatorError> {
        self.inner.commands.send(command).await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))
    }
}

pub(crate) fn state_name(state: SweepState) -> &'static str {
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
