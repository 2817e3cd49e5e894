//! Reaching a coordinator: the one message-size limit every side allows,
//! and the one channel builder (URL check, timeouts, message limits, the
//! bearer token) that the worker, the CLI and the bench use.

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::auth::BearerToken;
use crate::pb::sweeps_client::SweepsClient;
use crate::pb::workers_client::WorkersClient;

/// The largest message sent or accepted unless told otherwise, in MiB:
/// large sweeps carry large aggregates (per-unit histograms) and datasets.
pub const DEFAULT_MAX_MESSAGE_MIB: usize = 256;
/// The largest message limit any side accepts, in MiB.
pub const MAX_MESSAGE_MIB_LIMIT: usize = 4096;

/// Why a client could not be built or connected.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{url}` is not a valid coordinator URL: {message}")]
    Url { url: String, message: String },
    #[error("{0}")]
    Token(String),
    #[error("the message limit must be 1–{MAX_MESSAGE_MIB_LIMIT} MiB, not {0}")]
    MessageLimit(usize),
    #[error("cannot reach the coordinator at {url}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// The message limit of `mib` MiB in bytes, if it is within 1–[`MAX_MESSAGE_MIB_LIMIT`].
pub fn max_message_bytes(mib: usize) -> Result<usize, ClientError> {
    if (1..=MAX_MESSAGE_MIB_LIMIT).contains(&mib) { Ok(mib << 20) } else { Err(ClientError::MessageLimit(mib)) }
}

/// How a client talks to a coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The largest message sent or accepted, in MiB.
    pub max_message_mib: usize,
    pub connect_timeout: Duration,
    /// Bounds each call until its answer starts; none when `None`.
    pub request_timeout: Option<Duration>,
    /// HTTP/2 pings every first duration, given up after the second: they
    /// detect a dead connection while a call is in flight.
    pub keep_alive: Option<(Duration, Duration)>,
    /// For an `https://` URL: the CA certificate(s) (PEM) the coordinator's
    /// certificate must chain to; the system's roots when `None`.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            max_message_mib: DEFAULT_MAX_MESSAGE_MIB,
            connect_timeout: Duration::from_secs(10),
            request_timeout: None,
            keep_alive: None,
            ca_pem: None,
        }
    }
}

/// The generated clients' transport: a channel with the bearer token on every call.
pub type Authorized = InterceptedService<Channel, BearerToken>;

/// A channel to a coordinator with its token and message limit; clients
/// made from it share the channel.
#[derive(Clone, Debug)]
pub struct Connection {
    channel: Channel,
    token: BearerToken,
    max_message_bytes: usize,
}

/// Check everything about a connection that can be checked without connecting.
fn prepare(url: &str, token: &str, options: &ClientOptions) -> Result<(Endpoint, BearerToken, usize), ClientError> {
    let max_message_bytes = max_message_bytes(options.max_message_mib)?;
    let bad_url = |message: String| ClientError::Url { url: url.to_owned(), message };
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| bad_url(e.to_string()))?;
    let scheme = endpoint.uri().scheme_str().unwrap_or("");
    let mut endpoint = match (scheme, &options.ca_pem) {
        ("http", None) => endpoint,
        ("http", Some(_)) => {
            return Err(bad_url(
                "a CA certificate was given (--ca), so the coordinator speaks TLS: use https://HOST:PORT".to_owned(),
            ));
        }
        ("https", ca) => {
            let tls = match ca {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_native_roots(),
            };
            endpoint.tls_config(tls).map_err(|e| bad_url(format!("TLS cannot be set up: {e}")))?
        }
        (other, _) => {
            return Err(bad_url(format!(
                "expected a URL such as http://HOST:PORT or https://HOST:PORT (scheme `{other}` is not supported)"
            )));
        }
    };
    let token = BearerToken::new(token).map_err(ClientError::Token)?;
    endpoint = endpoint.connect_timeout(options.connect_timeout).tcp_nodelay(true);
    if let Some(timeout) = options.request_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    if let Some((interval, timeout)) = options.keep_alive {
        endpoint = endpoint.http2_keep_alive_interval(interval).keep_alive_timeout(timeout);
    }
    Ok((endpoint, token, max_message_bytes))
}

