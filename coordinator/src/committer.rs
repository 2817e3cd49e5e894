//! The committer: the single writer of the database, and the heart of
//! invariant 2 (nothing acknowledged is lost, nothing merged twice).
//!
//! Its loop takes every queued `Command` (up to `max_batch`) and handles
//! them as one batch in three steps:
//!
//! 1. [`plan`] (pure): decide each change against the current [`State`] —
//!    merge, already merged, sweep closed, refused, unknown sweep, stop —
//!    and build the sweeps' new records and aggregates on copies;
//! 2. store the copies in one durable transaction ([`Store::commit_batch`],
//!    a group commit) on a blocking thread;
//! 3. [`settle`] (pure): only if that succeeded, publish the copies to the
//!    state and answer each change by its decision; otherwise change
//!    nothing and answer every change "not stored", so workers keep their
//!    results and retry, and stops the coordinator decided are queued again.
//!
//! [`check_result`] is what a result must satisfy before it is queued at all.
//!
//! [`Store::commit_batch`]: crate::store::Store::commit_batch

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use zonesweep_proto::ids::{JobId, SweepId};
use zonesweep_proto::status::SweepState;
use zonesweep_shared::sweep::aggregate::Aggregate;
use zonesweep_shared::sweep::sensitivity::SensitivitySums;
use zonesweep_shared::sweep::sparse::SparseAggregate;

use crate::error::CoordinatorError;
use crate::service::{Coordinator, blocking};
use crate::state::{JobState, State, SweepRuntime};
use crate::store::{BatchEntry, StoreCause};
use crate::sweep::SweepRecord;

/// A durable change asked of the committer.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Merge a job's result, already checked by [`check_result`], from the
    /// worker named (`host/worker-id`, for the sweep's provenance).
    /// The result stays sparse ([`SparseAggregate`]): it is merged into the
    /// batch's delta entry by entry.
    Complete { job: JobId, aggregate: Box<SparseAggregate>, worker: String },
    /// End a running sweep: cancelled by a client, or failed.
    Stop { sweep: SweepId, state: SweepState, reason: String },
    /// Run a failed or cancelled sweep again from its stored aggregate (read
    /// from the store by the caller: a final sweep's is not in memory).
    Resume { sweep: SweepId, aggregate: Box<Aggregate> },
    /// Remove a final sweep and everything stored of it.
    Delete { sweep: SweepId },
    /// Add samples to a done sweep, from its stored aggregate (read by the
    /// caller), with the spec rewritten for the new total (stored by the
    /// caller under `spec_hash`).
    /// `from` is the sample count the caller saw: should the sweep have
    /// changed since, the change is refused (the spec was written for it).
    Extend { sweep: SweepId, from: u64, samples: u64, spec_hash: String, aggregate: Box<Aggregate> },
}

impl Change {
    fn sweep(&self) -> &SweepId {
        match self {
            Change::Complete { job, .. } => &job.sweep,
            Change::Stop { sweep, .. }
            | Change::Resume { sweep, .. }
            | Change::Delete { sweep }
            | Change::Extend { sweep, .. } => sweep,
        }
    }
}

/// The answer to a change: for a completion, whether it was merged now
/// (`false`: merged before); for a stop, `true`.
pub type Answer = Result<bool, CoordinatorError>;

/// A change and who waits for its answer: nobody, for a stop the
/// coordinator decided itself (which is queued again if not stored).
pub(crate) struct Command {
    pub change: Change,
    pub reply: Option<oneshot::Sender<Answer>>,
}

/// What the planner decided for one change of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Merged into the batch; acknowledged once the batch is stored.
    Merge,
    /// Merged before, or earlier in this batch: "not merged again".
    AlreadyMerged,
    /// The sweep no longer takes results: cancelled, failed or done.
    SweepClosed(SweepId, SweepState),
    /// The result cannot be merged, and why.
    Refused(String),
    /// No such sweep.
    UnknownSweep(SweepId),
    /// The sweep ends (one already final keeps its end), runs again, is
    /// deleted, or has samples added.
    Stop,
    Resume,
    Delete,
    Extend,
    /// The change does not apply to the sweep as it stands, and why.
    NotNow(String),
}

impl Decision {
    /// The answer to a change with this decision, once its batch is stored.
    fn answer(&self) -> Answer {
        match self {
            Decision::Merge | Decision::Stop | Decision::Resume | Decision::Delete | Decision::Extend => Ok(true),
            Decision::NotNow(why) => Err(CoordinatorError::FailedPrecondition(why.clone())),
            Decision::AlreadyMerged => Ok(false),
            Decision::SweepClosed(id, state) => Err(CoordinatorError::FailedPrecondition(format!(
                "sweep {id} is {state}; its results are no longer taken"
            ))),
            Decision::Refused(why) => Err(CoordinatorError::InvalidArgument(why.clone())),
            Decision::UnknownSweep(id) => Err(CoordinatorError::NotFound(format!("sweep {id}"))),
        }
    }
}

/// A planned batch: one decision per change, and what to store — an entry
/// per sweep the batch changes, with its new record and aggregate and the
/// jobs it newly merges.
#[derive(Debug)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub entries: Vec<BatchEntry>,
}

