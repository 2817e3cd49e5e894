//! In-memory bookkeeping of sweeps and their jobs: pending, leased (to a
//! worker, until a deadline) or done. The database is the source of truth for
//! what is done; leases live only here, so a restart returns leased jobs to
//! pending, which is safe because results are deterministic (invariant 3).
//!
//! Fields are private: every change is one of [`State`]'s operations, and a
//! sweep's durable parts (record, aggregate, done jobs) change only through
//! [`State::publish`], after the committer stored them.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::time::Instant;

use zonesweep_proto::ids::{LeaseId, LeaseRef, SweepId, WorkerId};
use zonesweep_proto::status::SweepStatus;
use zonesweep_shared::sweep::aggregate::{Aggregate, Shape};

use crate::store::BatchEntry;
use crate::sweep::SweepRecord;

/// Where one job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Pending { attempts: u32 },
    Leased { lease: LeaseId, worker: WorkerId, deadline: Instant, attempts: u32, until: Instant },
    Done,
}

/// A sweep as the coordinator runs it.
#[derive(Clone, Debug)]
pub struct SweepRuntime {
    record: SweepRecord,
    jobs: Vec<JobState>,
    /// Pending job indices, the next to lease first.
    pending: VecDeque<u32>,
    /// The merged, durably committed aggregate.
    aggregate: Aggregate,
    /// Counts of done and leased jobs, kept with every change so a status
    /// costs nothing however many jobs a sweep has.
    done: u32,
    leased: u32,
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
        let mut jobs = vec![JobState::Pending { attempts: 0 }; record.jobs as usize];
        for &j in done {
            if let Some(job) = jobs.get_mut(j as usize) {
                *job = JobState::Done;
            }
        }
        let pending = if record.is_running() {
            (0..record.jobs).filter(|&j| jobs[j as usize] != JobState::Done).collect()
        } else {
            VecDeque::new()
        };
        let done = jobs.iter().filter(|j| **j == JobState::Done).count() as u32;
        SweepRuntime { record, jobs, pending, aggregate, done, leased: 0 }
    }

    pub fn id(&self) -> &SweepId {
        &self.record.id
    }

    pub fn record(&self) -> &SweepRecord {
        &self.record
    }

    /// The merged, durably committed aggregate.
    pub fn aggregate(&self) -> &Aggregate {
        &self.aggregate
    }

    /// The shape every result of this sweep has.
    pub fn shape(&self) -> &Shape {
        &self.aggregate.shape
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
        // Saturating: the submission bounds samples, but a range must never panic.
        let start = u64::from(index).saturating_mul(self.record.job_size).min(self.record.samples);
        start..start.saturating_add(self.record.job_size).min(self.record.samples)
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
        self.record.status(&self.aggregate, self.done, self.leased)
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
            if let JobState::Leased { attempts, .. } = self.jobs[index as usize] {
                self.set(index, JobState::Pending { attempts });
            }
        }
    }

    /// A job failed or its lease expired: back to pending, or, after
    /// `max_attempts`, the reason its sweep fails.
    fn retry_or_fail(&mut self, index: u32, attempts: u32, max_attempts: u32, why: &str) -> Option<String> {
        let attempts = attempts + 1;
        self.set(index, JobState::Pending { attempts });
        // Requeued even when giving up: should the sweep's failure not be
        // stored, the job is run again rather than forgotten.
        self.pending.push_front(index);
        if attempts >= max_attempts {
            let range = self.job_range(index);
            Some(format!("job {index} (samples {}..{}) {why} {attempts} times; giving up", range.start, range.end))
        } else {
            None
        }
    }
}

