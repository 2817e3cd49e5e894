//! In-memory bookkeeping of sweeps, their jobs and the workers that run
//! them: a job is pending, leased (to one registered worker, until a
//! deadline) or done. The database is the source of truth for what is done;
//! leases and registrations live only here, so a restart returns leased jobs
//! to pending and makes workers register again, which is safe because
//! results are deterministic (invariant 3).
//!
//! A result or a heartbeat counts only from the worker the job is leased to
//! (or, once that lease expired and before the job is leased again, from its
//! last holder): lease ids and worker ids are handed out here, so a made-up
//! pair names nothing.
//!
//! Fields are private: every change is one of [`State`]'s operations, and a
//! sweep's durable parts (record, aggregate, done jobs) change only through
//! [`State::publish`], after the committer stored them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zonesweep_proto::ids::{LeaseId, LeaseRef, SweepId, WorkerId};
use zonesweep_proto::status::SweepStatus;
use zonesweep_shared::sweep::aggregate::{Aggregate, Shape};

use crate::store::BatchEntry;
use crate::sweep::{SweepRecord, Tally};

/// A lease and the worker it was handed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub lease: LeaseId,
    pub worker: WorkerId,
}

/// Where one job stands. `failures` counts the runs of the job that ended
/// in an error the worker reported, or that outlived the maximum job time;
/// a lease that expired because its worker went silent (lost, killed, cut
/// off, or the coordinator itself stalled) is an infrastructure fault and
/// does not count.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    /// Waiting for a worker; `last` is the lease it had before that expired,
    /// whose holder may still deliver its result or take it back.
    Pending {
        failures: u32,
        last: Option<Holder>,
    },
    Leased {
        holder: Holder,
        deadline: Instant,
        failures: u32,
        until: Instant,
    },
    Done,
}

/// Why a worker's call about a job is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The worker id was not handed out by this coordinator (or it went
    /// silent long enough to be forgotten): it should register again.
    UnknownWorker(WorkerId),
    UnknownSweep(SweepId),
    /// The job is not (or no longer) this worker's under this lease.
    NotHolder(String),
}

/// A registered worker, as `workers` lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerInfo {
    pub id: WorkerId,
    pub hostname: String,
    pub threads: u32,
    pub registered: Instant,
    /// The last call the worker made (lease, heartbeat, result).
    pub last_seen: Instant,
    /// Jobs whose results it delivered and that were taken.
    pub jobs_delivered: u64,
    /// The samples of those jobs.
    pub samples_delivered: u64,
}

/// A sweep's merged results as memory holds them: a running sweep's whole
/// aggregate, a final sweep's tally only (its aggregate stays in the store,
/// so memory does not grow with every sweep ever finished).
#[derive(Clone, Debug)]
enum Results {
    /// Shared with the committer, which writes it as a checkpoint outside
    /// the state's lock; merged into in place once nothing else holds it.
    Live(Arc<Aggregate>),
    Stored {
        shape: Shape,
        sensitivity: Option<Vec<String>>,
        tally: Tally,
    },
}

impl Results {
    fn new(record: &SweepRecord, aggregate: Aggregate) -> Results {
        if record.is_running() {
            Results::Live(Arc::new(aggregate))
        } else {
            Results::Stored {
                shape: aggregate.shape,
                sensitivity: aggregate.sensitivity.as_ref().map(|s| s.groups.clone()),
                tally: Tally::of(&aggregate),
            }
        }
    }
}

/// A sweep as the coordinator runs it.
#[derive(Clone, Debug)]
pub struct SweepRuntime {
    record: SweepRecord,
    jobs: Vec<JobState>,
    /// Pending job indices, the next to lease first.
    pending: VecDeque<u32>,
    results: Results,
    /// Counts of done and leased jobs, kept with every change so a status
    /// costs nothing however many jobs a sweep has.
    done: u32,
    leased: u32,
    /// The deltas stored after the sweep's checkpoint.
    deltas: u32,
}

/// A job handed to a worker: its lease, its samples, and what the worker
/// needs to fetch and run its sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct LeasedJob {
    pub lease: LeaseRef,
    pub samples: Range<u64>,
    /// The sweep's resolved sample count and seed.
    pub sweep_samples: u64,
    pub seed: u64,
    pub dataset_hash: String,
    pub config_hash: String,
    pub spec_hash: String,
}

impl SweepRuntime {
    /// A sweep loaded or created with these jobs done.
    pub fn new(record: SweepRecord, aggregate: Aggregate, done: &[u32]) -> SweepRuntime {
        let mut jobs = vec![JobState::Pending { failures: 0, last: None }; record.jobs as usize];
        for &j in done {
            if let Some(job) = jobs.get_mut(j as usize) {
                *job = JobState::Done;
            }
        }
        let done = jobs.iter().filter(|j| **j == JobState::Done).count() as u32;
        let results = Results::new(&record, aggregate);
        let mut runtime = SweepRuntime { record, jobs, pending: VecDeque::new(), results, done, leased: 0, deltas: 0 };
        runtime.queue_undone();
        runtime
    }

    /// Queue every job not done, in order, when the sweep is running.
    fn queue_undone(&mut self) {
        self.pending = if self.record.is_running() {
            (0..self.record.jobs).filter(|&j| self.jobs[j as usize] != JobState::Done).collect()
        } else {
            VecDeque::new()
        };
    }

    pub fn id(&self) -> &SweepId {
        &self.record.id
    }

    pub fn record(&self) -> &SweepRecord {
        &self.record
    }

