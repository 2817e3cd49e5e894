//! The coordinator's operations for clients and workers, in domain types:
//! reads answer from the in-memory [`State`]; every durable change goes
//! through the committer ([`crate::committer`]) and is answered only once
//! it is stored. The wire side is `grpc.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use zonesweep_proto::ids::{ContentHash, LeaseRef, SweepId, WorkerId};
use zonesweep_proto::status::{SweepResults, SweepState, SweepStatus};
use zonesweep_shared::sweep::aggregate::{Aggregate, Shape};
use zonesweep_shared::sweep::sparse::SparseAggregate;
use zonesweep_shared::sweep::{Design, SweepSpec};

use crate::committer::{Answer, Change, Command, Fit, check_consistent, check_fit};
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::health::{Loaded, load_sweeps};
use crate::state::{LeasedJob, Refusal, State, SweepRuntime, WorkerInfo};
use crate::store::Store;
use crate::submission::{Admission, Prepared, Submission, prepare};

/// What a worker learns when it registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub worker_id: WorkerId,
    pub heartbeat_interval: Duration,
    /// A lease without a heartbeat for this long expires.
    pub lease_timeout: Duration,
}

struct Inner {
    store: Arc<Store>,
    /// Sweeps whose stored data could not be read at start: id → reason.
    quarantined: BTreeMap<SweepId, String>,
    state: Mutex<State>,
    config: CoordinatorConfig,
    commands: mpsc::Sender<Command>,
    /// Bumped after every change a watcher could see.
    changes: watch::Sender<u64>,
    /// Set when the server shuts down, so open watch streams end.
    stopping: watch::Sender<bool>,
    /// Serializes submissions (sequence numbers).
    submissions: tokio::sync::Mutex<()>,
    /// Bounds the submissions being parsed and planned, and their bytes.
    admission: Admission,
    next_worker: AtomicU64,
}

/// A result queued for the committer ([`Coordinator::queue_result`]);
/// [`QueuedResult::answer`] waits until it is stored or refused.
#[derive(Debug)]
pub struct QueuedResult {
    /// `None`: merged before, nothing queued.
    answer: Option<oneshot::Receiver<Answer>>,
    worker: WorkerId,
    samples: u64,
}

impl QueuedResult {
    /// Whether the result was merged now (`false`: merged before); an
    /// error when it was refused or could not be stored.
    pub async fn answer(self, coordinator: &Coordinator) -> Result<bool, CoordinatorError> {
        let Some(answer) = self.answer else { return Ok(false) };
        let merged = answer.await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))??;
        if merged {
            coordinator.state().delivered(&self.worker, self.samples);
        }
        Ok(merged)
    }
}

/// The longest a lease call that finds no work is held
/// ([`Coordinator::lease_or_wait`]).
pub const MAX_LEASE_WAIT: Duration = Duration::from_secs(2);
/// The least time between two attempts of one waiting lease call.
const LEASE_RETRY_SPACING: Duration = Duration::from_millis(50);

/// The coordinator service; cheap to clone.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

fn not_found(id: &SweepId) -> CoordinatorError {
    CoordinatorError::NotFound(format!("sweep {id}"))
}

impl From<Refusal> for CoordinatorError {
    fn from(refusal: Refusal) -> CoordinatorError {
        match refusal {
            // NOT_FOUND tells the worker to register again.
            Refusal::UnknownWorker(id) => CoordinatorError::NotFound(format!(
                "worker {id} (not registered with this coordinator, which may have restarted; register again)"
            )),
            Refusal::UnknownSweep(id) => not_found(&id),
            Refusal::NotHolder(why) => CoordinatorError::FailedPrecondition(why),
        }
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CoordinatorError> + Send + 'static,
) -> Result<T, CoordinatorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoordinatorError::Internal(format!("a blocking task panicked: {e}")))?
}

