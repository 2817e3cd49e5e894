//! The tonic services: each handler checks the wire request into domain
//! values (typed ids, a completion decoded against its sweep's shape),
//! calls the [`Coordinator`], and converts the answer back. Errors become
//! statuses through [`CoordinatorError::code`].

use std::pin::Pin;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use zonesweep_proto::auth::{Role, require};
use zonesweep_proto::convert::{result_from_pb, results_to_pb, status_to_pb};
use zonesweep_proto::ids::{ContentHash, LeaseRef, SweepId, WorkerId};
use zonesweep_proto::pb;
use zonesweep_proto::status::SweepResults;
use zonesweep_shared::sweep::answers::{DEFAULT_ROBUST_THRESHOLD, Proportion};

use crate::error::CoordinatorError;
use crate::service::{Coordinator, QueuedResult, Registration};
use crate::state::LeasedJob;
use crate::submission::Submission;

fn sweep_id(text: &str) -> Result<SweepId, Status> {
    Ok(SweepId::parse(text)?)
}

fn lease_ref(lease: Option<pb::LeaseRef>) -> Result<LeaseRef, Status> {
    let lease = lease.ok_or_else(|| Status::invalid_argument("the request names no lease"))?;
    Ok(LeaseRef::from_pb(&lease)?)
}

/// Zero samples, zero job size and an empty GeoJSON mean "not given".
fn submission_from_pb(request: pb::SubmitRequest) -> Submission {
    Submission {
        units_csv: request.units_csv,
        panel_csv: request.panel_csv,
        units_geojson: (!request.units_geojson.is_empty()).then_some(request.units_geojson),
        config_toml: request.config_toml,
        spec_toml: request.spec_toml,
        samples: (request.samples > 0).then_some(request.samples),
        seed: request.has_seed.then_some(request.seed),
        job_size: (request.job_size > 0).then_some(request.job_size),
        request_id: (!request.request_id.is_empty()).then_some(request.request_id),
        dataset_name: request.dataset_name,
        until_ci: (request.until_ci != 0.0).then_some(request.until_ci),
        check_every: (request.check_every > 0).then_some(request.check_every),
    }
}

fn proportion_to_pb(p: &Proportion) -> pb::Proportion {
    pb::Proportion { count: p.count, samples: p.samples, p: p.p, low: p.low, high: p.high }
}

/// Every unit's zone robustness, in dataset order.
fn robustness_to_pb(results: &SweepResults, threshold: f64) -> pb::RobustnessResponse {
    let a = &results.aggregate;
    let units = (0..results.unit_ids.len())
        .map(|u| {
            let r = a.robustness(u, results.nominal_zones.get(u).copied(), threshold);
            pb::UnitRobustness {
                unit_id: results.unit_ids[u].clone(),
                unit_name: results.unit_names.get(u).cloned().unwrap_or_default(),
                nominal_zone: r.nominal_zone.map_or(0, u32::from),
                modal_zone: r.modal_zone as u32,
                modal: Some(proportion_to_pb(&r.modal)),
                runner_up_zone: r.runner_up_zone.map_or(0, |z| z as u32),
                runner_up: r.runner_up.as_ref().map(proportion_to_pb),
                entropy: r.entropy,
                robust: r.robust,
                zones: r.zones.iter().map(proportion_to_pb).collect(),
            }
        })
        .collect();
    pb::RobustnessResponse { status: Some(status_to_pb(&results.status)), threshold, units }
}

fn job_to_pb(job: LeasedJob) -> pb::Job {
    pb::Job {
        sweep_id: job.lease.sweep().as_str().to_owned(),
        job_index: job.lease.index(),
        lease_id: job.lease.lease.0,
        sample_start: job.samples.start,
        sample_end: job.samples.end,
        dataset_hash: job.dataset_hash,
        config_hash: job.config_hash,
        spec_hash: job.spec_hash,
        samples: job.sweep_samples,
        seed: job.seed,
    }
}

fn registration_to_pb(registration: Registration) -> pb::RegisterResponse {
    pb::RegisterResponse {
        worker_id: registration.worker_id.as_str().to_owned(),
        heartbeat_millis: registration.heartbeat_interval.as_millis() as u32,
        lease_millis: registration.lease_timeout.as_millis() as u32,
        chain: zonesweep_shared::CHAIN_REVISION,
    }
}

type StatusStream = Pin<Box<dyn Stream<Item = Result<pb::SweepStatus, Status>> + Send>>;

#[tonic::async_trait]
impl pb::sweeps_server::Sweeps for Coordinator {
    async fn submit(&self, request: Request<pb::SubmitRequest>) -> Result<Response<pb::SweepStatus>, Status> {
        require(&request, Role::Submit)?;
        let status = Coordinator::submit(self, submission_from_pb(request.into_inner())).await?;
        Ok(Response::new(status_to_pb(&status)))
    }