    /// The merged, durably committed aggregate of a running sweep; `None`
    /// for a final one, whose aggregate is read from the store.
    pub fn aggregate(&self) -> Option<&Aggregate> {
        match &self.results {
            Results::Live(aggregate) => Some(aggregate),
            Results::Stored { .. } => None,
        }
    }

    /// [`SweepRuntime::aggregate`], shared: the committer writes it as a
    /// checkpoint without copying it.
    pub fn shared_aggregate(&self) -> Option<&Arc<Aggregate>> {
        match &self.results {
            Results::Live(aggregate) => Some(aggregate),
            Results::Stored { .. } => None,
        }
    }

    /// The deltas stored after the sweep's checkpoint.
    pub fn stored_deltas(&self) -> u32 {
        self.deltas
    }

    /// A sweep loaded with `deltas` deltas after its checkpoint.
    pub fn with_stored_deltas(mut self, deltas: u32) -> SweepRuntime {
        self.deltas = deltas;
        self
    }

    /// The shape every result of this sweep has.
    pub fn shape(&self) -> &Shape {
        match &self.results {
            Results::Live(aggregate) => &aggregate.shape,
            Results::Stored { shape, .. } => shape,
        }
    }

    /// The sensitivity groups every result of this sweep has; `None` for a
    /// plain sweep.
    pub fn sensitivity_groups(&self) -> Option<&[String]> {
        match &self.results {
            Results::Live(aggregate) => aggregate.sensitivity.as_ref().map(|s| &s.groups[..]),
            Results::Stored { sensitivity, .. } => sensitivity.as_deref(),
        }
    }

    pub fn job(&self, index: u32) -> Option<&JobState> {
        self.jobs.get(index as usize)
    }

    /// Whether job `index` is merged (false for an index out of range).
    pub fn is_done(&self, index: u32) -> bool {
        self.job(index) == Some(&JobState::Done)
    }

    /// The samples of job `index`.
    pub fn job_range(&self, index: u32) -> Range<u64> {
        self.record.job_range(index)
    }

    pub fn jobs_done(&self) -> u32 {
        self.done
    }

    pub fn jobs_leased(&self) -> u32 {
        self.leased
    }

    pub fn is_running(&self) -> bool {
        self.record.is_running()
    }

    pub fn status(&self) -> SweepStatus {
        let tally = match &self.results {
            Results::Live(aggregate) => &Tally::of(aggregate),
            Results::Stored { tally, .. } => tally,
        };
        self.record.status(tally, self.done, self.leased)
    }

    /// Whether `worker` may deliver job `index`'s result under `lease`: it
    /// holds the job's current lease, or held the last one, which expired,
    /// and nobody has leased the job since. A done job is answered by the
    /// caller ("merged before") whoever asks.
    pub fn check_holder(&self, index: u32, lease: LeaseId, worker: &WorkerId) -> Result<(), Refusal> {
        let names = |holder: &Holder| holder.lease == lease && holder.worker == *worker;
        match self.job(index) {
            Some(JobState::Done) => Ok(()),
            Some(JobState::Leased { holder, .. }) if names(holder) => Ok(()),
            Some(JobState::Pending { last: Some(holder), .. }) if names(holder) => Ok(()),
            Some(JobState::Leased { .. }) => Err(Refusal::NotHolder(format!(
                "job {index} of sweep {} is leased to another worker under another lease; this result is not taken",
                self.id()
            ))),
            Some(JobState::Pending { .. }) => Err(Refusal::NotHolder(format!(
                "lease {} of job {index} of sweep {} is not one this coordinator handed to worker {worker} \
                 (it may have restarted since); the job will run again",
                lease.0,
                self.id()
            ))),
            None => Err(Refusal::NotHolder(format!(
                "sweep {} has {} jobs; there is no job {index}",
                self.id(),
                self.record.jobs
            ))),
        }
    }

    /// Set a job's state, keeping the counts.
    fn set(&mut self, index: u32, state: JobState) {
        let job = &mut self.jobs[index as usize];
        match job {
            JobState::Done => self.done -= 1,
            JobState::Leased { .. } => self.leased -= 1,
            JobState::Pending { .. } => {}
        }
        match state {
            JobState::Done => self.done += 1,
            JobState::Leased { .. } => self.leased += 1,
            JobState::Pending { .. } => {}
        }
        *job = state;
    }

    /// A job's result is durably merged.
    fn mark_done(&mut self, index: u32) {
        if (index as usize) < self.jobs.len() {
            self.set(index, JobState::Done);
        }
    }

    /// Stop handing out work (the sweep is final): leased jobs are pending
    /// again, and nothing is queued.
    fn stop_leasing(&mut self) {
        self.pending.clear();
        for index in 0..self.jobs.len() as u32 {
            if let JobState::Leased { failures, .. } = self.jobs[index as usize] {
                self.set(index, JobState::Pending { failures, last: None });
            }
        }
    }

    /// The sweep runs again (resumed): every job not done is pending with
    /// no failures counted, in order.
    fn restart_leasing(&mut self) {
        for index in 0..self.jobs.len() as u32 {
            if self.jobs[index as usize] != JobState::Done {
                self.set(index, JobState::Pending { failures: 0, last: None });
            }
        }
        self.queue_undone();
    }

    /// A job failed: back to pending, or, after `max_attempts` failures,
    /// the reason its sweep fails.
    fn retry_or_fail(&mut self, index: u32, failures: u32, max_attempts: u32, why: &str) -> Option<String> {
        let failures = failures + 1;
        self.set(index, JobState::Pending { failures, last: None });
        // Requeued even when giving up: should the sweep's failure not be
        // stored, the job is run again rather than forgotten.
        self.pending.push_front(index);
        if failures >= max_attempts {
            let range = self.job_range(index);
            Some(format!("job {index} (samples {}..{}) {why} {failures} times; giving up", range.start, range.end))
        } else {
            None
        }
    }