impl Coordinator {
    /// Open the database, recover every sweep (leased jobs become pending;
    /// one whose stored data cannot be read is quarantined) and start the
    /// committer, the lease-expiry and the store-health tasks.
    pub async fn start(config: CoordinatorConfig) -> Result<Coordinator, CoordinatorError> {
        config.validate()?;
        let path = config.db.clone();
        let (store, Loaded { sweeps, quarantined }) = blocking(move || {
            let store = Store::open(&path)?;
            let loaded = load_sweeps(&store)?;
            Ok((store, loaded))
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
        // A submission of one whole message is always admitted when alone.
        let budget = config.preparation_budget_bytes.max(config.max_message_bytes as u64);
        let admission = Admission::new(config.preparing_at_once, budget);
        let inner = Arc::new(Inner {
            store: Arc::new(store),
            quarantined,
            state: Mutex::new(state),
            config,
            commands,
            changes,
            stopping,
            submissions: tokio::sync::Mutex::new(()),
            admission,
            next_worker: AtomicU64::new(first_lease),
        });
        let coordinator = Coordinator { inner };
        tokio::spawn(coordinator.clone().committer(receiver));
        tokio::spawn(coordinator.clone().expiry());
        tokio::spawn(coordinator.clone().store_health());
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

    /// Turns true when the server begins to shut down: a stream a handler
    /// keeps open ends then, as a graceful shutdown waits for open streams.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    pub(crate) fn changed(&self) {
        self.inner.changes.send_modify(|v| *v += 1);
    }

    /// Queue a command for the committer.
    pub(crate) async fn send(&self, command: Command) -> Result<(), CoordinatorError> {
        self.inner.commands.send(command).await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))
    }

