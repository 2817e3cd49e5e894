//! Serving the coordinator: both gRPC services behind the token check, the
//! standard health service, message-size limits and graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use zonesweep_proto::auth::RequireToken;
use zonesweep_proto::pb::sweeps_server::SweepsServer;
use zonesweep_proto::pb::workers_server::WorkersServer;

use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::service::Coordinator;

/// Accepted connections with Nagle's algorithm off: a completion's small
/// answer must not wait for a delayed ACK (tens of milliseconds a call).
fn incoming(listener: TcpListener) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    TcpListenerStream::new(listener).map(|stream| {
        let stream = stream?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
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
    let stopping = coordinator.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.begin_shutdown();
    };
    let limit = config.max_message_bytes;
    let require = RequireToken::new(&config.token);
    let sweeps =
        SweepsServer::new(coordinator.clone()).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let workers = WorkersServer::new(coordinator).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<SweepsServer<Coordinator>>().await;
    health_reporter.set_serving::<WorkersServer<Coordinator>>().await;
    Server::builder()
        .add_service(health)
        .add_service(InterceptedService::new(sweeps, require.clone()))
        .add_service(InterceptedService::new(workers, require))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
        .map_err(|e| CoordinatorError::Transport(e.to_string()))
}