    /// A lease expired without its worker failing the job: pending again,
    /// first in line, remembering its holder, which may still deliver.
    fn requeue(&mut self, index: u32, failures: u32, holder: Holder) {
        self.set(index, JobState::Pending { failures, last: Some(holder) });
        self.pending.push_front(index);
    }
}

/// The most workers registered at once; beyond it, those silent the longest
/// are forgotten first (they register again when they return).
pub const MAX_WORKERS: usize = 65_536;

/// Every sweep, in submission order, the registered workers and the lease counter.
#[derive(Debug, Default)]
pub struct State {
    sweeps: BTreeMap<SweepId, SweepRuntime>,
    /// Sweep ids by sequence: older sweeps are served first.
    order: Vec<SweepId>,
    workers: HashMap<WorkerId, WorkerInfo>,
    /// Leases granted in a worker's numbered calls and not yet checked
    /// against its heartbeats, with the number of the call.
    unconfirmed: HashMap<WorkerId, Vec<(LeaseRef, u64)>>,
    next_lease: u64,
}

/// Leases a worker's numbered calls granted that wait for a heartbeat to
/// confirm them, at most; beyond it, more are not recorded (they are then
/// left to expire, as those of an unnumbered call are).
pub const MAX_UNCONFIRMED: usize = 65_536;

impl State {
    /// Lease ids start after `first_lease`.
    pub fn new(first_lease: u64) -> State {
        State { next_lease: first_lease, ..State::default() }
    }

    pub fn insert(&mut self, runtime: SweepRuntime) {
        let id = runtime.id().clone();
        let sequence = runtime.record.sequence;
        let position = self
            .order
            .iter()
            .position(|other| self.sweeps[other].record.sequence > sequence)
            .unwrap_or(self.order.len());
        self.order.insert(position, id.clone());
        self.sweeps.insert(id, runtime);
    }

    pub fn sweep(&self, id: &SweepId) -> Option<&SweepRuntime> {
        self.sweeps.get(id)
    }

    /// The sweep a submission with this client request id created.
    pub fn by_request_id(&self, request_id: &str) -> Option<&SweepRuntime> {
        self.sweeps.values().find(|s| s.record.request_id.as_deref() == Some(request_id))
    }

    /// Every sweep's status, in submission order.
    pub fn statuses(&self) -> Vec<SweepStatus> {
        self.order.iter().map(|id| self.sweeps[id].status()).collect()
    }

    // ------------------------------------------------------------ workers

    /// Register a worker under a fresh id; when the registry is full, the
    /// worker silent the longest is forgotten.
    pub fn register(&mut self, info: WorkerInfo) {
        if self.workers.len() >= MAX_WORKERS
            && let Some(oldest) = self.workers.values().min_by_key(|w| w.last_seen).map(|w| w.id.clone())
        {
            self.workers.remove(&oldest);
            self.unconfirmed.remove(&oldest);
        }
        self.workers.insert(info.id.clone(), info);
    }

    /// A call from `worker`: known, and seen now.
    fn seen(&mut self, worker: &WorkerId) -> Result<&mut WorkerInfo, Refusal> {
        let info = self.workers.get_mut(worker).ok_or_else(|| Refusal::UnknownWorker(worker.clone()))?;
        info.last_seen = info.last_seen.max(Instant::now());
        Ok(info)
    }

    /// Forget workers silent for longer than `silence` that hold no lease.
    pub fn forget_silent_workers(&mut self, now: Instant, silence: Duration) {
        let holding: std::collections::HashSet<&WorkerId> = self
            .sweeps
            .values()
            .filter(|s| s.leased > 0)
            .flat_map(|s| s.jobs.iter())
            .filter_map(|j| match j {
                JobState::Leased { holder, .. } => Some(&holder.worker),
                _ => None,
            })
            .collect();
        let forget: Vec<WorkerId> = self
            .workers
            .values()
            .filter(|w| now.saturating_duration_since(w.last_seen) > silence && !holding.contains(&w.id))
            .map(|w| w.id.clone())
            .collect();
        for id in forget {
            tracing::info!(worker = %id, "worker left (silent for {} s, holding no lease)", silence.as_secs());
            self.workers.remove(&id);
            self.unconfirmed.remove(&id);
        }
    }

    /// Leases held now, over every sweep.
    /// How a sweep's provenance names a worker: `host/worker-id`.
    pub fn worker_label(&self, worker: &WorkerId) -> String {
        let host = self.workers.get(worker).map_or("unknown host", |info| info.hostname.as_str());
        format!("{host}/{worker}")
    }

    pub fn leases_held(&self) -> u32 {
        self.sweeps.values().map(|s| s.leased).sum()
    }

    /// The registered workers, the longest registered first, with the
    /// number of leases each holds.
    pub fn workers(&self) -> Vec<(WorkerInfo, u32)> {
        let mut leases: HashMap<&WorkerId, u32> = HashMap::new();
        for sweep in self.sweeps.values().filter(|s| s.leased > 0) {
            for job in &sweep.jobs {
                if let JobState::Leased { holder, .. } = job {
                    *leases.entry(&holder.worker).or_default() += 1;
                }
            }
        }
        let mut workers: Vec<(WorkerInfo, u32)> =
            self.workers.values().map(|w| (w.clone(), leases.get(&w.id).copied().unwrap_or(0))).collect();
        workers.sort_by(|a, b| a.0.registered.cmp(&b.0.registered).then_with(|| a.0.id.cmp(&b.0.id)));
        workers
    }

