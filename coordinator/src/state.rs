//! In-memory bookkeeping of sweeps and their jobs: pending, leased (to a
//! worker, until a deadline) or done. The database is the source of truth for
//! what is done; leases live only here, so a restart returns leased jobs to
//! pending, which is safe because results are deterministic.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::time::Instant;

use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::store::{SweepRecord, SweepState};

/// Where one job stands.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    Pending { attempts: u32 },
    Leased { lease: u64, worker: String, deadline: Instant, attempts: u32, until: Instant },
    Done,
}

/// A sweep as the coordinator runs it.
#[derive(Clone, Debug)]
pub struct SweepRuntime {
    pub record: SweepRecord,
    pub jobs: Vec<JobState>,
    /// Pending job indices, the next to lease first.
    pub pending: VecDeque<u32>,
    /// The merged, durably committed aggregate.
    pub aggregate: Aggregate,
    /// Counts of done and leased jobs, kept with every change so a status
    /// costs nothing however many jobs a sweep has.
    done: u32,
    leased: u32,
}

/// A job handed to a worker.
#[derive(Clone, Debug, PartialEq)]
pub struct LeasedJob {
    pub sweep_id: String,
    pub job_index: u32,
    pub lease: u64,
    pub samples: Range<u64>,
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
        let pending = if record.state == SweepState::Running {
            (0..record.jobs).filter(|&j| jobs[j as usize] != JobState::Done).collect()
        } else {
            VecDeque::new()
        };
        let done = jobs.iter().filter(|j| **j == JobState::Done).count() as u32;
        SweepRuntime { record, jobs, pending, aggregate, done, leased: 0 }
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
    pub fn mark_done(&mut self, index: u32) {
        if (index as usize) < self.jobs.len() {
            self.set(index, JobState::Done);
        }
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
        self.record.state == SweepState::Running
    }

    /// Stop handing out work (cancelled or failed).
    pub fn stop(&mut self, state: SweepState, reason: String) {
        self.record.state = state;
        self.record.reason = reason;
        self.pending.clear();
        for index in 0..self.jobs.len() as u32 {
            if let JobState::Leased { attempts, .. } = self.jobs[index as usize] {
                self.set(index, JobState::Pending { attempts });
            }
        }
    }
}

/// Every sweep, in submission order.
#[derive(Debug, Default)]
pub struct State {
    pub sweeps: BTreeMap<String, SweepRuntime>,
    /// Sweep ids by sequence: older sweeps are served first.
    pub order: Vec<String>,
    next_lease: u64,
}

impl State {
    pub fn new(first_lease: u64) -> State {
        State { next_lease: first_lease, ..State::default() }
    }

    pub fn insert(&mut self, runtime: SweepRuntime) {
        let id = runtime.record.id.clone();
        let sequence = runtime.record.sequence;
        let position = self
            .order
            .iter()
            .position(|other| self.sweeps[other].record.sequence > sequence)
            .unwrap_or(self.order.len());
        self.order.insert(position, id.clone());
        self.sweeps.insert(id, runtime);
    }

