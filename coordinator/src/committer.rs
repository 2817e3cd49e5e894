//! The committer: the single writer of the database. It takes every queued
//! command, applies them to copies of the sweeps they touch, commits them
//! in one durable transaction (a group commit) and only then publishes
//! them and answers the callers (invariant 2).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use zonesweep_shared::aggregate::Aggregate;

use crate::error::CoordinatorError;
use crate::service::{Coordinator, blocking, state_name};
use crate::state::{JobState, SweepRuntime};
use crate::store::{BatchEntry, StoreCause, SweepRecord, SweepState};

/// A durable change the committer applies, in order.
pub(crate) enum Command {
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
pub(crate) fn failure_summary(aggregate: &Aggregate) -> String {
    if aggregate.failures.is_empty() {
        return String::new();
    }
    let kinds: Vec<String> = aggregate.failures.iter().map(|(k, f)| format!("{k} ({})", f.count)).collect();
    format!("{} sample(s) failed: {}", aggregate.samples_failed(), kinds.join(", "))
}