    // ------------------------------------------------------------ jobs

    /// Lease up to `capacity` pending jobs to `worker`, oldest sweep first,
    /// in the worker's call numbered `call` (0: not numbered).
    /// Heartbeats extend a lease to `deadline`-like times, but never past
    /// `until`: a job whose samples hang cannot hold its lease forever.
    pub fn lease(
        &mut self,
        worker: &WorkerId,
        capacity: usize,
        deadline: Instant,
        until: Instant,
        call: u64,
    ) -> Result<Vec<LeasedJob>, Refusal> {
        self.seen(worker)?;
        let mut leased = Vec::new();
        for id in &self.order {
            let sweep = self.sweeps.get_mut(id).expect("ordered ids are present");
            while leased.len() < capacity && sweep.is_running() {
                let Some(index) = sweep.pending.pop_front() else { break };
                // A sweep that stops at a target half-width runs one block
                // at a time: the next only once this one is merged.
                if index >= sweep.record.block_end(sweep.done) {
                    sweep.pending.push_front(index);
                    break;
                }
                let failures = match sweep.jobs.get(index as usize) {
                    Some(JobState::Pending { failures, .. }) => *failures,
                    // Stale queue entry (done or leased meanwhile): skip it.
                    _ => continue,
                };
                self.next_lease += 1;
                let lease = LeaseId(self.next_lease);
                let holder = Holder { lease, worker: worker.clone() };
                sweep.set(index, JobState::Leased { holder, deadline, failures, until });
                let record = &sweep.record;
                leased.push(LeasedJob {
                    lease: LeaseRef::new(id.clone(), index, lease.0),
                    samples: sweep.job_range(index),
                    sweep_samples: record.samples,
                    seed: record.seed,
                    dataset_hash: record.dataset_hash.clone(),
                    config_hash: record.config_hash.clone(),
                    spec_hash: record.spec_hash.clone(),
                });
            }
            if leased.len() >= capacity {
                break;
            }
        }
        if call > 0 && !leased.is_empty() {
            let unconfirmed = self.unconfirmed.entry(worker.clone()).or_default();
            let room = MAX_UNCONFIRMED.saturating_sub(unconfirmed.len());
            unconfirmed.extend(leased.iter().take(room).map(|job| (job.lease.clone(), call)));
        }
        Ok(leased)
    }

    /// Extend the leases `worker` holds; returns those it should abandon.
    /// A lease extends only if it is the job's current lease and is held by
    /// this worker; a job whose lease (this worker's) expired and that
    /// nobody took since is given back to it rather than run twice.
    pub fn heartbeat(
        &mut self,
        worker: &WorkerId,
        leases: &[LeaseRef],
        deadline: Instant,
        until: Instant,
    ) -> Result<Vec<LeaseRef>, Refusal> {
        self.seen(worker)?;
        let mut abandon = Vec::new();
        for held in leases {
            let Some(sweep) = self.sweeps.get_mut(held.sweep()) else {
                abandon.push(held.clone());
                continue;
            };
            let running = sweep.is_running();
            let index = held.index();
            let names = |holder: &Holder| holder.lease == held.lease && holder.worker == *worker;
            match sweep.jobs.get_mut(index as usize) {
                Some(JobState::Leased { holder, deadline: d, until: limit, .. }) if names(holder) => {
                    *d = deadline.min(*limit);
                }
                Some(JobState::Pending { failures, last: Some(holder) }) if running && names(holder) => {
                    let (failures, holder) = (*failures, holder.clone());
                    sweep.set(index, JobState::Leased { holder, deadline, failures, until });
                }
                _ => abandon.push(held.clone()),
            }
        }
        Ok(abandon)
    }

    /// A heartbeat's word that each of `worker`'s calls numbered up to
    /// `calls_ended` had ended when it read `leases`, the leases it holds:
    /// a lease such a call granted that `leases` does not name is not the
    /// worker's (the answer carrying it was lost, or its job has ended and
    /// was answered), and, if still leased to it, goes back to pending now
    /// rather than at its deadline, as an expired lease does (no failure
    /// counted; the worker may still deliver it until it is leased again).
    /// Each lease is checked once, by the first heartbeat after its call
    /// ended. Returns how many went back.
    pub fn release_unreceived(&mut self, worker: &WorkerId, leases: &[LeaseRef], calls_ended: u64) -> usize {
        let Some(unconfirmed) = self.unconfirmed.get_mut(worker) else { return 0 };
        let mut released = 0;
        let sweeps = &mut self.sweeps;
        let named: std::collections::HashSet<&LeaseRef> = leases.iter().collect();
        unconfirmed.retain(|(lease, call)| {
            if *call > calls_ended {
                return true;
            }
            if !named.contains(lease)
                && let Some(sweep) = sweeps.get_mut(lease.sweep())
                && let Some(JobState::Leased { holder, failures, .. }) = sweep.jobs.get(lease.index() as usize)
                && holder.lease == lease.lease
                && holder.worker == *worker
            {
                let (failures, holder) = (*failures, holder.clone());
                sweep.requeue(lease.index(), failures, holder);
                released += 1;
            }
            false
        });
        if unconfirmed.is_empty() {
            self.unconfirmed.remove(worker);
        }
        if released > 0 {
            tracing::info!(worker = %worker, released, "leases the worker never received are pending again");
        }
        released
    }

