//! Serving the coordinator: both gRPC services and the standard health
//! service behind the token check, bounded connections
//! ([`crate::connections`]), HTTP/2 keep-alive and stream limits,
//! message-size limits and graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::{Request, Status};
use zonesweep_proto::auth::RequireToken;
use zonesweep_proto::pb::sweeps_server::SweepsServer;
use zonesweep_proto::pb::workers_server::WorkersServer;

use crate::config::CoordinatorConfig;
use crate::connections::{ConnectionInfo, Incoming, fd_budget};
use crate::error::CoordinatorError;
use crate::service::Coordinator;

/// The most requests in flight on one connection (HTTP/2 streams, and calls
/// handled at once): a worker has a handful, a client one.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// The token check, which also admits the call's connection: from its first
/// call with the token on, it is no longer closed for silence
/// ([`crate::connections`]).
#[derive(Clone)]
struct Admit(RequireToken);

impl Interceptor for Admit {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let request = self.0.call(request)?;
        if let Some(info) = request.extensions().get::<ConnectionInfo>() {
            info.admitted.admit();
        }
        Ok(request)
    }
}

/// The connection limit in force: the configured one, lowered (with a line
/// on standard error) to what the process may open.
fn connection_limit(config: &CoordinatorConfig) -> usize {
    let budget = fd_budget();
    if config.max_connections > budget {
        eprintln!(
            "[coordinator] the connection limit is {budget}, not {}: the process may not open more files",
            config.max_connections
        );
        return budget;
    }
    config.max_connections
}

/// Start a coordinator on `listener` and serve until `shutdown` resolves.
/// Results already acknowledged are durable; in-flight commits finish
/// before the process exits because the committer runs on the same runtime.
pub async fn serve(
    config: CoordinatorConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CoordinatorError> {
    let coordinator = Coordinator::start(config).await?;
    serve_coordinator(coordinator, listener, shutdown).await
}

/// Serve an already started coordinator.
pub async fn serve_coordinator(
    coordinator: Coordinator,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CoordinatorError> {
    let config = coordinator.config().clone();
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<SweepsServer<Coordinator>>().await;
    health_reporter.set_serving::<WorkersServer<Coordinator>>().await;
    let stopping = coordinator.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.begin_shutdown();
        health_reporter.set_not_serving::<SweepsServer<Coordinator>>().await;
        health_reporter.set_not_serving::<WorkersServer<Coordinator>>().await;
    };
    let limit = config.max_message_bytes;
    let admit = Admit(RequireToken::new(&config.token));
    let sweeps =
        SweepsServer::new(coordinator.clone()).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let workers = WorkersServer::new(coordinator).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let incoming = Incoming::new(listener, connection_limit(&config), config.handshake_timeout);
    Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION as usize)
        .add_service(InterceptedService::new(health, admit.clone()))
        .add_service(InterceptedService::new(sweeps, admit.clone()))
        .add_service(InterceptedService::new(workers, admit))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| CoordinatorError::Transport(e.to_string()))
}