impl Connection {
    /// Connect now: fails when the coordinator cannot be reached.
    pub async fn connect(url: &str, token: &str, options: &ClientOptions) -> Result<Connection, ClientError> {
        let (endpoint, token, max_message_bytes) = prepare(url, token, options)?;
        let channel =
            endpoint.connect().await.map_err(|source| ClientError::Connect { url: url.to_owned(), source })?;
        Ok(Connection { channel, token, max_message_bytes })
    }

    /// Connect on first use, and again after an outage. Needs a tokio
    /// runtime (the channel's task is spawned on it).
    pub fn lazy(url: &str, token: &str, options: &ClientOptions) -> Result<Connection, ClientError> {
        let (endpoint, token, max_message_bytes) = prepare(url, token, options)?;
        Ok(Connection { channel: endpoint.connect_lazy(), token, max_message_bytes })
    }

    /// The largest message this connection's clients send or accept.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// A client of the Sweeps service (submit, status, watch, query, …).
    pub fn sweeps(&self) -> SweepsClient<Authorized> {
        SweepsClient::with_interceptor(self.channel.clone(), self.token.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
    }

    /// A client of the standard gRPC health service (readiness probes).
    pub fn health(&self) -> tonic_health::pb::health_client::HealthClient<Authorized> {
        tonic_health::pb::health_client::HealthClient::with_interceptor(self.channel.clone(), self.token.clone())
    }

    /// A client of the Workers service (register, lease, heartbeat, complete, …).
    pub fn workers(&self) -> WorkersClient<Authorized> {
        WorkersClient::with_interceptor(self.channel.clone(), self.token.clone())
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_limit_has_one_range() {
        assert_eq!(max_message_bytes(DEFAULT_MAX_MESSAGE_MIB).unwrap(), 256 << 20);
        assert_eq!(max_message_bytes(1).unwrap(), 1 << 20);
        assert_eq!(max_message_bytes(MAX_MESSAGE_MIB_LIMIT).unwrap(), 4096 << 20);
        for mib in [0, MAX_MESSAGE_MIB_LIMIT + 1] {
            let error = max_message_bytes(mib).unwrap_err();
            assert_eq!(error.to_string(), format!("the message limit must be 1–4096 MiB, not {mib}"));
        }
    }

    /// A lazy channel spawns its task on the runtime, hence tokio::test.
    #[tokio::test]
    async fn urls_tokens_and_limits_are_checked_without_connecting() {
        let options = ClientOptions::default();
        let connection = Connection::lazy("http://127.0.0.1:7070", "t", &options).unwrap();
        assert_eq!(connection.max_message_bytes(), 256 << 20);
        assert!(matches!(Connection::lazy("not a url", "t", &options), Err(ClientError::Url { .. })));
        let ftp = Connection::lazy("ftp://example.com", "t", &options).unwrap_err();
        assert!(ftp.to_string().contains("scheme `ftp` is not supported"), "{ftp}");
        let with_ca = ClientOptions { ca_pem: Some(b"not used".to_vec()), ..ClientOptions::default() };
        let plain = Connection::lazy("http://127.0.0.1:7070", "t", &with_ca).unwrap_err();
        assert!(plain.to_string().contains("use https://HOST:PORT"), "{plain}");
        assert!(matches!(
            Connection::lazy("http://127.0.0.1:7070", "line\nbreak", &options),
            Err(ClientError::Token(_))
        ));
        let huge = ClientOptions { max_message_mib: 5000, ..ClientOptions::default() };
        assert!(matches!(Connection::lazy("http://127.0.0.1:7070", "t", &huge), Err(ClientError::MessageLimit(5000))));
    }

    #[tokio::test]
    async fn an_unreachable_coordinator_is_an_error_naming_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = Connection::connect(&url, "t", &ClientOptions::default()).await.unwrap_err();
        assert!(error.to_string().starts_with(&format!("cannot reach the coordinator at {url}")), "{error}");
    }
}