/// A sweep's durable parts as the batch leaves them (copies: the state
/// changes only once they are stored). Neither the job table nor the merged
/// aggregate is copied: they can be large, and the state's tell what was
/// done before the batch; the batch's new results are merged into `delta`.
struct Draft<'a> {
    sweep: &'a SweepRuntime,
    record: SweepRecord,
    /// The stored aggregate a resumption or extension brings, replacing
    /// the sweep's; `None` while the batch leaves it as it is.
    replace: Option<Aggregate>,
    /// The merge of the results the batch newly merges; the log histograms
    /// of those in `pending_logs` are still to be added to it.
    delta: Option<Aggregate>,
    /// Results merged into `delta` but for their log histograms, which are
    /// added all at once ([`Draft::add_pending_logs`]).
    pending_logs: Vec<&'a SparseAggregate>,
    newly_done: BTreeSet<u32>,
    delete: bool,
    /// Write the merged aggregate before the batch as the sweep's new
    /// checkpoint once this many deltas follow its last one.
    checkpoint_every: u32,
}

/// An aggregate with nothing merged, of `like`'s shape and sensitivity groups.
fn empty_like(like: &Aggregate) -> Aggregate {
    let mut empty = Aggregate::empty(like.shape);
    empty.sensitivity = like.sensitivity.as_ref().map(|s| SensitivitySums::zeros(&like.shape, s.groups.clone()));
    empty
}

impl<'a> Draft<'a> {
    fn of(sweep: &'a SweepRuntime, checkpoint_every: u32) -> Draft<'a> {
        Draft {
            sweep,
            record: sweep.record().clone(),
            replace: None,
            delta: None,
            pending_logs: Vec::new(),
            newly_done: BTreeSet::new(),
            delete: false,
            checkpoint_every,
        }
    }

    /// Add the log histograms of the results merged since the last call.
    fn add_pending_logs(&mut self) {
        if let Some(delta) = &mut self.delta
            && !self.pending_logs.is_empty()
        {
            delta.add_sparse_logs(&self.pending_logs);
        }
        self.pending_logs.clear();
    }

    /// The merged aggregate before the batch's new results.
    fn base(&self) -> Option<&Aggregate> {
        self.replace.as_ref().or(self.sweep.aggregate())
    }

    fn resume(&mut self, stored: &Aggregate) -> Decision {
        if self.delete {
            return Decision::NotNow(format!("sweep {} is being deleted", self.record.id));
        }
        let done = self.sweep.jobs_done() + self.newly_done.len() as u32;
        if let Err(why) = self.record.check_resumable(done) {
            return if self.record.is_running() { Decision::Resume } else { Decision::NotNow(why) };
        }
        self.record.resume();
        self.replace = Some(stored.clone());
        Decision::Resume
    }

    fn delete(&mut self) -> Decision {
        if self.record.is_running() {
            return Decision::NotNow(format!("sweep {} is running; cancel it first", self.record.id));
        }
        self.delete = true;
        Decision::Delete
    }

    fn extend(&mut self, from: u64, samples: u64, spec_hash: &str, stored: &Aggregate) -> Decision {
        let id = &self.record.id;
        if self.delete {
            return Decision::NotNow(format!("sweep {id} is being deleted"));
        }
        if self.record.state != SweepState::Done {
            return Decision::NotNow(match self.record.state {
                SweepState::Running => format!("sweep {id} is running; extend it once it is done"),
                state => format!("sweep {id} is {state}; resume it (`zonesweep resume {id}`) before extending it"),
            });
        }
        if self.record.samples != from {
            return Decision::NotNow(format!(
                "sweep {id} changed meanwhile (it has {} samples now, not {from}); extend it again",
                self.record.samples
            ));
        }
        match self.record.extend(samples, spec_hash) {
            Ok(()) => {
                // A done sweep's batch has merged nothing, so the stored
                // aggregate is the whole of it.
                self.replace = Some(stored.clone());
                self.delta = None;
                self.pending_logs.clear();
                Decision::Extend
            }
            Err(why) => Decision::NotNow(why),
        }
    }

    fn complete(&mut self, index: u32, result: &'a SparseAggregate, worker: &str) -> Decision {
        let id = self.sweep.id();
        if self.sweep.job(index).is_none() {
            return Decision::Refused(format!("sweep {id} has {} jobs; there is no job {index}", self.record.jobs));
        }
        if self.sweep.is_done(index) || self.newly_done.contains(&index) {
            return Decision::AlreadyMerged;
        }
        if !self.record.is_running() || self.delete {
            return Decision::SweepClosed(id.clone(), self.record.state);
        }
        let Some(base) = self.replace.as_ref().or(self.sweep.aggregate()) else {
            return Decision::Refused(format!("sweep {id} has no merged results in memory"));
        };
        let delta = self.delta.get_or_insert_with(|| empty_like(base));
        // `merge` checks the shape and every length before it changes
        // anything, so a refused result leaves the delta as it was; the
        // delta has the sweep's shape and groups, so what merges into it
        // merges into the sweep's aggregate.
        let merged = delta.merge_sparse_but_logs(result);
        let samples_ok = base.samples_ok + delta.samples_ok;
        if let Err(e) = merged {
            return Decision::Refused(format!("the result does not merge: {e}"));
        }
        self.pending_logs.push(result);
        self.newly_done.insert(index);
        self.record.provenance.contributed(worker);
        let done = self.sweep.jobs_done() + self.newly_done.len() as u32;
        let last = done == self.record.jobs;
        let block_end = !last && self.record.block_end(done.saturating_sub(1)) == done;
        if !(last || block_end || self.record.provenance.convergence_due(samples_ok, false)) {
            return Decision::Merge;
        }
        // The sweep's whole aggregate with the batch's results: copied only
        // at its end, a block's end, and a point of its convergence history.
        self.add_pending_logs();
        let Some(mut aggregate) = self.base().cloned() else {
            return Decision::Refused(format!("sweep {id} has no merged results in memory"));
        };
        if let Some(delta) = &self.delta
            && let Err(e) = aggregate.merge(delta)
        {
            return Decision::Refused(format!("the result does not merge: {e}"));
        }
        if last {
            self.record.finish(&aggregate);
        } else if block_end {
            // The last job of a block: every job before it is merged (only
            // one block is leased at a time), so `aggregate` holds exactly
            // the samples of the blocks so far, whatever the cluster.
            if let Some(half_width) = self.record.reached_target(&aggregate) {
                self.record.stop_early(done, &aggregate, half_width);
            }
        }
        let ended = !self.record.is_running();
        self.record.provenance.record_convergence(&aggregate, ended);
        Decision::Merge
    }

    /// The entry to store, if the batch changed this sweep.
    fn into_entry(mut self) -> Option<BatchEntry> {
        self.add_pending_logs();
        let changed = !self.newly_done.is_empty() || self.record != *self.sweep.record() || self.delete;
        if !changed {
            return None;
        }
        // A delta merges the batch's new results only; a batch whose every
        // result was refused stores none.
        let mut delta = self.delta.filter(|_| !self.newly_done.is_empty());
        let mut replace = self.replace;
        // A sweep that ends is stored whole, as one checkpoint: its
        // aggregate is read from the store from now on (copied once).
        let ends = self.sweep.is_running() && !self.record.is_running() && !self.delete;
        if ends
            && replace.is_none()
            && let Some(mut whole) = self.sweep.aggregate().cloned()
            && delta.as_ref().is_none_or(|d| whole.merge(d).is_ok())
        {
            replace = Some(whole);
            delta = None;
        }
        // Checkpoint the aggregate before this batch (shared, not copied)
        // once enough deltas follow the last checkpoint, so they stay few.
        let base = match (&replace, &delta) {
            (None, Some(_)) if self.sweep.stored_deltas() >= self.checkpoint_every => {
                self.sweep.shared_aggregate().cloned()
            }
            _ => None,
        };
        Some(BatchEntry {
            record: self.record,
            aggregate: replace,
            base,
            delta,
            newly_done: self.newly_done.into_iter().collect(),
            delete: self.delete,
        })
    }
}

/// Decide every change of a batch, in order, against `state`; pure.
pub fn plan(state: &State, changes: &[Change]) -> Plan {
    plan_with(state, changes, DEFAULT_CHECKPOINT_EVERY)
}

/// The deltas a sweep's checkpoint is followed by at most, but for the
/// batch being stored, by default.
pub const DEFAULT_CHECKPOINT_EVERY: u32 = 64;

/// [`plan`], writing a sweep's checkpoint once `checkpoint_every` deltas
/// follow its last.
pub fn plan_with(state: &State, changes: &[Change], checkpoint_every: u32) -> Plan {
    let mut drafts: BTreeMap<SweepId, Draft<'_>> = BTreeMap::new();
    let mut decisions = Vec::with_capacity(changes.len());
    for change in changes {
        let id = change.sweep();
        let Some(sweep) = state.sweep(id) else {
            decisions.push(Decision::UnknownSweep(id.clone()));
            continue;
        };
        let draft = drafts.entry(id.clone()).or_insert_with(|| Draft::of(sweep, checkpoint_every));
        decisions.push(match change {
            Change::Complete { job, aggregate, worker } => draft.complete(job.index, aggregate, worker),
            Change::Extend { from, samples, spec_hash, aggregate, .. } => {
                draft.extend(*from, *samples, spec_hash, aggregate)
            }
            Change::Stop { state: end, reason, .. } => {
                draft.record.stop(*end, reason);
                Decision::Stop
            }
            Change::Resume { aggregate, .. } => draft.resume(aggregate),
            Change::Delete { .. } => draft.delete(),
        });
    }
    Plan { decisions, entries: drafts.into_values().filter_map(Draft::into_entry).collect() }
}

/// Why a batch was not stored: every change in it is answered with this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitFailure {
    pub cause: StoreCause,
    pub message: String,
}