    async fn get(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(status_to_pb(&self.status(&id)?)))
    }

    type WatchStream = StatusStream;

    async fn watch(&self, request: Request<pb::SweepRef>) -> Result<Response<StatusStream>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        let receiver = Coordinator::watch(self, &id)?;
        let stream = ReceiverStream::new(receiver)
            .map(|item: Result<_, CoordinatorError>| item.map(|status| status_to_pb(&status)).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        require(&request, Role::Submit)?;
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(status_to_pb(&Coordinator::cancel(self, &id).await?)))
    }

    async fn list(&self, _request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let sweeps = Coordinator::list(self).iter().map(status_to_pb).collect();
        Ok(Response::new(pb::ListResponse { sweeps }))
    }

    async fn query(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::QueryResponse>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(results_to_pb(&Coordinator::query(self, &id).await?)))
    }

    async fn resume(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        require(&request, Role::Submit)?;
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(status_to_pb(&Coordinator::resume(self, &id).await?)))
    }

    async fn extend(&self, request: Request<pb::ExtendRequest>) -> Result<Response<pb::SweepStatus>, Status> {
        require(&request, Role::Submit)?;
        let id = sweep_id(&request.get_ref().sweep_id)?;
        let samples = request.get_ref().samples;
        Ok(Response::new(status_to_pb(&Coordinator::extend(self, &id, samples).await?)))
    }

    async fn definition(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::DefinitionResponse>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(Coordinator::definition(self, &id).await?.into_pb()))
    }

    async fn robustness(
        &self,
        request: Request<pb::RobustnessRequest>,
    ) -> Result<Response<pb::RobustnessResponse>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        let threshold = match request.get_ref().threshold {
            None => DEFAULT_ROBUST_THRESHOLD,
            Some(t) if (0.0..=1.0).contains(&t) => t,
            Some(t) => {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "the robustness threshold is {t}; it must be 0 to 1 (the default, when absent, is {DEFAULT_ROBUST_THRESHOLD})"
                ))
                .into());
            }
        };
        let results = Coordinator::query(self, &id).await?;
        Ok(Response::new(robustness_to_pb(&results, threshold)))
    }

    async fn delete(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::DeleteResponse>, Status> {
        require(&request, Role::Submit)?;
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Coordinator::delete(self, &id).await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn prune(&self, request: Request<pb::PruneRequest>) -> Result<Response<pb::PruneResponse>, Status> {
        require(&request, Role::Submit)?;
        let age = std::time::Duration::from_secs(request.get_ref().older_than_seconds);
        let deleted = Coordinator::prune(self, age).await?.iter().map(|id| id.as_str().to_owned()).collect();
        Ok(Response::new(pb::PruneResponse { deleted }))
    }

    async fn list_workers(
        &self,
        _request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        let now = std::time::Instant::now();
        let millis = |since: std::time::Instant| now.saturating_duration_since(since).as_millis() as u64;
        let workers = Coordinator::workers(self)
            .into_iter()
            .map(|(info, leases)| pb::WorkerStatus {
                worker_id: info.id.as_str().to_owned(),
                hostname: info.hostname,
                threads: info.threads,
                leases,
                jobs_delivered: info.jobs_delivered,
                samples_delivered: info.samples_delivered,
                idle_millis: millis(info.last_seen),
                registered_millis: millis(info.registered),
            })
            .collect();
        Ok(Response::new(pb::ListWorkersResponse { workers }))
    }
}

/// The jobs leased with a delivery, up to `capacity`. The results are taken
/// already; new jobs are a bonus: should leasing fail, the worker asks with
/// Lease.
fn lease_more(coordinator: &Coordinator, worker: &WorkerId, capacity: u32, call: u64) -> Vec<pb::Job> {
    match capacity {
        0 => Vec::new(),
        capacity => Coordinator::lease(coordinator, worker, capacity, call)
            .unwrap_or_default()
            .into_iter()
            .map(job_to_pb)
            .collect(),
    }
}

/// Decode one result of a CompleteMany call against its sweep and queue it.
async fn queue_result(
    coordinator: &Coordinator,
    worker: &WorkerId,
    result: pb::JobResult,
) -> Result<QueuedResult, Status> {
    let lease = lease_ref(result.lease)?;
    let wire = result.aggregate.ok_or_else(|| Status::invalid_argument("the result carries no aggregate"))?;
    let shape = coordinator.result_shape(lease.sweep())?;
    let aggregate = result_from_pb(&wire, &shape)?;
    Ok(coordinator.queue_result(worker, &lease, aggregate).await?)
}

/// One CompleteMany request, from a call of its own or from a stream.
async fn complete_many(
    coordinator: &Coordinator,
    request: pb::CompleteManyRequest,
) -> Result<pb::CompleteManyResponse, Status> {
    let worker = WorkerId::parse(&request.worker_id)?;
    // Every result is checked and queued before any answer is awaited,
    // so they reach the committer together and share one commit.
    let mut queued = Vec::with_capacity(request.results.len());
    for result in request.results {
        queued.push(queue_result(coordinator, &worker, result).await);
    }
    let mut outcomes = Vec::with_capacity(queued.len());
    for result in queued {
        let answer = match result {
            Ok(queued) => queued.answer(coordinator).await.map_err(Status::from),
            Err(status) => Err(status),
        };
        outcomes.push(match answer {
            Ok(merged) => pb::ResultOutcome { code: 0, message: String::new(), merged },
            Err(status) => {
                pb::ResultOutcome { code: status.code() as i32, message: status.message().to_owned(), merged: false }
            }
        });
    }
    // A result not taken frees no thread: it is sent again or dropped.
    let taken = outcomes.iter().filter(|o| o.code == 0).count() as u32;
    let jobs = lease_more(coordinator, &worker, request.lease_capacity.min(taken), request.call);
    Ok(pb::CompleteManyResponse { outcomes, jobs })
}

type CompletionStream = Pin<Box<dyn Stream<Item = Result<pb::CompleteManyResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::workers_server::Workers for Coordinator {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let request = request.into_inner();
        let registration = Coordinator::register(self, &request.hostname, request.threads, request.chain)?;
        Ok(Response::new(registration_to_pb(registration)))
    }

    async fn lease(&self, request: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        let wait = Duration::from_millis(u64::from(request.wait_ms));
        let jobs = Coordinator::lease_or_wait(self, &worker, request.capacity, request.call, wait)
            .await?
            .into_iter()
            .map(job_to_pb)
            .collect();
        Ok(Response::new(pb::LeaseResponse { jobs }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        // A lease whose id does not parse names nothing here: abandon it.
        let (mut held, mut abandon) = (Vec::new(), Vec::new());
        for wire in request.leases {
            match LeaseRef::from_pb(&wire) {
                Ok(lease) => held.push(lease),
                Err(_) => abandon.push(wire),
            }
        }
        abandon.extend(Coordinator::heartbeat(self, &worker, &held, request.calls_ended)?.iter().map(LeaseRef::to_pb));
        Ok(Response::new(pb::HeartbeatResponse { abandon }))
    }

    async fn complete(&self, request: Request<pb::CompleteRequest>) -> Result<Response<pb::CompleteResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        let result = pb::JobResult { lease: request.lease, aggregate: request.aggregate };
        let merged = queue_result(self, &worker, result).await?.answer(self).await?;
        let jobs = lease_more(self, &worker, request.lease_capacity, request.call);
        Ok(Response::new(pb::CompleteResponse { merged, jobs }))
    }

    async fn complete_many(
        &self,
        request: Request<pb::CompleteManyRequest>,
    ) -> Result<Response<pb::CompleteManyResponse>, Status> {
        Ok(Response::new(complete_many(self, request.into_inner()).await?))
    }

    type CompleteStreamStream = CompletionStream;

    async fn complete_stream(
        &self,
        request: Request<tonic::Streaming<pb::CompleteManyRequest>>,
    ) -> Result<Response<CompletionStream>, Status> {
        let mut requests = request.into_inner();
        let coordinator = self.clone();
        // One answer ahead at most: the next request is read only once its
        // predecessor's answer is on its way.
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let mut stopping = self.stopping();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = requests.message() => next,
                    _ = async { stopping.wait_for(|s| *s).await.is_ok() } => {
                        let _ = sender.send(Err(Status::unavailable("the coordinator is shutting down"))).await;
                        return;
                    }
                };
                let request = match next {
                    Ok(Some(request)) => request,
                    // The worker closed its side: the stream ends.
                    Ok(None) => return,
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                let answer = complete_many(&coordinator, request).await;
                let refused = answer.is_err();
                if sender.send(answer).await.is_err() || refused {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn fail(&self, request: Request<pb::FailRequest>) -> Result<Response<pb::FailResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        let lease = lease_ref(request.lease)?;
        Coordinator::fail(self, &worker, &lease, &request.reason).await?;
        Ok(Response::new(pb::FailResponse {}))
    }

    async fn fetch_blob(
        &self,
        request: Request<pb::FetchBlobRequest>,
    ) -> Result<Response<pb::FetchBlobResponse>, Status> {
        let hash = ContentHash::parse(&request.get_ref().hash)?;
        let content = Coordinator::fetch_blob(self, &hash).await?;
        Ok(Response::new(pb::FetchBlobResponse { content }))
    }
}