    /// Whether `worker` may deliver the result of the job `lease` names
    /// (see [`SweepRuntime::check_holder`]); it is seen now either way.
    pub fn check_delivery(&mut self, worker: &WorkerId, lease: &LeaseRef) -> Result<(), Refusal> {
        self.seen(worker)?;
        let sweep = self.sweeps.get(lease.sweep()).ok_or_else(|| Refusal::UnknownSweep(lease.sweep().clone()))?;
        sweep.check_holder(lease.index(), lease.lease, worker)
    }

    /// A result of `worker`, of `samples` samples, was merged.
    pub fn delivered(&mut self, worker: &WorkerId, samples: u64) {
        if let Some(info) = self.workers.get_mut(worker) {
            info.jobs_delivered += 1;
            info.samples_delivered += samples;
        }
    }

    /// `worker` reports that it could not run a job: back to pending, or,
    /// after `max_attempts` failures, the reason its sweep fails. Only the
    /// job's current holder can fail it; any other call changes nothing.
    pub fn fail_job(
        &mut self,
        worker: &WorkerId,
        lease: &LeaseRef,
        reason: &str,
        max_attempts: u32,
    ) -> Result<Option<String>, Refusal> {
        self.seen(worker)?;
        let sweep = self.sweeps.get_mut(lease.sweep()).ok_or_else(|| Refusal::UnknownSweep(lease.sweep().clone()))?;
        match sweep.job(lease.index()) {
            Some(JobState::Leased { holder, failures, .. })
                if holder.lease == lease.lease && holder.worker == *worker =>
            {
                let failures = *failures;
                Ok(sweep.retry_or_fail(lease.index(), failures, max_attempts, &format!("failed ({reason})")))
            }
            _ => Err(Refusal::NotHolder(format!(
                "job {} of sweep {} is not leased to worker {worker} under lease {}; the report changes nothing",
                lease.index(),
                lease.sweep(),
                lease.lease.0
            ))),
        }
    }

    /// Return expired leases to pending. A lease whose heartbeats stopped is
    /// requeued without counting a failure (its worker may be lost, or the
    /// coordinator itself stalled); one that reached the maximum job time
    /// counts as a failure of the job. Returns (sweep, reason) for sweeps
    /// whose jobs failed `max_attempts` times.
    pub fn expire(&mut self, now: Instant, max_attempts: u32) -> Vec<(SweepId, String)> {
        let mut failed = Vec::new();
        for (id, sweep) in &mut self.sweeps {
            if sweep.leased == 0 {
                continue;
            }
            let expired: Vec<(u32, u32, Holder, bool)> = sweep
                .jobs
                .iter()
                .enumerate()
                .filter_map(|(i, job)| match job {
                    JobState::Leased { holder, deadline, failures, until } if *deadline <= now => {
                        Some((i as u32, *failures, holder.clone(), *until <= now))
                    }
                    _ => None,
                })
                .collect();
            for (index, failures, holder, too_long) in expired {
                tracing::debug!(sweep = %id, job = index, worker = %holder.worker, too_long, "lease expired");
                if too_long {
                    let why = "ran longer than the maximum job time";
                    if let Some(reason) = sweep.retry_or_fail(index, failures, max_attempts, why) {
                        failed.push((id.clone(), reason));
                    }
                } else {
                    sweep.requeue(index, failures, holder);
                }
            }
        }
        failed
    }