impl From<CoordinatorError> for CommitFailure {
    fn from(error: CoordinatorError) -> CommitFailure {
        match error {
            CoordinatorError::Store(store) => CommitFailure { cause: store.cause(), message: store.to_string() },
            // A storage task that panicked: a bug, not bad luck.
            other => CommitFailure { cause: StoreCause::Refused, message: other.to_string() },
        }
    }
}

/// Settle a planned batch: once `stored`, publish its entries to `state`
/// and answer each change by its decision; if not, leave `state` as it was
/// and answer every change with the failure (nothing is acknowledged, so
/// each result is sent again and planned again). Pure.
pub fn settle(
    state: &mut State,
    decisions: &[Decision],
    stored: Result<Vec<BatchEntry>, CommitFailure>,
) -> Vec<Answer> {
    match stored {
        Ok(entries) => {
            for entry in entries {
                state.publish(entry);
            }
            decisions.iter().map(Decision::answer).collect()
        }
        Err(failure) => decisions
            .iter()
            .map(|_| Err(CoordinatorError::NotStored { cause: failure.cause, message: failure.message.clone() }))
            .collect(),
    }
}

/// A stop the coordinator decided that could not be stored is tried again
/// after this.
const STOP_RETRY: Duration = Duration::from_secs(1);

impl Coordinator {
    /// The committer task: batches of queued commands, each planned,
    /// stored, settled and answered, one batch at a time.
    pub(crate) async fn committer(self, mut receiver: mpsc::Receiver<Command>) {
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first];
            while batch.len() < self.config().max_batch {
                match receiver.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.commit(batch).await;
        }
    }

    async fn commit(&self, batch: Vec<Command>) {
        let (changes, replies): (Vec<Change>, Vec<_>) = batch.into_iter().map(|c| (c.change, c.reply)).unzip();
        let Plan { decisions, entries } = plan_with(&self.state(), &changes, self.config().checkpoint_every);
        let store = self.store();
        let stored = blocking(move || {
            store.commit_batch(&entries)?;
            Ok(entries)
        })
        .await
        .map_err(CommitFailure::from);
        if let Err(failure) = &stored {
            tracing::warn!(
                changes = changes.len(),
                "a commit failed, nothing of it is acknowledged: {}",
                failure.message
            );
        }
        let published = stored.is_ok();
        let answers = settle(&mut self.state(), &decisions, stored);
        if published {
            self.changed();
        }
        for ((change, reply), answer) in changes.into_iter().zip(replies).zip(answers) {
            match reply {
                Some(reply) => {
                    let _ = reply.send(answer);
                }
                None if matches!(answer, Err(CoordinatorError::NotStored { .. })) => {
                    let coordinator = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(STOP_RETRY).await;
                        let _ = coordinator.send(Command { change, reply: None }).await;
                    });
                }
                None => {}
            }
        }
    }
}

