//! The tonic services: each handler converts the wire request into checked
//! domain values, calls the [`Coordinator`], and converts the answer back.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use zonesweep_proto::convert::aggregate_from_pb;
use zonesweep_proto::ids::{SweepId, WorkerId};
use zonesweep_proto::pb;

use crate::service::Coordinator;

fn sweep_id(text: &str) -> Result<SweepId, Status> {
    Ok(SweepId::parse(text)?)
}

type StatusStream = Pin<Box<dyn Stream<Item = Result<pb::SweepStatus, Status>> + Send>>;

#[tonic::async_trait]
impl pb::sweeps_server::Sweeps for Coordinator {
    async fn submit(&self, request: Request<pb::SubmitRequest>) -> Result<Response<pb::SweepStatus>, Status> {
        Ok(Response::new(Coordinator::submit(self, request.into_inner()).await?))
    }

    async fn get(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(self.status(id.as_str())?))
    }

    type WatchStream = StatusStream;

    async fn watch(&self, request: Request<pb::SweepRef>) -> Result<Response<StatusStream>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        let receiver = Coordinator::watch(self, id.as_str())?;
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }

    async fn cancel(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::SweepStatus>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(Coordinator::cancel(self, id.as_str()).await?))
    }

    async fn list(&self, _request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        Ok(Response::new(pb::ListResponse { sweeps: Coordinator::list(self) }))
    }

    async fn query(&self, request: Request<pb::SweepRef>) -> Result<Response<pb::QueryResponse>, Status> {
        let id = sweep_id(&request.get_ref().sweep_id)?;
        Ok(Response::new(Coordinator::query(self, id.as_str())?))
    }
}

fn lease_ref(lease: Option<pb::LeaseRef>) -> Result<pb::LeaseRef, Status> {
    let lease = lease.ok_or_else(|| Status::invalid_argument("the request names no lease"))?;
    sweep_id(&lease.sweep_id)?;
    Ok(lease)
}

#[tonic::async_trait]
impl pb::workers_server::Workers for Coordinator {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let request = request.into_inner();
        Ok(Response::new(Coordinator::register(self, &request.hostname, request.threads)))
    }

    async fn lease(&self, request: Request<pb::LeaseRequest>) -> Result<Response<pb::LeaseResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        Ok(Response::new(pb::LeaseResponse { jobs: Coordinator::lease(self, &worker, request.capacity) }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let worker = WorkerId::parse(&request.worker_id)?;
        Ok(Response::new(pb::HeartbeatResponse { abandon: Coordinator::heartbeat(self, &worker, request.leases) }))
    }

    async fn complete(&self, request: Request<pb::CompleteRequest>) -> Result<Response<pb::CompleteResponse>, Status> {
        let request = request.into_inner();
        WorkerId::parse(&request.worker_id)?;
        let lease = lease_ref(request.lease)?;
        let wire = request.aggregate.ok_or_else(|| Status::invalid_argument("the completion carries no aggregate"))?;
        let aggregate = aggregate_from_pb(&wire)?;
        let merged = Coordinator::complete(self, &lease, aggregate).await?;
        Ok(Response::new(pb::CompleteResponse { merged }))
    }

    async fn fail(&self, request: Request<pb::FailRequest>) -> Result<Response<pb::FailResponse>, Status> {
        let request = request.into_inner();
        WorkerId::parse(&request.worker_id)?;
        let lease = lease_ref(request.lease)?;
        Coordinator::fail(self, &lease, &request.reason).await?;
        Ok(Response::new(pb::FailResponse {}))
    }

    async fn fetch_blob(
        &self,
        request: Request<pb::FetchBlobRequest>,
    ) -> Result<Response<pb::FetchBlobResponse>, Status> {
        let hash = zonesweep_proto::ids::ContentHash::parse(&request.get_ref().hash)?;
        let content = Coordinator::fetch_blob(self, hash.as_str()).await?;
        Ok(Response::new(pb::FetchBlobResponse { content }))
    }
}
