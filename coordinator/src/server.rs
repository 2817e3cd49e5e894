//! Serving the coordinator: both gRPC services behind the token and role
//! checks (`zonesweep_proto::auth`), optionally over TLS, the standard
//! health service, message-size limits and graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use zonesweep_proto::auth::{RequireRole, Role};
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
    let tokens = config.token_table()?;
    let sweeps =
        SweepsServer::new(coordinator.clone()).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let workers = WorkersServer::new(coordinator).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<SweepsServer<Coordinator>>().await;
    health_reporter.set_serving::<WorkersServer<Coordinator>>().await;
    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity)).map_err(|e| {
            CoordinatorError::Config(format!("the TLS certificate and key cannot be used together: {e}"))
        })?;
    }
    // The Sweeps service needs at least `read` (calls that change a sweep
    // check `submit` in their handlers); the Workers service `worker`.
    builder
        .add_service(health)
        .add_service(InterceptedService::new(sweeps, RequireRole::new(tokens.clone(), Role::Read)))
        .add_service(InterceptedService::new(workers, RequireRole::new(tokens, Role::Worker)))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
        .map_err(|e| CoordinatorError::Transport(e.to_string()))
}