    /// Publish what the committer durably stored: the sweep's new record
    /// and aggregate, its newly done jobs, and, when the record is final
    /// now, no more leasing (or, when it runs again, leasing of every job
    /// not done).
    pub fn publish(&mut self, committed: BatchEntry) {
        let id = committed.record.id.clone();
        if committed.delete {
            self.sweeps.remove(&id);
            self.order.retain(|other| *other != id);
            return;
        }
        let Some(current) = self.sweeps.get_mut(&id) else { return };
        for &j in &committed.newly_done {
            current.mark_done(j);
        }
        // A sweep that stopped early has fewer jobs; an extended one more.
        let jobs = committed.record.jobs as usize;
        if jobs < current.jobs.len() {
            for index in jobs as u32..current.jobs.len() as u32 {
                current.set(index, JobState::Pending { failures: 0, last: None });
            }
            current.jobs.truncate(jobs);
        } else {
            current.jobs.resize(jobs, JobState::Pending { failures: 0, last: None });
        }
        let (was_running, runs) = (current.is_running(), committed.record.is_running());
        current.record = committed.record;
        // What the store now holds after the sweep's checkpoint.
        let checkpointed = committed.aggregate.is_some() || committed.base.is_some();
        current.deltas = if checkpointed { 0 } else { current.deltas };
        current.deltas += u32::from(committed.delta.is_some());
        // The committer's hold on the live aggregate ends here, so it is
        // merged into in place rather than copied.
        drop(committed.base);
        let shape = *current.shape();
        let placeholder = Results::Stored { shape, sensitivity: None, tally: Tally::default() };
        let results = std::mem::replace(&mut current.results, placeholder);
        let merged = match (committed.aggregate, results) {
            (Some(aggregate), _) => Some(aggregate),
            (None, Results::Live(aggregate)) => Some(Arc::unwrap_or_clone(aggregate)),
            (None, stored) => {
                current.results = stored;
                None
            }
        };
        if let Some(mut aggregate) = merged {
            if let Some(delta) = &committed.delta {
                // Checked by the planner against this very aggregate.
                if let Err(error) = aggregate.merge(delta) {
                    tracing::error!(sweep = %id, "a stored delta does not merge into the sweep in memory: {error}");
                }
            }
            current.results = Results::new(&current.record, aggregate);
        }
        if was_running && !runs {
            let status = current.status();
            tracing::info!(
                sweep = %id,
                state = %status.state,
                samples_done = status.samples_done,
                samples_failed = status.samples_failed,
                reason = %status.reason,
                "sweep finished"
            );
            current.stop_leasing();
        } else if !was_running && runs {
            current.restart_leasing();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use zonesweep_proto::status::SweepState;
    use zonesweep_shared::sweep::aggregate::Shape;

    use super::*;

    pub(crate) fn id(text: &str) -> SweepId {
        SweepId::parse(text).unwrap()
    }

    fn worker(text: &str) -> WorkerId {
        WorkerId::parse(text).unwrap()
    }

    fn lease(sweep: &str, index: u32, lease: u64) -> LeaseRef {
        LeaseRef::new(id(sweep), index, lease)
    }

    pub(crate) fn record(sweep: &str, sequence: u64, samples: u64, job_size: u64) -> SweepRecord {
        SweepRecord {
            id: id(sweep),
            sequence,
            dataset_hash: String::new(),
            config_hash: String::new(),
            spec_hash: String::new(),
            samples,
            seed: 1,
            job_size,
            jobs: samples.div_ceil(job_size) as u32,
            state: SweepState::Running,
            reason: String::new(),
            unit_ids: vec![],
            unit_names: vec![],
            nominal_zones: vec![],
            submitted_unix: None,
            ended_unix: None,
            request_id: None,
            provenance: crate::sweep::Provenance { chain: zonesweep_shared::CHAIN_REVISION, ..Default::default() },
            layout: Default::default(),
        }
    }

    pub(crate) fn shape() -> Shape {
        Shape { n_units: 1, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 }
    }

    /// A sweep of 10 samples in jobs of 4 (jobs 0, 1, 2).
    fn runtime(sweep: &str, sequence: u64, done: &[u32]) -> SweepRuntime {
        SweepRuntime::new(record(sweep, sequence, 10, 4), Aggregate::empty(shape()), done)
    }

    /// A state with sweeps `a`.. inserted and workers `w`, `v`, `x` registered.
    fn state_with(sweeps: &[(&str, u64, &[u32])]) -> State {
        let mut state = State::new(0);
        for (sweep, sequence, done) in sweeps {
            state.insert(runtime(sweep, *sequence, done));
        }
        for name in ["w", "v", "x"] {
            registered(&mut state, name);
        }
        state
    }

    /// Register worker `name` with `state`.
    pub(crate) fn registered(state: &mut State, name: &str) -> WorkerId {
        let now = Instant::now();
        let id = worker(name);
        let info = WorkerInfo {
            id: id.clone(),
            hostname: "host".into(),
            threads: 1,
            registered: now,
            last_seen: now,
            jobs_delivered: 0,
            samples_delivered: 0,
        };
        state.register(info);
        id
    }

    #[test]
    fn leases_oldest_first_and_skips_done_jobs() {
        let mut state = state_with(&[("b", 2, &[]), ("a", 1, &[0])]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let jobs = state.lease(&worker("w"), 4, deadline, deadline, 0).unwrap();
        let got: Vec<_> = jobs.iter().map(|j| (j.lease.sweep().as_str(), j.lease.index())).collect();
        assert_eq!(got, vec![("a", 1), ("a", 2), ("b", 0), ("b", 1)]);
        assert_eq!(jobs[1].samples, 8..10);
        assert_eq!((jobs[1].sweep_samples, jobs[1].seed), (10, 1));
        let leases: Vec<u64> = jobs.iter().map(|j| j.lease.lease.0).collect();
        assert_eq!(leases, vec![1, 2, 3, 4]);
    }

    #[test]
    fn only_registered_workers_lease_heartbeat_deliver_or_fail() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let stranger = worker("wk-made-up");
        let unknown = Refusal::UnknownWorker(stranger.clone());
        assert_eq!(state.lease(&stranger, 1, now, now, 0), Err(unknown.clone()));
        assert_eq!(state.heartbeat(&stranger, &[lease("a", 0, 1)], now, now), Err(unknown.clone()));
        assert_eq!(state.check_delivery(&stranger, &lease("a", 0, 1)), Err(unknown.clone()));
        assert_eq!(state.fail_job(&stranger, &lease("a", 0, 1), "x", 1), Err(unknown));
        assert_eq!(state.sweep(&id("a")).unwrap().jobs_leased(), 0, "nothing was leased");
    }

    #[test]
    fn a_result_counts_only_from_the_holder_of_the_lease() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        let job = state.lease(&worker("w"), 1, now + Duration::from_secs(10), far, 0).unwrap().remove(0);
        assert_eq!(state.check_delivery(&worker("w"), &job.lease), Ok(()));
        // The right lease from another worker, a made-up lease from the
        // holder, and a job nobody was handed: refused.
        assert!(matches!(state.check_delivery(&worker("v"), &job.lease), Err(Refusal::NotHolder(_))));
        let made_up = lease("a", 0, job.lease.lease.0 + 7);
        assert!(matches!(state.check_delivery(&worker("w"), &made_up), Err(Refusal::NotHolder(_))));
        assert!(matches!(state.check_delivery(&worker("w"), &lease("a", 1, 1)), Err(Refusal::NotHolder(_))));
        assert!(matches!(state.check_delivery(&worker("w"), &lease("a", 9, 1)), Err(Refusal::NotHolder(_))));
        assert_eq!(state.check_delivery(&worker("w"), &lease("zz", 0, 1)), Err(Refusal::UnknownSweep(id("zz"))));
        // After expiry the last holder may still deliver, until the job is
        // leased again; then only the next holder may.
        assert!(state.expire(now + Duration::from_secs(11), 3).is_empty());
        assert_eq!(state.check_delivery(&worker("w"), &job.lease), Ok(()));
        let next = state.lease(&worker("v"), 1, now + Duration::from_secs(30), far, 0).unwrap().remove(0);
        assert_eq!(next.lease.index(), 0);
        assert!(matches!(state.check_delivery(&worker("w"), &job.lease), Err(Refusal::NotHolder(_))));
        assert_eq!(state.check_delivery(&worker("v"), &next.lease), Ok(()));
    }

    #[test]
    fn leases_of_an_answer_that_never_arrived_go_back_once_the_worker_says_the_call_ended() {
        let mut state = state_with(&[]);
        state.insert(SweepRuntime::new(record("a", 1, 40, 4), Aggregate::empty(shape()), &[]));
        let now = Instant::now();
        let (soon, far) = (now + Duration::from_secs(600), now + Duration::from_secs(3600));
        // Call 1's answer arrived; call 2's did not; call 3 is still out;
        // an unnumbered call (0) is never checked.
        let first = state.lease(&worker("w"), 1, soon, far, 1).unwrap().remove(0).lease;
        let lost = state.lease(&worker("w"), 2, soon, far, 2).unwrap();
        let (lost_a, lost_b) = (lost[0].lease.clone(), lost[1].lease.clone());
        let out = state.lease(&worker("w"), 1, soon, far, 3).unwrap().remove(0).lease;
        let unnumbered = state.lease(&worker("w"), 1, soon, far, 0).unwrap().remove(0).lease;
        let other = state.lease(&worker("v"), 1, soon, far, 1).unwrap().remove(0).lease;
        let leased = |state: &State, lease: &LeaseRef| {
            matches!(state.sweep(&id("a")).unwrap().job(lease.index()), Some(JobState::Leased { .. }))
        };
        // A worker's word about its calls moves only its own leases, and
        // none while the call that granted them may still be answered.
        assert_eq!(state.release_unreceived(&worker("w"), &[], 0), 0);
        assert_eq!(state.release_unreceived(&worker("x"), &[], 9), 0);
        let held = [first.clone(), unnumbered.clone()];
        assert_eq!(state.release_unreceived(&worker("w"), &held, 1), 0);
        assert!(leased(&state, &lost_a) && leased(&state, &lost_b));
        // Calls up to 2 ended, and the heartbeat names neither lease of
        // call 2: both go back, as expiries do (no failure, holder kept).
        assert_eq!(state.release_unreceived(&worker("w"), &held, 2), 2);
        for lease in [&lost_a, &lost_b] {
            assert!(matches!(
                state.sweep(&id("a")).unwrap().job(lease.index()),
                Some(JobState::Pending { failures: 0, last: Some(holder) }) if holder.worker == worker("w")
            ));
        }
        assert!([&first, &out, &unnumbered, &other].iter().all(|lease| leased(&state, lease)));
        assert_eq!(state.sweep(&id("a")).unwrap().jobs_leased(), 4);
        // Each lease is checked once: call 1's, confirmed, is not released
        // when a later heartbeat leaves it out (its job may have ended).
        assert_eq!(state.release_unreceived(&worker("w"), std::slice::from_ref(&out), 3), 0);
        assert_eq!(state.release_unreceived(&worker("w"), &[], 3), 0);
        assert!(leased(&state, &first) && leased(&state, &out));
        // The jobs are leased again first, and their old holder may still
        // deliver until then.
        assert_eq!(state.check_delivery(&worker("w"), &lost_a), Ok(()));
        let again: Vec<u32> =
            state.lease(&worker("x"), 2, soon, far, 0).unwrap().iter().map(|j| j.lease.index()).collect();
        assert_eq!(again, vec![lost_b.index(), lost_a.index()]);
    }

    #[test]
    fn lease_expiries_do_not_count_as_failures() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        // Twenty silent workers in a row: the job is requeued each time and
        // the sweep never fails.
        for round in 0..20u64 {
            let deadline = now + Duration::from_secs(round);
            let jobs = state.lease(&worker("w"), 1, deadline, far, 0).unwrap();
            assert_eq!(jobs[0].lease.index(), 0, "the expired job is leased again first");
            assert!(state.expire(deadline + Duration::from_millis(1), 3).is_empty(), "round {round}");
        }
        assert!(matches!(state.sweep(&id("a")).unwrap().job(0), Some(JobState::Pending { failures: 0, .. })));
    }