/// Every sweep, in submission order, and the lease counter.
#[derive(Debug, Default)]
pub struct State {
    sweeps: BTreeMap<SweepId, SweepRuntime>,
    /// Sweep ids by sequence: older sweeps are served first.
    order: Vec<SweepId>,
    next_lease: u64,
}

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

    /// Every sweep's status, in submission order.
    pub fn statuses(&self) -> Vec<SweepStatus> {
        self.order.iter().map(|id| self.sweeps[id].status()).collect()
    }

    /// Lease up to `capacity` pending jobs to `worker`, oldest sweep first.
    /// Heartbeats extend a lease to `deadline`-like times, but never past
    /// `until`: a job whose samples hang cannot hold its lease forever.
    pub fn lease(&mut self, worker: &WorkerId, capacity: usize, deadline: Instant, until: Instant) -> Vec<LeasedJob> {
        let mut leased = Vec::new();
        for id in &self.order {
            let sweep = self.sweeps.get_mut(id).expect("ordered ids are present");
            while leased.len() < capacity && sweep.is_running() {
                let Some(index) = sweep.pending.pop_front() else { break };
                let attempts = match sweep.jobs[index as usize] {
                    JobState::Pending { attempts } => attempts,
                    // Stale queue entry (done or leased meanwhile): skip it.
                    _ => continue,
                };
                self.next_lease += 1;
                let lease = LeaseId(self.next_lease);
                let job = JobState::Leased { lease, worker: worker.clone(), deadline, attempts, until };
                sweep.set(index, job);
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
        leased
    }

    /// Extend the leases a worker still holds; returns those it should
    /// abandon. A job the worker holds that is pending again (its lease
    /// expired, or the coordinator restarted) is given back to it rather
    /// than thrown away, since its result will be the same.
    pub fn heartbeat(
        &mut self,
        worker: &WorkerId,
        leases: &[LeaseRef],
        deadline: Instant,
        until: Instant,
    ) -> Vec<LeaseRef> {
        let mut abandon = Vec::new();
        for held in leases {
            let Some(sweep) = self.sweeps.get_mut(held.sweep()) else {
                abandon.push(held.clone());
                continue;
            };
            let running = sweep.is_running();
            let index = held.index();
            match sweep.jobs.get_mut(index as usize) {
                Some(JobState::Leased { lease, deadline: d, until: limit, .. }) if *lease == held.lease => {
                    *d = deadline.min(*limit);
                }
                Some(JobState::Pending { attempts }) if running => {
                    let attempts = *attempts;
                    let job = JobState::Leased { lease: held.lease, worker: worker.clone(), deadline, attempts, until };
                    sweep.set(index, job);
                }
                _ => abandon.push(held.clone()),
            }
        }
        abandon
    }

    /// A worker reports that it could not run a job: back to pending, or,
    /// after `max_attempts`, the reason its sweep fails. A lease that is
    /// not current changes nothing.
    pub fn fail_job(&mut self, lease: &LeaseRef, reason: &str, max_attempts: u32) -> Option<String> {
        let sweep = self.sweeps.get_mut(lease.sweep())?;
        match sweep.job(lease.index()) {
            Some(JobState::Leased { lease: held, attempts, .. }) if *held == lease.lease => {
                let attempts = *attempts;
                sweep.retry_or_fail(lease.index(), attempts, max_attempts, &format!("failed ({reason})"))
            }
            _ => None,
        }
    }

    /// Return expired leases to pending; returns (sweep, reason) for sweeps
    /// whose jobs expired too often.
    pub fn expire(&mut self, now: Instant, max_attempts: u32) -> Vec<(SweepId, String)> {
        let mut failed = Vec::new();
        for (id, sweep) in &mut self.sweeps {
            if sweep.leased == 0 {
                continue;
            }
            let expired: Vec<(u32, u32)> = sweep
                .jobs
                .iter()
                .enumerate()
                .filter_map(|(i, job)| match job {
                    JobState::Leased { deadline, attempts, .. } if *deadline <= now => Some((i as u32, *attempts)),
                    _ => None,
                })
                .collect();
            for (index, attempts) in expired {
                if let Some(reason) = sweep.retry_or_fail(index, attempts, max_attempts, "lease expired") {
                    failed.push((id.clone(), reason));
                }
            }
        }
        failed
    }

    /// Publish what the committer durably stored: the sweep's new record
    /// and aggregate, its newly done jobs, and, when the record is final
    /// now, no more leasing.
    pub fn publish(&mut self, committed: BatchEntry) {
        let Some(current) = self.sweeps.get_mut(&committed.record.id) else { return };
        for &j in &committed.newly_done {
            current.mark_done(j);
        }
        if current.is_running() && !committed.record.is_running() {
            current.stop_leasing();
        }
        current.record = committed.record;
        current.aggregate = committed.aggregate;
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
        }
    }

    pub(crate) fn shape() -> Shape {
        Shape { n_units: 1, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 }
    }

    /// A sweep of 10 samples in jobs of 4 (jobs 0, 1, 2).
    fn runtime(sweep: &str, sequence: u64, done: &[u32]) -> SweepRuntime {
        SweepRuntime::new(record(sweep, sequence, 10, 4), Aggregate::empty(shape()), done)
    }

    #[test]
    fn leases_oldest_first_and_skips_done_jobs() {
        let mut state = State::new(0);
        state.insert(runtime("b", 2, &[]));
        state.insert(runtime("a", 1, &[0]));
        let deadline = Instant::now() + Duration::from_secs(10);
        let jobs = state.lease(&worker("w"), 4, deadline, deadline);
        let got: Vec<_> = jobs.iter().map(|j| (j.lease.sweep().as_str(), j.lease.index())).collect();
        assert_eq!(got, vec![("a", 1), ("a", 2), ("b", 0), ("b", 1)]);
        assert_eq!(jobs[1].samples, 8..10);
        assert_eq!((jobs[1].sweep_samples, jobs[1].seed), (10, 1));
        let leases: Vec<u64> = jobs.iter().map(|j| j.lease.lease.0).collect();
        assert_eq!(leases, vec![1, 2, 3, 4]);
    }

    #[test]
    fn expiry_returns_jobs_then_fails_the_sweep() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        for round in 1..=3 {
            let jobs = state.lease(&worker("w"), 1, now, now);
            assert_eq!(jobs[0].lease.index(), 0, "the expired job is leased again first");
            let failed = state.expire(now + Duration::from_millis(1), 3);
            if round < 3 {
                assert!(failed.is_empty());
            } else {
                assert_eq!(failed.len(), 1);
                assert_eq!(failed[0].0, id("a"));
                assert!(failed[0].1.contains("lease expired 3 times"), "{failed:?}");
            }
        }
    }

    #[test]
    fn heartbeats_extend_only_current_leases() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        let far = now + Duration::from_secs(3600);
        let job = state.lease(&worker("w"), 1, now, far).remove(0);
        let later = now + Duration::from_secs(60);
        // Job 1 is pending: the worker that names it (after a restart, say) keeps it.
        let abandon =
            state.heartbeat(&worker("w"), &[job.lease.clone(), lease("a", 1, 99), lease("zz", 0, 1)], later, far);
        assert_eq!(abandon, vec![lease("zz", 0, 1)]);
        assert!(state.expire(now + Duration::from_secs(1), 3).is_empty());
        let a = state.sweep(&id("a")).unwrap();
        assert!(matches!(a.job(0), Some(JobState::Leased { .. })));
        assert!(matches!(a.job(1), Some(JobState::Leased { lease: LeaseId(99), .. })));
        assert_eq!(a.jobs_leased(), 2);
        // Leased to another: abandon.
        let other = state.heartbeat(&worker("v"), &[lease("a", 1, 5)], later, far);
        assert_eq!(other, vec![lease("a", 1, 5)]);
        // The adopted job is not leased twice.
        let next = state.lease(&worker("x"), 10, later, far);
        assert!(next.iter().all(|j| j.lease.index() != 1), "{next:?}");
    }

    #[test]
    fn heartbeats_cannot_extend_a_lease_past_its_limit() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        let limit = now + Duration::from_secs(30);
        let job = state.lease(&worker("w"), 1, now + Duration::from_secs(10), limit).remove(0);
        let abandon = state.heartbeat(&worker("w"), &[job.lease], now + Duration::from_secs(3600), limit);
        assert!(abandon.is_empty());
        assert!(state.expire(now + Duration::from_secs(29), 3).is_empty());
        assert!(state.expire(now + Duration::from_secs(31), 3).is_empty(), "first expiry is a retry");
        assert!(matches!(state.sweep(&id("a")).unwrap().job(0), Some(JobState::Pending { attempts: 1 })));
    }

    #[test]
    fn only_the_current_lease_can_fail_a_job() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        let job = state.lease(&worker("w"), 1, now, now).remove(0);
        assert_eq!(state.fail_job(&lease("a", 0, job.lease.lease.0 + 1), "stale", 1), None);
        assert_eq!(state.sweep(&id("a")).unwrap().jobs_leased(), 1, "a stale lease changes nothing");
        let reason = state.fail_job(&job.lease, "no memory", 1).expect("one attempt allowed");
        assert!(reason.contains("job 0 (samples 0..4) failed (no memory) 1 times"), "{reason}");
        assert_eq!(state.sweep(&id("a")).unwrap().jobs_leased(), 0);
    }

    #[test]
    fn publishing_a_final_record_stops_leasing() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        state.lease(&worker("w"), 1, now, now);
        let mut record = record("a", 1, 10, 4);
        let mut aggregate = Aggregate::empty(shape());
        aggregate.samples_ok = 4;
        record.stop(SweepState::Cancelled, "cancelled by request");
        state.publish(BatchEntry { record, aggregate: aggregate.clone(), newly_done: vec![1] });
        let a = state.sweep(&id("a")).unwrap();
        assert_eq!((a.jobs_done(), a.jobs_leased(), a.is_done(1)), (1, 0, true));
        assert_eq!(a.aggregate(), &aggregate);
        assert_eq!(a.status().state, SweepState::Cancelled);
        assert!(state.lease(&worker("w"), 4, now, now).is_empty(), "a cancelled sweep hands out nothing");
    }
}
