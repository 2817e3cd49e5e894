//! One leased job, from LEASE to COMPLETE (or FAIL): look up its sweep
//! definition, run its samples as one task on the rayon pool, deliver the
//! aggregate unless the lease was abandoned meanwhile.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::oneshot;
use tonic::{Code, Status};
use zonesweep_proto::convert::result_to_pb;
use zonesweep_proto::ids::LeaseRef;
use zonesweep_proto::pb;
use zonesweep_shared::sweep::aggregate::Aggregate;

use crate::cache::SweepKey;
use crate::deliver::deliver;
use crate::error::WorkerError;
use crate::rpc::{Backoff, Disposition, classify};
use crate::session::{CALL_BACKOFF_FIRST, CALL_BACKOFF_MAX, CallError, Worker};

/// Jobs leased with a job's deliveries, held from the answer that brought
/// them until the lease loop starts them ([`Granted::take`]). Dropped
/// otherwise (a job task that panicked or was aborted, a worker ending),
/// they are let go: heartbeats stop naming them, and the coordinator takes
/// them back at once rather than at the maximum job time.
pub(crate) struct Granted {
    worker: Arc<Worker>,
    jobs: Vec<pb::Job>,
}

impl Granted {
    pub(crate) fn none(worker: &Arc<Worker>) -> Granted {
        Granted { worker: worker.clone(), jobs: Vec::new() }
    }

    /// The jobs, to be started.
    pub(crate) fn take(mut self) -> Vec<pb::Job> {
        std::mem::take(&mut self.jobs)
    }
}

impl Drop for Granted {
    fn drop(&mut self) {
        if !self.jobs.is_empty() {
            self.worker.held.drop_jobs(&self.jobs);
        }
    }
}

/// Removes the lease from the held set however the job ends, so heartbeats
/// stop naming it.
struct Holding<'a> {
    worker: &'a Worker,
    key: LeaseRef,
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.worker.held.remove(&self.key);
    }
}