    #[test]
    fn jobs_past_the_maximum_job_time_count_and_fail_the_sweep() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        for round in 1..=3 {
            let jobs = state.lease(&worker("w"), 1, now, now, 0).unwrap();
            assert_eq!(jobs[0].lease.index(), 0);
            let failed = state.expire(now + Duration::from_millis(1), 3);
            if round < 3 {
                assert!(failed.is_empty());
            } else {
                assert_eq!(failed.len(), 1);
                assert_eq!(failed[0].0, id("a"));
                assert!(failed[0].1.contains("ran longer than the maximum job time 3 times"), "{failed:?}");
            }
        }
    }

    #[test]
    fn heartbeats_extend_only_leases_the_worker_holds() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        let soon = now + Duration::from_secs(10);
        let job = state.lease(&worker("w"), 1, soon, far, 0).unwrap().remove(0);
        let later = now + Duration::from_secs(60);
        // Job 1 is pending and was never leased: naming it adopts nothing.
        let abandon = state
            .heartbeat(&worker("w"), &[job.lease.clone(), lease("a", 1, 99), lease("zz", 0, 1)], later, far)
            .unwrap();
        assert_eq!(abandon, vec![lease("a", 1, 99), lease("zz", 0, 1)]);
        let a = state.sweep(&id("a")).unwrap();
        assert!(matches!(a.job(0), Some(JobState::Leased { deadline, .. }) if *deadline == later));
        assert!(matches!(a.job(1), Some(JobState::Pending { last: None, .. })));
        assert_eq!(a.jobs_leased(), 1);
        // Another worker naming the right lease extends nothing.
        let other = state.heartbeat(&worker("v"), std::slice::from_ref(&job.lease), far, far).unwrap();
        assert_eq!(other, vec![job.lease.clone()]);
        assert!(
            matches!(state.sweep(&id("a")).unwrap().job(0), Some(JobState::Leased { deadline, .. }) if *deadline == later)
        );
        // Expired, not leased since: its holder takes it back; nobody else can.
        assert!(state.expire(later + Duration::from_secs(1), 3).is_empty());
        let stolen = state.heartbeat(&worker("v"), std::slice::from_ref(&job.lease), far, far).unwrap();
        assert_eq!(stolen, vec![job.lease.clone()]);
        assert!(state.heartbeat(&worker("w"), std::slice::from_ref(&job.lease), far, far).unwrap().is_empty());
        let a = state.sweep(&id("a")).unwrap();
        assert!(matches!(a.job(0), Some(JobState::Leased { holder, .. }) if holder.worker == worker("w")));
        // The adopted job is not leased twice.
        let next = state.lease(&worker("x"), 10, later, far, 0).unwrap();
        assert!(next.iter().all(|j| j.lease.index() != 0), "{next:?}");
    }

    #[test]
    fn heartbeats_cannot_extend_a_lease_past_its_limit() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let limit = now + Duration::from_secs(30);
        let job = state.lease(&worker("w"), 1, now + Duration::from_secs(10), limit, 0).unwrap().remove(0);
        let abandon = state.heartbeat(&worker("w"), &[job.lease], now + Duration::from_secs(3600), limit).unwrap();
        assert!(abandon.is_empty());
        assert!(state.expire(now + Duration::from_secs(29), 3).is_empty());
        assert!(state.expire(now + Duration::from_secs(31), 3).is_empty(), "first failure is a retry");
        assert!(matches!(state.sweep(&id("a")).unwrap().job(0), Some(JobState::Pending { failures: 1, .. })));
    }

    #[test]
    fn only_the_holder_of_the_current_lease_can_fail_a_job() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let job = state.lease(&worker("w"), 1, now, now, 0).unwrap().remove(0);
        let stale = lease("a", 0, job.lease.lease.0 + 1);
        assert!(matches!(state.fail_job(&worker("w"), &stale, "stale", 1), Err(Refusal::NotHolder(_))));
        assert!(matches!(state.fail_job(&worker("v"), &job.lease, "not mine", 1), Err(Refusal::NotHolder(_))));
        assert_eq!(state.sweep(&id("a")).unwrap().jobs_leased(), 1, "a stale lease changes nothing");
        let reason = state.fail_job(&worker("w"), &job.lease, "no memory", 1).unwrap().expect("one attempt allowed");
        assert!(reason.contains("job 0 (samples 0..4) failed (no memory) 1 times"), "{reason}");
        assert_eq!(state.sweep(&id("a")).unwrap().jobs_leased(), 0);
    }

    #[test]
    fn silent_workers_holding_nothing_are_forgotten() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        state.lease(&worker("w"), 1, far, far, 0).unwrap();
        state.forget_silent_workers(now + Duration::from_secs(1000), Duration::from_secs(300));
        let left: Vec<String> = state.workers().iter().map(|(w, _)| w.id.as_str().to_owned()).collect();
        assert_eq!(left, vec!["w"], "the worker holding a lease stays");
        assert_eq!(state.workers()[0].1, 1);
        assert_eq!(state.lease(&worker("v"), 1, far, far, 0), Err(Refusal::UnknownWorker(worker("v"))));
    }

    #[test]
    fn publishing_a_final_record_stops_leasing_and_a_running_one_restarts_it() {
        let mut state = state_with(&[("a", 1, &[])]);
        let now = Instant::now();
        state.lease(&worker("w"), 1, now, now, 0).unwrap();
        let mut record = record("a", 1, 10, 4);
        let mut aggregate = Aggregate::empty(shape());
        aggregate.samples_ok = 4;
        record.stop(SweepState::Cancelled, "cancelled by request");
        let entry = BatchEntry {
            record: record.clone(),
            aggregate: Some(aggregate.clone()),
            base: None,
            delta: None,
            newly_done: vec![1],
            delete: false,
        };
        state.publish(entry);
        let a = state.sweep(&id("a")).unwrap();
        assert_eq!((a.jobs_done(), a.jobs_leased(), a.is_done(1)), (1, 0, true));
        assert_eq!(a.aggregate(), None, "a final sweep's aggregate stays in the store");
        assert_eq!((a.status().state, a.status().samples_done), (SweepState::Cancelled, 4));
        assert!(state.lease(&worker("w"), 4, now, now, 0).unwrap().is_empty(), "a cancelled sweep hands out nothing");
        // Resumed: the jobs not done are leased again, in order.
        record.state = SweepState::Running;
        record.reason.clear();
        state.publish(BatchEntry {
            record,
            aggregate: Some(aggregate.clone()),
            base: None,
            delta: None,
            newly_done: vec![],
            delete: false,
        });
        assert_eq!(state.sweep(&id("a")).unwrap().aggregate(), Some(&aggregate));
        let jobs = state.lease(&worker("w"), 4, now, now, 0).unwrap();
        let indices: Vec<u32> = jobs.iter().map(|j| j.lease.index()).collect();
        assert_eq!(indices, vec![0, 2]);
    }
}
