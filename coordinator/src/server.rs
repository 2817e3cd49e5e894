//! Serving the coordinator: both gRPC services behind the token and role
//! checks (`zonesweep_proto::auth`), optionally over TLS; the standard
//! health service, which needs no token and tells only SERVING or
//! NOT_SERVING (so Kubernetes probes and `wait-ready` can use it); bounded
//! connections ([`crate::connections`]), HTTP/2 keep-alive and stream
//! limits, message-size limits and graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TlsConnectInfo;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};
use zonesweep_proto::auth::{RequireRole, Role};
use zonesweep_proto::pb::sweeps_server::SweepsServer;
use zonesweep_proto::pb::workers_server::WorkersServer;

use crate::config::CoordinatorConfig;
use crate::connections::{ConnectionInfo, Incoming, fd_budget};
use crate::error::CoordinatorError;
use crate::service::Coordinator;

/// The most requests in flight on one connection (HTTP/2 streams, and calls
/// handled at once): a worker has a handful, a client one.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// The token and role check, which also admits the call's connection: from
/// its first call with a good token on, it is no longer closed for silence
/// ([`crate::connections`]).
#[derive(Clone)]
struct Admit(RequireRole);

impl Interceptor for Admit {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let request = self.0.call(request)?;
        let extensions = request.extensions();
        // Over TLS, the connection's info is wrapped in the TLS layer's.
        let info = extensions
            .get::<ConnectionInfo>()
            .or_else(|| extensions.get::<TlsConnectInfo<ConnectionInfo>>().map(TlsConnectInfo::get_ref));
        if let Some(info) = info {
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
        tracing::warn!(
            "the connection limit is {budget}, not {}: the process may not open more files",
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
    let (began, mut beginning) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        stopping.begin_shutdown();
        health_reporter.set_not_serving::<SweepsServer<Coordinator>>().await;
        health_reporter.set_not_serving::<WorkersServer<Coordinator>>().await;
        began.send_replace(true);
    };
    let limit = config.max_message_bytes;
    let tokens = config.token_table()?;
    let sweeps =
        SweepsServer::new(coordinator.clone()).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let workers = WorkersServer::new(coordinator).max_decoding_message_size(limit).max_encoding_message_size(limit);
    let incoming = Incoming::new(listener, connection_limit(&config), config.handshake_timeout);
    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity)).map_err(|e| {
            CoordinatorError::Config(format!("the TLS certificate and key cannot be used together: {e}"))
        })?;
    }
    // The Sweeps service needs at least `read` (calls that change a sweep
    // check `submit` in their handlers); the Workers service `worker`.
    let serving = builder
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION as usize)
        .add_service(health)
        .add_service(InterceptedService::new(sweeps, Admit(RequireRole::new(tokens.clone(), Role::Read))))
        .add_service(InterceptedService::new(workers, Admit(RequireRole::new(tokens, Role::Worker))))
        .serve_with_incoming_shutdown(incoming, shutdown);
    // A graceful shutdown waits for every connection to close; one whose
    // peer vanished (a cut network, a lost node) would hold it until
    // keep-alive gives up. Acknowledged results are durable already, and a
    // result in flight is sent again to the next coordinator: stop waiting
    // after a grace period.
    let grace = async {
        let _ = beginning.wait_for(|began| *began).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = serving => served.map_err(|e| CoordinatorError::Transport(e.to_string())),
        () = grace => {
            tracing::warn!("connections still open {} s after shutdown began; closing them", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}

/// How long a shutdown waits for open connections to close.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