/// Run one job to its end. `Err` only for what must stop the worker (a
/// refused token); everything else is delivered, logged or dropped here.
/// `Ok` holds the jobs the coordinator leased with the result's delivery.
pub(crate) async fn run_job(worker: Arc<Worker>, job: pb::Job) -> Result<Granted, WorkerError> {
    let log = worker.log;
    let key = match LeaseRef::of_job(&job) {
        Ok(key) => key,
        Err(error) => {
            // Nothing can be held under an id that does not parse; tell the
            // coordinator once, as it was named.
            let lease_ref =
                pb::LeaseRef { sweep_id: job.sweep_id.clone(), job_index: job.job_index, lease_id: job.lease_id };
            log.info(format_args!("refusing a job with a malformed id: {error}"));
            return fail(&worker, lease_ref, &format!("the worker refused the job: {error}"), &|| false)
                .await
                .map(|()| Granted::none(&worker));
        }
    };
    let abandoned = worker.held.insert(key.clone());
    let _holding = Holding { worker: &worker, key: key.clone() };
    let stop = || abandoned.load(Ordering::SeqCst) || worker.past_drain_patience();
    let lease_ref = key.to_pb();

    if job.sample_start >= job.sample_end || job.sample_end > job.samples {
        let reason = format!(
            "the job's sample range {}..{} is empty or beyond the sweep's {} samples",
            job.sample_start, job.sample_end, job.samples
        );
        return fail(&worker, lease_ref, &reason, &stop).await.map(|()| Granted::none(&worker));
    }

    let sweep_key = SweepKey {
        dataset_hash: job.dataset_hash.clone(),
        config_hash: job.config_hash.clone(),
        spec_hash: job.spec_hash.clone(),
        samples: job.samples,
        seed: job.seed,
    };
    let definition = {
        let worker_ref: &Worker = &worker;
        let stop_ref: &(dyn Fn() -> bool + Sync) = &stop;
        match worker.cache.definition(&sweep_key, move |hash| worker_ref.fetch_blob(hash, stop_ref)).await {
            Ok(Ok(definition)) => definition,
            Ok(Err(reason)) => return fail(&worker, lease_ref, &reason, &stop).await.map(|()| Granted::none(&worker)),
            Err(CallError::Stopped) => {
                log.info(format_args!("dropping {key}: stopped while fetching its sweep definition"));
                return Ok(Granted::none(&worker));
            }
            Err(CallError::Refused(status)) => {
                let reason = format!("fetching the sweep's data failed ({:?}): {}", status.code(), status.message());
                return fail(&worker, lease_ref, &reason, &stop).await.map(|()| Granted::none(&worker));
            }
            Err(CallError::Fatal(error)) => return Err(error),
        }
    };
    if abandoned.load(Ordering::SeqCst) {
        log.info(format_args!("dropping {key}: abandoned before it started"));
        return Ok(Granted::none(&worker));
    }

    // One job is one task on the pool: the pool's threads run `threads` jobs
    // at once, and no sample ever runs on a runtime thread.
    let started = Instant::now();
    let range = job.sample_start..job.sample_end;
    let (sender, receiver) = oneshot::channel::<Result<Aggregate, String>>();
    let chain = worker.chain;
    let timing = worker.clone();
    worker.pool.spawn(move || {
        let running = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| definition.run_range(range, chain)));
        let millis = u64::try_from(running.elapsed().as_millis()).unwrap_or(u64::MAX);
        timing.last_job_millis.store(millis, Ordering::Relaxed);
        let result = outcome.unwrap_or_else(|panic| Err(format!("running samples panicked: {}", panic_text(&*panic))));
        // The receiver is gone only when the worker stopped without draining.
        let _ = sender.send(result);
    });
    let aggregate = match receiver.await {
        Ok(Ok(aggregate)) => aggregate,
        Ok(Err(reason)) => return fail(&worker, lease_ref, &reason, &stop).await.map(|()| Granted::none(&worker)),
        Err(_) => {
            return fail(&worker, lease_ref, "the worker's thread pool dropped the job", &stop)
                .await
                .map(|()| Granted::none(&worker));
        }
    };
    if abandoned.load(Ordering::SeqCst) {
        log.info(format_args!("discarding the result of {key}: the lease was abandoned"));
        return Ok(Granted::none(&worker));
    }

    let result = pb::JobResult { lease: Some(lease_ref), aggregate: Some(result_to_pb(&aggregate)) };
    // The jobs leased with the result's delivery, kept whatever its answer:
    // they are this worker's now.
    let mut leased = Granted::none(&worker);
    let mut backoff = Backoff::new(CALL_BACKOFF_FIRST, CALL_BACKOFF_MAX);
    loop {
        let status = match deliver(&worker, result.clone(), &abandoned).await {
            Ok((outcome, jobs)) => {
                leased.jobs.extend(jobs);
                if outcome.code == Code::Ok as i32 {
                    log.info(format_args!(
                        "completed {key}: {} samples in {:.2} s{}",
                        aggregate.samples_total(),
                        started.elapsed().as_secs_f64(),
                        if outcome.merged { "" } else { " (already merged)" }
                    ));
                    return Ok(leased);
                }
                Status::new(Code::from(outcome.code), outcome.message)
            }
            Err(CallError::Stopped) => {
                log.info(format_args!("dropping the result of {key}: abandoned or shutting down"));
                return Ok(leased);
            }
            Err(CallError::Refused(status)) => status,
            Err(CallError::Fatal(error)) => return Err(error),
        };
        // A code this worker does not know is no reason to try again.
        let disposition = if status.code() == Code::Unknown { Disposition::Refused } else { classify(&status) };
        match disposition {
            // The coordinator could not store it this time: send it again.
            Disposition::Retry => {
                log.info(format_args!(
                    "the coordinator did not take the result of {key} this time ({:?}: {}); sending it again",
                    status.code(),
                    status.message()
                ));
                if stop() {
                    log.info(format_args!("dropping the result of {key}: abandoned or shutting down"));
                    return Ok(leased);
                }
                tokio::time::sleep(backoff.next_delay()).await;
                if stop() {
                    log.info(format_args!("dropping the result of {key}: abandoned or shutting down"));
                    return Ok(leased);
                }
            }
            Disposition::Fatal => return Err(WorkerError::from_auth_status(&status)),
            Disposition::Refused => {
                log_refused(&worker, "result", &key, &status);
                return Ok(leased);
            }
        }
    }
}

/// Tell the coordinator the job cannot be run, retrying through outages.
async fn fail(
    worker: &Worker,
    lease_ref: pb::LeaseRef,
    reason: &str,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<(), WorkerError> {
    let name = LeaseRef::from_pb(&lease_ref)
        .map(|key| key.to_string())
        .unwrap_or_else(|_| format!("job {:?}#{}", lease_ref.sweep_id, lease_ref.job_index));
    worker.log.info(format_args!("failing {name}: {reason}"));
    let request = pb::FailRequest { worker_id: worker.worker_id(), lease: Some(lease_ref), reason: reason.to_owned() };
    let outcome = worker
        .call_with_retry("fail", stop, |mut client| {
            let request = pb::FailRequest { worker_id: worker.worker_id(), ..request.clone() };
            async move { client.fail(request).await }
        })
        .await;
    match outcome {
        Ok(_) => Ok(()),
        Err(CallError::Stopped) => Ok(()),
        Err(CallError::Refused(status)) => {
            worker.log.info(format_args!("the coordinator refused the failure report of {name}: {status}"));
            Ok(())
        }
        Err(CallError::Fatal(error)) => Err(error),
    }
}

fn log_refused(worker: &Worker, what: &str, key: &LeaseRef, status: &tonic::Status) {
    let why = match status.code() {
        Code::NotFound | Code::FailedPrecondition => "the sweep was cancelled or the lease is stale",
        _ => "refused",
    };
    worker.log.info(format_args!("dropping the {what} of {key}: {why} ({:?}: {})", status.code(), status.message()));
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