/// Whether a result fits its job, so it may go to the committer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Not merged yet: send it to the committer.
    New,
    /// The job is merged already: answer "not merged again".
    AlreadyMerged,
}

/// Check a result against job `index` of `sweep` before it is queued
/// (invariant 6): the job exists, the sweep still takes results, and the
/// result is consistent, of the sweep's shape, with exactly the job's
/// sample count and failures only among the job's samples.
pub fn check_result(sweep: &SweepRuntime, index: u32, aggregate: &SparseAggregate) -> Result<Fit, CoordinatorError> {
    check_consistent(aggregate)?;
    check_fit(sweep, index, aggregate)
}

/// The part of [`check_result`] that needs no sweep: the result's counts
/// are those of its samples. It reads the whole result, so the coordinator
/// runs it before it takes the state's lock.
pub fn check_consistent(aggregate: &SparseAggregate) -> Result<(), CoordinatorError> {
    aggregate
        .check_consistency()
        .map_err(|e| CoordinatorError::InvalidArgument(format!("the result is inconsistent: {e}")))
}

/// The rest of [`check_result`], for a result [`check_consistent`] passed.
pub fn check_fit(sweep: &SweepRuntime, index: u32, aggregate: &SparseAggregate) -> Result<Fit, CoordinatorError> {
    let id = sweep.id();
    let Some(job) = sweep.job(index) else {
        return Err(CoordinatorError::InvalidArgument(format!(
            "sweep {id} has {} jobs; there is no job {index}",
            sweep.record().jobs
        )));
    };
    let already_done = *job == JobState::Done;
    if !already_done && !sweep.is_running() {
        return Err(CoordinatorError::FailedPrecondition(format!(
            "sweep {id} is {}; its results are no longer taken",
            sweep.record().state
        )));
    }
    if aggregate.shape != *sweep.shape() {
        return Err(CoordinatorError::InvalidArgument(format!(
            "the result's shape {:?} does not fit sweep {id} ({:?})",
            aggregate.shape,
            sweep.shape()
        )));
    }
    let groups = aggregate.sensitivity.as_ref().map(|s| &s.groups[..]);
    if groups != sweep.sensitivity_groups() {
        let describe = |groups: Option<&[String]>| match groups {
            None => "no sensitivity sums".to_owned(),
            Some(groups) => format!("sensitivity sums of groups [{}]", groups.join(", ")),
        };
        return Err(CoordinatorError::InvalidArgument(format!(
            "the result has {}, but sweep {id} takes {}",
            describe(groups),
            describe(sweep.sensitivity_groups())
        )));
    }
    let range = sweep.job_range(index);
    let expected = range.end - range.start;
    if aggregate.samples_total() != expected {
        return Err(CoordinatorError::InvalidArgument(format!(
            "job {index} covers samples {}..{} ({expected}), but the result counts {}",
            range.start,
            range.end,
            aggregate.samples_total()
        )));
    }
    let outside = aggregate.failures.values().flat_map(|f| f.samples.iter()).find(|s| !range.contains(s));
    if let Some(sample) = outside {
        return Err(CoordinatorError::InvalidArgument(format!(
            "the result reports sample {sample}, outside job {index}'s samples {}..{}",
            range.start, range.end
        )));
    }
    // Checked after the fit, so a broken worker is told even when another
    // worker already delivered this job.
    Ok(if already_done { Fit::AlreadyMerged } else { Fit::New })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tonic::Code;
    use zonesweep_proto::status::SweepStatus;
    use zonesweep_shared::sweep::aggregate::Shape;

    use super::*;
    use crate::state::tests::{id, record, shape};

    /// A state with sweep "a": 10 samples in jobs of 4 (jobs 0, 1, 2).
    fn state() -> State {
        let mut state = State::new(0);
        state.insert(SweepRuntime::new(record("a", 0, 10, 4), Aggregate::empty(shape()), &[]));
        state
    }

    /// A result of `samples` successful samples, all in zone 1.
    fn result(samples: u64) -> Box<Aggregate> {
        let mut aggregate = Aggregate::empty(shape());
        aggregate.samples_ok = samples;
        aggregate.zone_counts.row_mut(0)[0] = samples;
        Box::new(aggregate)
    }

    fn complete(sweep: &str, index: u32, samples: u64) -> Change {
        let aggregate = Box::new(SparseAggregate::from(*result(samples)));
        Change::Complete { job: JobId::new(id(sweep), index), aggregate, worker: "host/w-1".into() }
    }

    /// [`check_result`] of a dense result.
    fn check(sweep: &SweepRuntime, index: u32, aggregate: &Aggregate) -> Result<Fit, CoordinatorError> {
        check_result(sweep, index, &SparseAggregate::from(aggregate))
    }

    fn stop(sweep: &str, state: SweepState) -> Change {
        Change::Stop { sweep: id(sweep), state, reason: format!("{state} in a test") }
    }

    fn status(state: &State) -> SweepStatus {
        state.sweep(&id("a")).unwrap().status()
    }

    /// Plan, store successfully, settle: one batch of the committer loop.
    fn stored(state: &mut State, changes: &[Change]) -> Vec<Answer> {
        let Plan { decisions, entries } = plan(state, changes);
        settle(state, &decisions, Ok(entries))
    }

    fn codes(answers: &[Answer]) -> Vec<Result<bool, Code>> {
        answers.iter().map(|a| a.as_ref().map(|m| *m).map_err(CoordinatorError::code)).collect()
    }

    #[test]
    fn a_job_completed_twice_in_one_batch_is_merged_once() {
        let state = state();
        let plan = plan(&state, &[complete("a", 0, 4), complete("a", 0, 4), complete("a", 1, 4)]);
        assert_eq!(plan.decisions, [Decision::Merge, Decision::AlreadyMerged, Decision::Merge]);
        assert_eq!(plan.entries.len(), 1);
        let entry = &plan.entries[0];
        assert_eq!(entry.newly_done, [0, 1]);
        assert_eq!(entry.aggregate, None, "the sweep's aggregate is not copied");
        let delta = entry.delta.as_ref().unwrap();
        assert_eq!((delta.samples_ok, delta.zone_counts.row(0)[0]), (8, 8), "job 0 counted once");
        assert_eq!(entry.record.state, SweepState::Running);
        assert_eq!(status(&state).samples_done, 0, "planning changes no state");
    }

    #[test]
    fn a_job_completed_again_in_a_later_batch_is_not_merged_again() {
        let mut state = state();
        assert_eq!(codes(&stored(&mut state, &[complete("a", 0, 4)])), [Ok(true)]);
        assert_eq!((status(&state).samples_done, status(&state).jobs_done), (4, 1));

        let again = plan(&state, &[complete("a", 0, 4)]);
        assert_eq!(again.decisions, [Decision::AlreadyMerged]);
        assert!(again.entries.is_empty(), "nothing to store: {:?}", again.entries);
        assert_eq!(codes(&settle(&mut state, &again.decisions, Ok(again.entries))), [Ok(false)]);
        assert_eq!(status(&state).samples_done, 4);
    }

    #[test]
    fn the_last_job_ends_the_sweep_done() {
        let mut state = state();
        let answers = stored(&mut state, &[complete("a", 2, 2), complete("a", 0, 4)]);
        assert_eq!(codes(&answers), [Ok(true), Ok(true)]);
        assert_eq!(status(&state).state, SweepState::Running);
        let last = plan(&state, &[complete("a", 1, 4)]);
        assert_eq!(last.entries[0].record.state, SweepState::Done, "the record that completes the sweep ends it");
        settle(&mut state, &last.decisions, Ok(last.entries));
        let done = status(&state);
        assert_eq!((done.state, done.samples_done, done.jobs_done), (SweepState::Done, 10, 3));
    }

    #[test]
    fn a_completion_for_a_cancelled_sweep_is_refused_and_stores_nothing() {
        let mut state = state();
        assert_eq!(codes(&stored(&mut state, &[stop("a", SweepState::Cancelled)])), [Ok(true)]);
        let late = plan(&state, &[complete("a", 0, 4)]);
        assert_eq!(late.decisions, [Decision::SweepClosed(id("a"), SweepState::Cancelled)]);
        assert!(late.entries.is_empty());
        let answers = settle(&mut state, &late.decisions, Ok(late.entries));
        assert_eq!(codes(&answers), [Err(Code::FailedPrecondition)]);
        let message = answers[0].as_ref().unwrap_err().to_string();
        assert_eq!(message, "sweep a is cancelled; its results are no longer taken");
        assert_eq!((status(&state).samples_done, status(&state).state), (0, SweepState::Cancelled));
    }

    #[test]
    fn within_a_batch_a_cancel_applies_in_order() {
        // Cancelled first: the result that follows is refused.
        let first = plan(&state(), &[stop("a", SweepState::Cancelled), complete("a", 0, 4)]);
        assert_eq!(first.decisions, [Decision::Stop, Decision::SweepClosed(id("a"), SweepState::Cancelled)]);
        assert_eq!((first.entries[0].record.state, first.entries[0].newly_done.len()), (SweepState::Cancelled, 0));
        // Completed first: the result is stored with the cancel.
        let second = plan(&state(), &[complete("a", 0, 4), stop("a", SweepState::Cancelled)]);
        assert_eq!(second.decisions, [Decision::Merge, Decision::Stop]);
        assert_eq!(second.entries[0].newly_done, [0]);
        assert_eq!(second.entries[0].record.state, SweepState::Cancelled);
        // A final sweep keeps its end, and a stop of it stores nothing.
        let mut state = state();
        stored(&mut state, &[stop("a", SweepState::Cancelled)]);
        let again = plan(&state, &[stop("a", SweepState::Failed)]);
        assert_eq!(again.decisions, [Decision::Stop]);
        assert!(again.entries.is_empty());
        assert_eq!(status(&state).reason, "cancelled in a test");
    }

    #[test]
    fn a_batch_that_is_not_stored_acknowledges_nothing_changes_nothing_and_is_retried() {
        let mut state = state();
        let now = Instant::now();
        let worker = crate::state::tests::registered(&mut state, "wk-1");
        state.lease(&worker, 2, now, now, 0).unwrap();
        let before = status(&state);
        let batch = [complete("a", 0, 4), complete("a", 0, 4), complete("a", 1, 4), stop("a", SweepState::Failed)];
        let Plan { decisions, entries: _ } = plan(&state, &batch);
        let disk_full = CommitFailure { cause: StoreCause::Transient, message: "disk full".into() };
        let answers = settle(&mut state, &decisions, Err(disk_full));
        assert_eq!(codes(&answers), [Err(Code::Unavailable); 4], "every change is told to retry: {answers:?}");
        assert!(matches!(&answers[0], Err(CoordinatorError::NotStored { message, .. }) if message == "disk full"));
        assert_eq!(status(&state), before, "the state is as it was");
        assert!(matches!(state.sweep(&id("a")).unwrap().job(0), Some(JobState::Leased { .. })));

        // The workers send their results again; this time the batch is stored.
        let answers = stored(&mut state, &batch);
        assert_eq!(codes(&answers), [Ok(true), Ok(false), Ok(true), Ok(true)]);
        let after = status(&state);
        assert_eq!((after.samples_done, after.jobs_done, after.state), (8, 2, SweepState::Failed));
    }

    #[test]
    fn corrupt_storage_is_not_answered_with_retry() {
        let mut state = state();
        let Plan { decisions, .. } = plan(&state, &[complete("a", 0, 4)]);
        let corrupt = CommitFailure { cause: StoreCause::Corrupt, message: "bad page".into() };
        assert_eq!(codes(&settle(&mut state, &decisions, Err(corrupt))), [Err(Code::DataLoss)]);
        assert_eq!(status(&state).samples_done, 0);
    }

    #[test]
    fn refused_results_and_unknown_sweeps_leave_the_rest_of_the_batch() {
        let mut state = state();
        let other_shape = Shape { n_units: 2, ..shape() };
        let misfit = Change::Complete {
            job: JobId::new(id("a"), 1),
            aggregate: Box::new(Aggregate::empty(other_shape).into()),
            worker: "host/w-1".into(),
        };
        let batch = [misfit, complete("ghost", 0, 4), complete("a", 7, 4), complete("a", 0, 4)];
        let plan = plan(&state, &batch);
        assert!(matches!(&plan.decisions[0], Decision::Refused(why) if why.contains("shapes differ")), "{plan:?}");
        assert_eq!(plan.decisions[1], Decision::UnknownSweep(id("ghost")));
        assert!(matches!(&plan.decisions[2], Decision::Refused(why) if why.contains("no job 7")), "{plan:?}");
        assert_eq!(plan.decisions[3], Decision::Merge);
        assert_eq!(plan.entries[0].newly_done, [0]);
        assert_eq!(plan.entries[0].delta, Some(*result(4)), "a refused result changes nothing");
        let answers = settle(&mut state, &plan.decisions, Ok(plan.entries));
        assert_eq!(
            codes(&answers),
            [Err(Code::InvalidArgument), Err(Code::NotFound), Err(Code::InvalidArgument), Ok(true)]
        );
    }

    /// A result of job `index` (jobs of 4 samples) unlike any other: its
    /// samples in zone `index % 5 + 1`, a failure, and histogram values.
    fn distinct(index: u32) -> Aggregate {
        let mut aggregate = Aggregate::empty(shape());
        let first = u64::from(index) * 4;
        aggregate.add_failure(first, "diverges", &format!("sample {first}"));
        aggregate.samples_ok = 3;
        aggregate.zone_counts.row_mut(0)[index as usize % 5] = 3;
        for k in 0..3 {
            aggregate.r2.add(f64::from(index) * 0.01 + f64::from(k) * 0.003);
        }
        aggregate
    }

    #[test]
    fn batches_store_deltas_and_a_checkpoint_every_few_and_memory_holds_their_sum() {
        // 40 jobs of 4 samples, completed in batches of 3 in a scrambled order.
        let mut state = State::new(0);
        state.insert(SweepRuntime::new(record("a", 0, 160, 4), Aggregate::empty(shape()), &[]));
        let order: Vec<u32> = (0..40).map(|i| (i * 17 + 5) % 40).collect();
        let mut stored_deltas = Vec::new();
        let mut checkpoint = Aggregate::empty(shape());
        for batch in order.chunks(3) {
            let changes: Vec<Change> = batch
                .iter()
                .map(|&j| Change::Complete {
                    job: JobId::new(id("a"), j),
                    aggregate: Box::new(distinct(j).into()),
                    worker: "host/w-1".into(),
                })
                .collect();
            let Plan { decisions, entries } = plan_with(&state, &changes, 4);
            // What the store does with the entry: a checkpoint replaces the
            // deltas before it; the batch's delta follows.
            let entry = &entries[0];
            if let Some(base) = &entry.base {
                assert_eq!(stored_deltas.len(), 4, "a checkpoint after 4 deltas");
                checkpoint = (**base).clone();
                stored_deltas.clear();
            }
            if let Some(whole) = &entry.aggregate {
                assert_eq!(entry.record.state, SweepState::Done, "only the sweep's end is stored whole");
                assert_eq!(entry.delta, None);
                checkpoint = whole.clone();
                stored_deltas.clear();
            } else {
                stored_deltas.push(entry.delta.clone().expect("a delta of the batch's results"));
            }
            settle(&mut state, &decisions, Ok(entries));
            let sweep = state.sweep(&id("a")).unwrap();
            assert_eq!(sweep.stored_deltas() as usize, stored_deltas.len());
            // Recovery: the checkpoint and the deltas after it.
            let mut recovered = checkpoint.clone();
            for delta in &stored_deltas {
                recovered.merge(delta).unwrap();
            }
            if let Some(live) = sweep.aggregate() {
                assert_eq!(&recovered, live, "memory holds the checkpoint plus the deltas");
            }
        }
        let mut reference = Aggregate::empty(shape());
        for j in 0..40 {
            reference.merge(&distinct(j)).unwrap();
        }
        let mut recovered = checkpoint;
        for delta in &stored_deltas {
            recovered.merge(delta).unwrap();
        }
        assert_eq!(recovered, reference, "bit-identical to the results merged in job order");
        let end = status(&state);
        assert_eq!((end.state, end.samples_done, end.samples_failed), (SweepState::Done, 160, 40));
    }

    /// A consistent result: samples `range`, every one failed.
    fn failed(range: std::ops::Range<u64>) -> Aggregate {
        let mut aggregate = Aggregate::empty(shape());
        for sample in range {
            aggregate.add_failure(sample, "diverges", "projection diverges");
        }
        aggregate
    }

    #[test]
    fn results_that_do_not_fit_their_job_are_refused_before_the_committer() {
        let mut state = state();
        let sweep = |state: &State| state.sweep(&id("a")).unwrap().clone();
        let a = sweep(&state);
        assert_eq!(check(&a, 2, &failed(8..10)).unwrap(), Fit::New);
        let refusal = |index, aggregate: &Aggregate| {
            let error = check(&a, index, aggregate).unwrap_err();
            assert_eq!(error.code(), Code::InvalidArgument, "{error}");
            error.to_string()
        };
        assert!(refusal(0, &failed(0..3)).contains("job 0 covers samples 0..4 (4), but the result counts 3"));
        assert!(refusal(3, &failed(0..4)).contains("sweep a has 3 jobs; there is no job 3"));
        let mut inconsistent = failed(0..4);
        inconsistent.zone_counts.row_mut(0)[0] = 3;
        assert!(refusal(0, &inconsistent).contains("the result is inconsistent"));
        let mut outside = failed(0..3);
        outside.add_failure(9, "diverges", "sample 9");
        assert!(refusal(0, &outside).contains("sample 9, outside job 0's samples 0..4"));
        let other_shape = Aggregate::empty(Shape { n_units: 2, ..shape() });
        assert!(refusal(0, &other_shape).contains("shape"));

        stored(&mut state, &[complete("a", 0, 4)]);
        let a = sweep(&state);
        assert_eq!(check(&a, 0, &failed(0..4)).unwrap(), Fit::AlreadyMerged);
        assert!(check(&a, 0, &failed(0..3)).is_err(), "a misfit is refused even when the job is done");
        stored(&mut state, &[stop("a", SweepState::Cancelled)]);
        let closed = check(&sweep(&state), 1, &failed(4..8)).unwrap_err();
        assert_eq!(closed.code(), Code::FailedPrecondition, "{closed}");
    }

    /// A sweep of 10 jobs of 4 samples that stops at ±`target`, checked
    /// after blocks of 2 jobs; registered worker "w".
    fn until_ci_state(target: f64) -> (State, zonesweep_proto::ids::WorkerId) {
        let mut state = State::new(0);
        let mut record = record("a", 0, 40, 4);
        record.layout.until_ci = Some(target);
        record.layout.block_jobs = 2;
        state.insert(SweepRuntime::new(record, Aggregate::empty(shape()), &[]));
        let worker = crate::state::tests::registered(&mut state, "w");
        (state, worker)
    }

    fn lease_all(state: &mut State, worker: &zonesweep_proto::ids::WorkerId) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        state.lease(worker, 100, deadline, deadline, 0).unwrap().iter().map(|j| j.lease.index()).collect()
    }

    #[test]
    fn a_sweep_with_a_target_runs_block_by_block_and_stops_after_the_block_that_reaches_it() {
        // Every sample in zone 1 of unit 0 (and nothing else: the unit's
        // other zones have count 0), so after n samples the widest interval
        // is that of 0 of n: ±z²/(n + z²)/2. ±0.2 needs n ≥ 6, so the first
        // block of 8 samples reaches it.
        let (mut state, worker) = until_ci_state(0.2);
        assert_eq!(lease_all(&mut state, &worker), vec![0, 1], "only the first block is leased");
        assert_eq!(lease_all(&mut state, &worker), Vec::<u32>::new(), "not the next before it is merged");
        assert_eq!(codes(&stored(&mut state, &[complete("a", 1, 4)])), vec![Ok(true)]);
        assert!(!status(&state).state.is_final(), "half a block is not checked");
        assert_eq!(codes(&stored(&mut state, &[complete("a", 0, 4)])), vec![Ok(true)]);
        let end = status(&state);
        assert_eq!(end.state, SweepState::Done, "{end:?}");
        assert_eq!((end.samples, end.jobs, end.jobs_done, end.samples_done), (8, 2, 2, 8), "{end:?}");
        assert_eq!(end.samples_max, Some(40));
        assert!(end.reason.contains("stopped after 8 samples") && end.reason.contains("target ±0.2"), "{end:?}");
        assert_eq!(lease_all(&mut state, &worker), Vec::<u32>::new(), "nothing more is leased");
    }

    #[test]
    fn the_convergence_history_gets_a_point_per_fifteen_percent_more_samples_and_the_end() {
        let (mut state, worker) = until_ci_state(0.001);
        for _ in 0..5 {
            let leased = lease_all(&mut state, &worker);
            let changes: Vec<Change> = leased.iter().map(|&j| complete("a", j, 4)).collect();
            stored(&mut state, &changes);
        }
        let history = &status(&state).provenance.history;
        let samples: Vec<u64> = history.iter().map(|p| p.0).collect();
        // 4, 8, …, 40 samples merged a job at a time: a point when the
        // samples grew by 15 % or more since the last, and the end.
        assert_eq!(samples, vec![4, 8, 12, 16, 20, 24, 28, 36, 40], "{history:?}");
        assert!(history.windows(2).all(|w| w[1].1 <= w[0].1), "the half-width only falls here: {history:?}");
        let last = history.last().unwrap().1;
        assert_eq!(last, status(&state).largest_half_width, "the end point is the sweep's");
    }

    #[test]
    fn a_target_not_reached_runs_every_block_and_says_so() {
        let (mut state, worker) = until_ci_state(0.001);
        for block in 0..5u32 {
            let leased = lease_all(&mut state, &worker);
            assert_eq!(leased, vec![2 * block, 2 * block + 1], "block {block}");
            let changes: Vec<Change> = leased.iter().map(|&j| complete("a", j, 4)).collect();
            stored(&mut state, &changes);
        }
        let end = status(&state);
        assert_eq!((end.state, end.samples, end.jobs_done, end.samples_max), (SweepState::Done, 40, 10, None));
        assert!(end.reason.contains("the target ±0.001 was not reached"), "{end:?}");
    }

    #[test]
    fn extending_a_done_sweep_adds_jobs_after_its_samples_and_runs_it_again() {
        // 10 samples in jobs of 4: jobs 0..4, 4..8, 8..10.
        let mut state = state();
        stored(&mut state, &[complete("a", 0, 4), complete("a", 1, 4), complete("a", 2, 2)]);
        assert_eq!(status(&state).state, SweepState::Done);
        let extend = |samples: u64| Change::Extend {
            sweep: id("a"),
            from: 10,
            samples,
            spec_hash: "new-spec".into(),
            aggregate: Box::new(Aggregate::empty(shape())),
        };
        // A spec written for another sample count is refused and changes nothing.
        let stale = Change::Extend {
            sweep: id("a"),
            from: 3,
            samples: 7,
            spec_hash: "stale".into(),
            aggregate: Box::new(Aggregate::empty(shape())),
        };
        let refused = stored(&mut state, &[stale]);
        assert!(
            matches!(&refused[0], Err(CoordinatorError::FailedPrecondition(m)) if m.contains("changed meanwhile")),
            "{refused:?}"
        );
        assert_eq!(status(&state).samples, 10);
        assert_eq!(codes(&stored(&mut state, &[extend(7)])), vec![Ok(true)]);
        let sweep = state.sweep(&id("a")).unwrap();
        let ranges: Vec<_> = (0..sweep.record().jobs).map(|j| sweep.job_range(j)).collect();
        assert_eq!(ranges, vec![0..4, 4..8, 8..10, 10..14, 14..17], "the new jobs start after the old samples");
        let extended = status(&state);
        assert_eq!(
            (extended.state, extended.samples, extended.jobs, extended.jobs_done),
            (SweepState::Running, 17, 5, 3)
        );
        assert_eq!(sweep.record().spec_hash, "new-spec");
        // A running sweep cannot be extended; nor can a cancelled one.
        let refused = stored(&mut state, &[extend(1)]);
        assert!(
            matches!(&refused[0], Err(CoordinatorError::FailedPrecondition(m)) if m.contains("is running")),
            "{refused:?}"
        );
        stored(&mut state, &[stop("a", SweepState::Cancelled)]);
        let refused = stored(&mut state, &[extend(1)]);
        assert!(
            matches!(&refused[0], Err(CoordinatorError::FailedPrecondition(m)) if m.contains("resume it")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_result_must_carry_the_sweep_s_sensitivity_groups_or_none() {
        use zonesweep_shared::sweep::sensitivity::SensitivitySums;
        let with = |groups: &[&str], aggregate: Aggregate| {
            let mut aggregate = aggregate;
            aggregate.sensitivity =
                Some(SensitivitySums::zeros(&shape(), groups.iter().map(|g| g.to_string()).collect()));
            aggregate
        };
        let mut state = State::new(0);
        state.insert(SweepRuntime::new(record("a", 0, 10, 4), Aggregate::empty(shape()), &[]));
        state.insert(SweepRuntime::new(record("s", 1, 10, 4), with(&["k", "cap"], Aggregate::empty(shape())), &[]));
        let plain = state.sweep(&id("a")).unwrap().clone();
        let sensitive = state.sweep(&id("s")).unwrap().clone();
        // Failed samples: no complete base sample, the sums stay zero.
        let error = check(&plain, 0, &with(&["k", "cap"], failed(0..4))).unwrap_err().to_string();
        assert!(error.contains("sweep a takes no sensitivity sums"), "{error}");
        let error = check(&sensitive, 0, &failed(0..4)).unwrap_err().to_string();
        assert!(
            error.contains("has no sensitivity sums, but sweep s takes sensitivity sums of groups [k, cap]"),
            "{error}"
        );
        let error = check(&sensitive, 0, &with(&["cap", "k"], failed(0..4))).unwrap_err().to_string();
        assert!(error.contains("groups [cap, k]"), "{error}");
        assert_eq!(check(&sensitive, 0, &with(&["k", "cap"], failed(0..4))).unwrap(), Fit::New);
        // A final sweep remembers its groups without its aggregate.
        stored(&mut state, &[stop("s", SweepState::Cancelled)]);
        assert_eq!(state.sweep(&id("s")).unwrap().sensitivity_groups(), Some(&["k".to_owned(), "cap".to_owned()][..]));
    }
}