    /// Queue a change and wait for the committer's answer.
    async fn ask(&self, change: Change) -> Result<bool, CoordinatorError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command { change, reply: Some(reply) }).await?;
        answer.await.map_err(|_| CoordinatorError::Internal("the committer stopped".into()))?
    }

    // ------------------------------------------------------------ clients

    /// The status of a sweep.
    pub fn status(&self, id: &SweepId) -> Result<SweepStatus, CoordinatorError> {
        let status = self.state().sweep(id).map(SweepRuntime::status).ok_or_else(|| not_found(id))?;
        Ok(self.with_store_health(status))
    }

    /// Check, plan and store a new sweep. Parsing and hashing run on a
    /// blocking thread, a few submissions at a time within a byte budget
    /// ([`Admission`]; beyond it RESOURCE_EXHAUSTED); the whole submission
    /// runs in a task of its own, so a client that goes away mid-way cannot
    /// leave a sweep stored but unknown to the running coordinator.
    pub async fn submit(&self, submission: Submission) -> Result<SweepStatus, CoordinatorError> {
        let coordinator = self.clone();
        if let Some(request_id) = &submission.request_id {
            crate::submission::check_request_id(request_id)?;
        }
        let task = tokio::spawn(async move {
            if let Some(status) = coordinator.resubmitted(submission.request_id.as_deref()) {
                return Ok(status);
            }
            let sizing = coordinator.config().job_sizing;
            let _reserved = coordinator.inner.admission.reserve(submission.bytes())?;
            let turn = coordinator.inner.admission.turn().await?;
            let Prepared { mut record, empty, blobs } = blocking(move || prepare(submission, sizing)).await?;
            drop(turn);
            let store = coordinator.store();
            // One submission at a time, so sequence numbers are unique (and
            // a request id names one sweep).
            let _turn = coordinator.inner.submissions.lock().await;
            if let Some(status) = coordinator.resubmitted(record.request_id.as_deref()) {
                return Ok(status);
            }
            let (record, empty) = blocking(move || {
                record.sequence = store.next_sequence()?;
                let blobs: Vec<(&str, &[u8])> =
                    blobs.iter().map(|(hash, bytes)| (hash.as_str(), bytes.as_slice())).collect();
                store.create_sweep(&record, &blobs, &empty)?;
                Ok((record, empty))
            })
            .await?;
            let job_size = record.job_size;
            let runtime = SweepRuntime::new(record, empty, &[]);
            let status = runtime.status();
            tracing::info!(
                sweep = %status.id,
                samples = status.samples,
                jobs = status.jobs,
                job_size,
                "sweep submitted"
            );
            coordinator.state().insert(runtime);
            coordinator.changed();
            Ok(status)
        });
        task.await.map_err(|e| CoordinatorError::Internal(format!("the submission task failed: {e}")))?
    }

    /// The status of the sweep an earlier submission with this request id
    /// created, if any.
    fn resubmitted(&self, request_id: Option<&str>) -> Option<SweepStatus> {
        let state = self.state();
        state.by_request_id(request_id?).map(SweepRuntime::status)
    }

    /// Cancel a running sweep; a final sweep is answered as it is.
    pub async fn cancel(&self, id: &SweepId) -> Result<SweepStatus, CoordinatorError> {
        let status = self.status(id)?;
        if status.state.is_final() {
            return Ok(status);
        }
        let reason = "cancelled by request".to_owned();
        self.ask(Change::Stop { sweep: id.clone(), state: SweepState::Cancelled, reason }).await?;
        tracing::info!(sweep = %id, "sweep cancelled by request");
        self.status(id)
    }

    /// Every sweep's status, in submission order.
    pub fn list(&self) -> Vec<SweepStatus> {
        let statuses = self.state().statuses();
        statuses.into_iter().map(|status| self.with_store_health(status)).collect()
    }

    /// A sweep's status, units and merged aggregate: a running sweep's from
    /// memory, a final sweep's from the store.
    pub async fn query(&self, id: &SweepId) -> Result<SweepResults, CoordinatorError> {
        Coordinator::check_not_quarantined(&self.inner.quarantined, id)?;
        let (status, unit_ids, unit_names, nominal_zones, live) = {
            let state = self.state();
            let sweep = state.sweep(id).ok_or_else(|| not_found(id))?;
            let record = sweep.record();
            (
                sweep.status(),
                record.unit_ids.clone(),
                record.unit_names.clone(),
                record.nominal_zones.clone(),
                // Shared under the lock, copied after it.
                sweep.shared_aggregate().cloned(),
            )
        };
        let aggregate = match live {
            Some(aggregate) => std::sync::Arc::unwrap_or_clone(aggregate),
            None => self.stored_aggregate(id).await?,
        };
        Ok(SweepResults { status, unit_ids, unit_names, nominal_zones, aggregate })
    }

    async fn stored_aggregate(&self, id: &SweepId) -> Result<Aggregate, CoordinatorError> {
        let store = self.store();
        let id = id.clone();
        blocking(move || Ok(store.stored_aggregate(&id)?)).await
    }

    /// Run a failed or cancelled sweep again from what it has: the jobs not
    /// done are leased again, none counted as failed. A running sweep is
    /// answered as it is; a done one, or one whose jobs are all done, is
    /// refused with FAILED_PRECONDITION.
    pub async fn resume(&self, id: &SweepId) -> Result<SweepStatus, CoordinatorError> {
        // A quarantined sweep's stand-in has no results to go on from.
        Coordinator::check_not_quarantined(&self.inner.quarantined, id)?;
        let status = self.status(id)?;
        if status.state == SweepState::Running {
            return Ok(status);
        }
        let aggregate = Box::new(self.stored_aggregate(id).await?);
        self.ask(Change::Resume { sweep: id.clone(), aggregate }).await?;
        tracing::info!(sweep = %id, "sweep resumed");
        self.status(id)
    }

    /// Add `samples` samples to a done sweep (see [`crate::sweep::SweepRecord::extend`]):
    /// its results become, byte for byte, those of one sweep of the new
    /// total with the same seed. Refused for a Latin hypercube, whose
    /// strata depend on the sample count.
    pub async fn extend(&self, id: &SweepId, samples: u64) -> Result<SweepStatus, CoordinatorError> {
        Coordinator::check_not_quarantined(&self.inner.quarantined, id)?;
        if samples == 0 {
            return Err(CoordinatorError::InvalidArgument("the samples to add must be at least 1".into()));
        }
        let record = {
            let state = self.state();
            state.sweep(id).ok_or_else(|| not_found(id))?.record().clone()
        };
        if record.state != SweepState::Done {
            return Err(CoordinatorError::FailedPrecondition(match record.state {
                SweepState::Running => format!("sweep {id} is running; extend it once it is done"),
                state => format!("sweep {id} is {state}; resume it (`zonesweep resume {id}`) before extending it"),
            }));
        }
        record.check_chain().map_err(CoordinatorError::FailedPrecondition)?;
        let store = self.store();
        let spec_hash = record.spec_hash.clone();
        let spec_bytes = blocking(move || Ok(store.blob(&spec_hash)?)).await?.ok_or_else(|| {
            CoordinatorError::DataLoss(format!("sweep {id}: its spec {} is not stored", record.spec_hash))
        })?;
        let text = String::from_utf8_lossy(&spec_bytes);
        let mut spec = SweepSpec::from_toml(&text, "the stored spec")
            .map_err(|e| CoordinatorError::DataLoss(format!("sweep {id}: {e}")))?;
        if spec.design == Design::LatinHypercube {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sweep {id} is a Latin hypercube, whose strata are cut for its {} samples: adding samples would not give \
                 the sweep of the larger size; submit a new sweep with --samples instead",
                record.samples
            )));
        }
        spec.samples = record.samples.saturating_add(samples);
        if spec.design == Design::Sobol && spec.samples > u64::from(u32::MAX) {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sweep {id} uses the Sobol' design, which supports at most {} samples; {} would be more",
                u32::MAX,
                spec.samples
            )));
        }
        let spec_bytes = spec.to_toml().into_bytes();
        let spec_hash = crate::submission::hash(&spec_bytes);
        let store = self.store();
        let hash = spec_hash.clone();
        blocking(move || Ok(store.put_blob(&hash, &spec_bytes)?)).await?;
        let aggregate = Box::new(self.stored_aggregate(id).await?);
        self.ask(Change::Extend { sweep: id.clone(), from: record.samples, samples, spec_hash, aggregate }).await?;
        tracing::info!(sweep = %id, samples, "sweep extended");
        self.changed();
        self.status(id)
    }

    /// What a sweep was run from (see [`crate::offline::Definition`]).
    pub async fn definition(&self, id: &SweepId) -> Result<crate::offline::Definition, CoordinatorError> {
        let record = {
            let state = self.state();
            state.sweep(id).ok_or_else(|| not_found(id))?.record().clone()
        };
        let store = self.store();
        blocking(move || crate::offline::Definition::of(&store, &record)).await
    }

    /// Delete a final sweep and everything stored of it; a running sweep
    /// is refused (cancel it first).
    pub async fn delete(&self, id: &SweepId) -> Result<(), CoordinatorError> {
        self.status(id)?;
        self.ask(Change::Delete { sweep: id.clone() }).await?;
        tracing::info!(sweep = %id, "sweep deleted");
        self.changed();
        Ok(())
    }

    /// Delete every final sweep that ended more than `age` ago (sweeps
    /// whose end time is not known are kept); returns those deleted.
    pub async fn prune(&self, age: Duration) -> Result<Vec<SweepId>, CoordinatorError> {
        let cutoff = crate::sweep::now_unix().saturating_sub(age.as_secs());
        let old: Vec<SweepId> = {
            let state = self.state();
            state
                .statuses()
                .iter()
                .filter_map(|status| state.sweep(&status.id))
                .filter(|sweep| !sweep.is_running() && sweep.record().ended_unix.is_some_and(|end| end <= cutoff))
                .map(|sweep| sweep.id().clone())
                .collect()
        };
        let mut deleted = Vec::new();
        for id in old {
            match self.ask(Change::Delete { sweep: id.clone() }).await {
                Ok(_) => deleted.push(id),
                // Resumed meanwhile: it stays.
                Err(CoordinatorError::FailedPrecondition(_)) => {}
                Err(error) => return Err(error),
            }
        }
        if !deleted.is_empty() {
            self.changed();
        }
        Ok(deleted)
    }

    /// A stream of a sweep's status: now, after every change, and a last
    /// one when it is final. Ends with UNAVAILABLE when the server shuts down.
    pub fn watch(
        &self,
        id: &SweepId,
    ) -> Result<mpsc::Receiver<Result<SweepStatus, CoordinatorError>>, CoordinatorError> {
        self.status(id)?;
        let (sender, receiver) = mpsc::channel(16);
        let coordinator = self.clone();
        let id = id.clone();
        let mut changes = self.inner.changes.subscribe();
        let mut stopping = self.inner.stopping.subscribe();
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let status = match coordinator.status(&id) {
                    Ok(status) => status,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                let final_state = status.state.is_final();
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
                        let shutting_down = CoordinatorError::Unavailable("the coordinator is shutting down".into());
                        let _ = sender.send(Err(shutting_down)).await;
                        return;
                    }
                }
            }
        });
        Ok(receiver)
    }

    // ------------------------------------------------------------ workers

    /// Register a worker that computes samples with model chain revision
    /// `chain`: refused (FAILED_PRECONDITION) unless it is this
    /// coordinator's ([`zonesweep_shared::CHAIN_REVISION`]), the revision
    /// of every sweep whose jobs it hands out.
    pub fn register(&self, hostname: &str, threads: u32, chain: u32) -> Result<Registration, CoordinatorError> {
        let ours = zonesweep_shared::CHAIN_REVISION;
        if chain != ours {
            let theirs = if chain == 0 {
                "sends no model chain revision (it is a zonesweep from before revisions were checked)".to_owned()
            } else {
                format!("computes samples with model chain revision {chain}")
            };
            tracing::warn!(host = %hostname.escape_debug(), chain, "a worker of another model chain was refused");
            return Err(CoordinatorError::FailedPrecondition(format!(
                "this worker {theirs}, and this coordinator (zonesweep {}) with revision {ours}: samples of the two may \
                 differ in their last bits, and one sweep must not mix them; run a worker of the coordinator's release",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let n = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
        let host: String = hostname.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect();
        let id = format!("wk-{}-{n:x}", if host.is_empty() { "anon" } else { &host });
        let worker_id = WorkerId::parse(&id).expect("letters, digits and `-`, at most 3 + 32 + 1 + 16 characters");
        let now = Instant::now();
        // Shown by `show` and `workers`: no control characters (a terminal
        // would act on them).
        let hostname: String = hostname.chars().filter(|c| !c.is_control()).take(256).collect();
        tracing::info!(worker = %worker_id, host = %hostname, threads, "worker joined");
        self.state().register(WorkerInfo {
            id: worker_id.clone(),
            hostname,
            threads,
            registered: now,
            last_seen: now,
            jobs_delivered: 0,
            samples_delivered: 0,
        });
        Ok(Registration {
            worker_id,
            heartbeat_interval: self.inner.config.heartbeat_interval,
            lease_timeout: self.inner.config.lease_timeout,
        })
    }

    /// The registered workers with the number of leases each holds.
    pub fn workers(&self) -> Vec<(WorkerInfo, u32)> {
        self.state().workers()
    }

    /// Lease up to `capacity` (at most 1024) pending jobs, oldest sweep
    /// first, in the worker's call numbered `call` (0: not numbered; see
    /// [`Coordinator::heartbeat`]); NOT_FOUND for a worker that is not
    /// registered.
    pub fn lease(&self, worker: &WorkerId, capacity: u32, call: u64) -> Result<Vec<LeasedJob>, CoordinatorError> {
        let now = Instant::now();
        let deadline = now + self.inner.config.lease_timeout;
        let until = now + self.inner.config.max_job_time;
        let capacity = capacity.min(1024) as usize;
        let jobs = self.state().lease(worker, capacity, deadline, until, call)?;
        if !jobs.is_empty() {
            self.changed();
        }
        Ok(jobs)
    }

    /// [`Coordinator::lease`], but when there is no job to lease, wait up
    /// to `wait` (at most [`MAX_LEASE_WAIT`]) for one: the state is asked
    /// again after a change (a submission, a job released, failed or
    /// expired, or any other; at most every 50 ms) until a job is leased,
    /// the time is up or the server begins to shut down. The change signal is subscribed to
    /// before the first attempt, so a change between that attempt and the
    /// wait is not missed.
    pub async fn lease_or_wait(
        &self,
        worker: &WorkerId,
        capacity: u32,
        call: u64,
        wait: Duration,
    ) -> Result<Vec<LeasedJob>, CoordinatorError> {
        let mut changes = self.inner.changes.subscribe();
        let mut stopping = self.inner.stopping.subscribe();
        let jobs = self.lease(worker, capacity, call)?;
        if !jobs.is_empty() || wait.is_zero() || *stopping.borrow() {
            return Ok(jobs);
        }
        let until = tokio::time::Instant::now() + wait.min(MAX_LEASE_WAIT);
        let mut tried = tokio::time::Instant::now();
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(Vec::new());
                    }
                }
                _ = stopping.changed() => return Ok(Vec::new()),
                () = tokio::time::sleep_until(until) => return Ok(Vec::new()),
            }
            // Changes come in bursts (every commit, every lease): ask at
            // most once per `LEASE_RETRY_SPACING`, so that many idle workers
            // do not take the state lock for each. What changes meanwhile is
            // seen by this attempt or wakes the next.
            let next = tried + LEASE_RETRY_SPACING;
            if next > tokio::time::Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(next.min(until)) => {}
                    _ = stopping.changed() => return Ok(Vec::new()),
                }
            }
            changes.borrow_and_update();
            tried = tokio::time::Instant::now();
            let jobs = self.lease(worker, capacity, call)?;
            if !jobs.is_empty() {
                return Ok(jobs);
            }
        }
    }

    /// Extend the leases a worker holds; returns those it should abandon.
    /// Once the worker says its calls numbered up to `calls_ended` have
    /// ended (0: it does not say), the leases those calls granted that it
    /// does not hold go back to pending at once: the answers carrying them
    /// were lost (see [`State::release_unreceived`]).
    pub fn heartbeat(
        &self,
        worker: &WorkerId,
        leases: &[LeaseRef],
        calls_ended: u64,
    ) -> Result<Vec<LeaseRef>, CoordinatorError> {
        let now = Instant::now();
        let deadline = now + self.inner.config.lease_timeout;
        let until = now + self.inner.config.max_job_time;
        let mut state = self.state();
        let abandon = state.heartbeat(worker, leases, deadline, until)?;
        let released = if calls_ended > 0 { state.release_unreceived(worker, leases, calls_ended) } else { 0 };
        drop(state);
        if released > 0 {
            self.changed();
        }
        Ok(abandon)
    }

    /// The shape every result of a sweep must have, to decode a completion against.
    pub fn result_shape(&self, id: &SweepId) -> Result<Shape, CoordinatorError> {
        self.state().sweep(id).map(|sweep| *sweep.shape()).ok_or_else(|| not_found(id))
    }

    /// Merge a job's result exactly once: `Ok(false)` when it was merged
    /// before. The result must come from the worker holding the job's lease
    /// (see [`State::check_delivery`]) and fit its job; otherwise it is
    /// refused and changes nothing.
    pub async fn complete(
        &self,
        worker: &WorkerId,
        lease: &LeaseRef,
        aggregate: impl Into<SparseAggregate>,
    ) -> Result<bool, CoordinatorError> {
        self.queue_result(worker, lease, aggregate.into()).await?.answer(self).await
    }

    /// The first half of [`Coordinator::complete`]: check the result and
    /// queue it for the committer, without waiting for its answer, so that
    /// the results of one call go to the committer together.
    pub async fn queue_result(
        &self,
        worker: &WorkerId,
        lease: &LeaseRef,
        aggregate: SparseAggregate,
    ) -> Result<QueuedResult, CoordinatorError> {
        // Reads the whole result: before the lock every call needs.
        check_consistent(&aggregate)?;
        let label = {
            let mut state = self.state();
            state.check_delivery(worker, lease)?;
            let sweep = state.sweep(lease.sweep()).ok_or_else(|| not_found(lease.sweep()))?;
            if check_fit(sweep, lease.index(), &aggregate)? == Fit::AlreadyMerged {
                return Ok(QueuedResult { answer: None, worker: worker.clone(), samples: 0 });
            }
            state.worker_label(worker)
        };
        let samples = aggregate.samples_total();
        let change = Change::Complete { job: lease.job.clone(), aggregate: Box::new(aggregate), worker: label };
        let (reply, answer) = oneshot::channel();
        self.send(Command { change, reply: Some(reply) }).await?;
        Ok(QueuedResult { answer: Some(answer), worker: worker.clone(), samples })
    }

    /// A worker could not run a job: it runs again, or after too many
    /// failures its sweep fails. Only the job's current holder can fail it.
    pub async fn fail(&self, worker: &WorkerId, lease: &LeaseRef, reason: &str) -> Result<(), CoordinatorError> {
        let reason: String = reason.chars().take(2000).collect();
        let failed = self.state().fail_job(worker, lease, &reason, self.inner.config.max_attempts)?;
        if let Some(reason) = failed {
            self.send(Command {
                change: Change::Stop { sweep: lease.sweep().clone(), state: SweepState::Failed, reason },
                reply: None,
            })
            .await?;
        }
        self.changed();
        Ok(())
    }

    pub async fn fetch_blob(&self, hash: &ContentHash) -> Result<Vec<u8>, CoordinatorError> {
        let store = self.inner.store.clone();
        let key = hash.clone();
        blocking(move || store.blob(key.as_str())?.ok_or_else(|| CoordinatorError::NotFound(format!("blob {key}"))))
            .await
    }
}
