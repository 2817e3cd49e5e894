//! The committer: the single writer of the database. It takes every queued
//! command, applies them to copies of the sweeps they touch, commits them
//! in one durable transaction (a group commit) and only then publishes
//! them and answers the callers (invariant 2).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use zonesweep_shared::aggregate::Aggregate;

use zonesweep_proto::ids::{JobId, SweepId};
use zonesweep_proto::status::SweepState;

use crate::error::CoordinatorError;
use crate::service::{Coordinator, blocking};
use crate::state::{JobState, SweepRuntime};
use crate::store::{BatchEntry, StoreCause};
use crate::sweep::SweepRecord;

/// A durable change the committer applies, in order.
pub(crate) enum Command {
    Complete {
        job: JobId,
        aggregate: Box<Aggregate>,
        reply: oneshot::Sender<Result<bool, CoordinatorError>>,
    },
    Stop {
        sweep: SweepId,
        state: SweepState,
        reason: String,
        reply: Option<oneshot::Sender<Result<(), CoordinatorError>>>,
    },
}

impl Coordinator {
    /// The single writer: takes every queued command, applies them to copies
    /// of the affected sweeps, commits them in one durable transaction and
    /// only then publishes them and answers the callers.
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
        // Work on copies of the durable parts (record, aggregate) of the
        // sweeps the batch touches; the shared state changes only after the
        // commit. Job tables are not copied: they can be large.
        let mut touched: BTreeMap<SweepId, Pending> = BTreeMap::new();
        let mut replies_merged = Vec::new();
        let mut replies_stop = Vec::new();
        {
            let state = self.state();
            for command in batch {
                match command {
                    Command::Complete { job, aggregate, reply } => {
                        let (sweep_id, job_index) = (job.sweep, job.index);
                        let Some(original) = state.sweep(&sweep_id) else {
                            let _ = reply.send(Err(CoordinatorError::NotFound(format!("sweep {sweep_id}"))));
                            continue;
                        };
                        let sweep = touched.entry(sweep_id.clone()).or_insert_with(|| Pending::of(original));
                        let already = original.is_done(job_index);
                        if already || sweep.newly_done.contains(&job_index) {
                            replies_merged.push((reply, Ok(false)));
                            continue;
                        }
                        if sweep.record.state != SweepState::Running {
                            let message = format!("sweep {sweep_id} is {}", sweep.record.state);
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
                            sweep.record.finish(&sweep.aggregate);
                        }
                    }
                    Command::Stop { sweep: sweep_id, state: stop_state, reason, reply } => {
                        let Some(original) = state.sweep(&sweep_id) else {
                            if let Some(reply) = reply {
                                let _ = reply.send(Err(CoordinatorError::NotFound(format!("sweep {sweep_id}"))));
                            }
                            continue;
                        };
                        let sweep = touched.entry(sweep_id.clone()).or_insert_with(|| Pending::of(original));
                        sweep.record.stop(stop_state, &reason);
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
        let store = self.store();
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
                        state.publish(updated);
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
                // Nothing is acknowledged. Trouble that may pass is answered
                // UNAVAILABLE, so workers keep their results and retry;
                // internal stops are tried again.
                let (cause, message) = match &e {
                    CoordinatorError::Store(store) => (store.cause(), store.to_string()),
                    // A storage task that panicked: a bug, not bad luck.
                    other => (StoreCause::Refused, other.to_string()),
                };
                let unavailable = || CoordinatorError::NotStored { cause, message: message.clone() };
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
                                let stop = Command::Stop { sweep: sweep_id, state, reason, reply: None };
                                let _ = coordinator.send(stop).await;
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
        Pending { record: sweep.record().clone(), aggregate: sweep.aggregate().clone(), newly_done: BTreeSet::new() }
    }
}

/// Whether a result fits its job, so it may go to the committer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Not merged yet: send it to the committer.
    New,
    /// The job is merged already: answer "not merged again".
    AlreadyMerged,
}

/// Check a result against job `index` of `sweep` before it is queued
/// (invariant 5): the job exists, the sweep still takes results, and the
/// result is consistent, of the sweep's shape, with exactly the job's
/// sample count and failures only among the job's samples.
pub(crate) fn check_result(sweep: &SweepRuntime, index: u32, aggregate: &Aggregate) -> Result<Fit, CoordinatorError> {
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
    aggregate
        .check_consistency()
        .map_err(|e| CoordinatorError::InvalidArgument(format!("the result is inconsistent: {e}")))?;
    if aggregate.shape != *sweep.shape() {
        return Err(CoordinatorError::InvalidArgument(format!(
            "the result's shape {:?} does not fit sweep {id} ({:?})",
            aggregate.shape,
            sweep.shape()
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