    /// Lease up to `capacity` pending jobs to `worker`, oldest sweep first.
    /// Heartbeats extend a lease to `deadline`-like times, but never past
    /// `until`: a job whose samples hang cannot hold its lease forever.
    pub fn lease(&mut self, worker: &str, capacity: usize, deadline: Instant, until: Instant) -> Vec<LeasedJob> {
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
                let lease = self.next_lease;
                sweep.set(index, JobState::Leased { lease, worker: worker.to_owned(), deadline, attempts, until });
                leased.push(LeasedJob {
                    sweep_id: id.clone(),
                    job_index: index,
                    lease,
                    samples: sweep.job_range(index),
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
        worker: &str,
        leases: &[(String, u32, u64)],
        deadline: Instant,
        until: Instant,
    ) -> Vec<(String, u32, u64)> {
        let mut abandon = Vec::new();
        for (sweep_id, index, lease) in leases {
            let Some(sweep) = self.sweeps.get_mut(sweep_id) else {
                abandon.push((sweep_id.clone(), *index, *lease));
                continue;
            };
            let running = sweep.is_running();
            match sweep.jobs.get_mut(*index as usize) {
                Some(JobState::Leased { lease: held, deadline: d, until: limit, .. }) if held == lease => {
                    *d = deadline.min(*limit);
                }
                Some(JobState::Pending { attempts }) if running => {
                    let attempts = *attempts;
                    let job = JobState::Leased { lease: *lease, worker: worker.to_owned(), deadline, attempts, until };
                    sweep.set(*index, job);
                }
                _ => abandon.push((sweep_id.clone(), *index, *lease)),
            }
        }
        abandon
    }

    /// A job failed or its lease expired: back to pending, or, after
    /// `max_attempts`, the reason its sweep fails.
    fn retry_or_fail(
        sweep: &mut SweepRuntime,
        index: u32,
        attempts: u32,
        max_attempts: u32,
        why: &str,
    ) -> Option<String> {
        let attempts = attempts + 1;
        sweep.set(index, JobState::Pending { attempts });
        // Requeued even when giving up: should the sweep's failure not be
        // stored, the job is run again rather than forgotten.
        sweep.pending.push_front(index);
        if attempts >= max_attempts {
            let range = sweep.job_range(index);
            Some(format!("job {index} (samples {}..{}) {why} {attempts} times; giving up", range.start, range.end))
        } else {
            None
        }
    }

    /// A worker reports that it could not run a job.
    pub fn fail_job(
        &mut self,
        sweep_id: &str,
        index: u32,
        lease: u64,
        reason: &str,
        max_attempts: u32,
    ) -> Option<String> {
        let sweep = self.sweeps.get_mut(sweep_id)?;
        match sweep.jobs.get(index as usize) {
            Some(JobState::Leased { lease: held, attempts, .. }) if *held == lease => {
                let attempts = *attempts;
                Self::retry_or_fail(sweep, index, attempts, max_attempts, &format!("failed ({reason})"))
            }
            _ => None,
        }
    }

    /// Return expired leases to pending; returns (sweep, reason) for sweeps
    /// whose jobs expired too often.
    pub fn expire(&mut self, now: Instant, max_attempts: u32) -> Vec<(String, String)> {
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
                if let Some(reason) = Self::retry_or_fail(sweep, index, attempts, max_attempts, "lease expired") {
                    failed.push((id.clone(), reason));
                }
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use zonesweep_shared::sweep::aggregate::Shape;

    use super::*;

    fn record(id: &str, sequence: u64, samples: u64, job_size: u64) -> SweepRecord {
        SweepRecord {
            id: id.into(),
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

    fn runtime(id: &str, sequence: u64, done: &[u32]) -> SweepRuntime {
        let shape = Shape { n_units: 1, n_zones: 5, base_year: 2020, milestone: 2030, horizon: 2060 };
        SweepRuntime::new(record(id, sequence, 10, 4), Aggregate::empty(shape), done)
    }

    #[test]
    fn leases_oldest_first_and_skips_done_jobs() {
        let mut state = State::new(0);
        state.insert(runtime("b", 2, &[]));
        state.insert(runtime("a", 1, &[0]));
        let deadline = Instant::now() + Duration::from_secs(10);
        let jobs = state.lease("w", 4, deadline, deadline);
        let got: Vec<_> = jobs.iter().map(|j| (j.sweep_id.as_str(), j.job_index)).collect();
        assert_eq!(got, vec![("a", 1), ("a", 2), ("b", 0), ("b", 1)]);
        assert_eq!(jobs[1].samples, 8..10);
        let leases: Vec<u64> = jobs.iter().map(|j| j.lease).collect();
        assert_eq!(leases, vec![1, 2, 3, 4]);
    }

    #[test]
    fn expiry_returns_jobs_then_fails_the_sweep() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        for round in 1..=3 {
            let jobs = state.lease("w", 1, now, now);
            assert_eq!(jobs[0].job_index, 0, "the expired job is leased again first");
            let failed = state.expire(now + Duration::from_millis(1), 3);
            if round < 3 {
                assert!(failed.is_empty());
            } else {
                assert_eq!(failed.len(), 1);
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
        let job = state.lease("w", 1, now, far).remove(0);
        let later = now + Duration::from_secs(60);
        // Job 1 is pending: the worker that names it (after a restart, say) keeps it.
        let abandon =
            state.heartbeat("w", &[("a".into(), 0, job.lease), ("a".into(), 1, 99), ("zz".into(), 0, 1)], later, far);
        assert_eq!(abandon, vec![("zz".to_owned(), 0, 1)]);
        assert!(state.expire(now + Duration::from_secs(1), 3).is_empty());
        assert!(matches!(state.sweeps["a"].jobs[0], JobState::Leased { .. }));
        assert!(matches!(state.sweeps["a"].jobs[1], JobState::Leased { lease: 99, .. }));
        assert_eq!(state.sweeps["a"].jobs_leased(), 2);
        // Leased to another: abandon.
        let other = state.heartbeat("v", &[("a".into(), 1, 5)], later, far);
        assert_eq!(other.len(), 1);
        // The adopted job is not leased twice.
        let next = state.lease("x", 10, later, far);
        assert!(next.iter().all(|j| j.job_index != 1), "{next:?}");
    }

    #[test]
    fn heartbeats_cannot_extend_a_lease_past_its_limit() {
        let mut state = State::new(0);
        state.insert(runtime("a", 1, &[]));
        let now = Instant::now();
        let limit = now + Duration::from_secs(30);
        let job = state.lease("w", 1, now + Duration::from_secs(10), limit).remove(0);
        let abandon = state.heartbeat("w", &[("a".into(), 0, job.lease)], now + Duration::from_secs(3600), limit);
        assert!(abandon.is_empty());
        assert!(state.expire(now + Duration::from_secs(29), 3).is_empty());
        assert!(state.expire(now + Duration::from_secs(31), 3).is_empty(), "first expiry is a retry");
        assert!(matches!(state.sweeps["a"].jobs[0], JobState::Pending { attempts: 1 }));
    }
}
