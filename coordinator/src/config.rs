//! The coordinator's settings.

use std::path::PathBuf;
use std::time::Duration;

use zonesweep_proto::auth::TokenTable;
use zonesweep_proto::client::{DEFAULT_MAX_MESSAGE_MIB, MAX_MESSAGE_MIB_LIMIT};

use crate::error::CoordinatorError;
use crate::submission::JobSizing;

/// The most connections open at once unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Coordinator settings; [`CoordinatorConfig::validate`] checks that they
/// make sense together.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub db: PathBuf,
    /// The one token (every role), used when `tokens` is `None`.
    pub token: String,
    /// Tokens with roles, from a token file; replaces `token`.
    pub tokens: Option<TokenTable>,
    /// The server's certificate chain and private key (PEM): TLS when given.
    pub tls: Option<TlsIdentity>,
    /// The job size of a submission that does not say.
    pub job_sizing: JobSizing,
    pub heartbeat_interval: Duration,
    /// A lease without a heartbeat for this long expires.
    pub lease_timeout: Duration,
    /// A job that fails this many times (an error its worker reported, or a
    /// run past `max_job_time`) fails its sweep. Lease expiries of silent
    /// workers do not count: they are faults of the infrastructure.
    pub max_attempts: u32,
    /// The longest a job may stay leased, heartbeats or not: a worker whose
    /// samples hang loses the job after this and it runs elsewhere.
    pub max_job_time: Duration,
    /// The largest message accepted or sent.
    pub max_message_bytes: usize,
    /// The most completions one durable commit takes.
    pub max_batch: usize,
    /// A running sweep's merged aggregate is stored as a checkpoint and the
    /// deltas of the group commits after it; once this many deltas follow
    /// the checkpoint, the next commit writes a new checkpoint (0: every
    /// commit does). Fewer means more writing, more means longer recovery.
    pub checkpoint_every: u32,
    /// How many submissions are parsed and planned at once; more wait.
    pub preparing_at_once: usize,
    /// The most request bytes of submissions waiting or being prepared at
    /// once (at least one message's worth is always allowed); a submission
    /// beyond it is refused with RESOURCE_EXHAUSTED.
    pub preparation_budget_bytes: u64,
    /// The most client and worker connections open at once; one more is
    /// closed as soon as it is accepted. Lowered at start to what the
    /// process may open (see [`crate::connections::fd_budget`]).
    pub max_connections: usize,
    /// A connection that has made no call with the token this long after
    /// it opened (one that never speaks HTTP/2, or never sends a request)
    /// is closed.
    pub handshake_timeout: Duration,
    /// Between two HTTP/2 pings the coordinator sends on each connection.
    pub keepalive_interval: Duration,
    /// A connection whose peer does not answer a ping within this is closed.
    pub keepalive_timeout: Duration,
}

/// A server certificate chain and its private key, as PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl TlsIdentity {
    /// Whether the files hold a certificate chain and the private key of
    /// its first certificate; the reason when not.
    pub fn check(&self) -> Result<(), String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the certificate file is not valid PEM ({e})"))?;
        if certs.is_empty() {
            return Err("the certificate file holds no certificate (-----BEGIN CERTIFICATE-----)".to_owned());
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| format!("the key file holds no private key in PEM ({e})"))?;
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(certs, key, &provider)
            .map_err(|e| format!("the key is not the certificate's ({e})"))?;
        Ok(())
    }
}

/// Never shows the key.
impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("cert_pem_bytes", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

impl CoordinatorConfig {
    pub fn new(db: PathBuf, token: String) -> CoordinatorConfig {
        CoordinatorConfig {
            db,
            token,
            tokens: None,
            tls: None,
            job_sizing: JobSizing::Seconds(1.0),
            heartbeat_interval: Duration::from_secs(2),
            lease_timeout: Duration::from_secs(20),
            max_attempts: 5,
            max_job_time: Duration::from_secs(3600),
            max_message_bytes: DEFAULT_MAX_MESSAGE_MIB << 20,
            max_batch: 1024,
            checkpoint_every: crate::committer::DEFAULT_CHECKPOINT_EVERY,
            preparing_at_once: 2,
            preparation_budget_bytes: 1 << 30,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
        }
    }

    /// A registered worker silent for this long and holding no lease is
    /// forgotten: ten lease timeouts, and at least five minutes.
    pub fn worker_silence(&self) -> Duration {
        (self.lease_timeout * 10).max(Duration::from_secs(300))
    }

    /// The tokens calls are checked against.
    pub fn token_table(&self) -> Result<TokenTable, CoordinatorError> {
        match &self.tokens {
            Some(table) => Ok(table.clone()),
            None => TokenTable::single(&self.token).map_err(CoordinatorError::Config),
        }
    }

    pub fn validate(&self) -> Result<(), CoordinatorError> {
        let bad = |m: &str| Err(CoordinatorError::Config(m.to_owned()));
        if self.tokens.is_none() && self.token.is_empty() {
            return bad("the access token is empty");
        }
        if let Some(tls) = &self.tls {
            tls.check().map_err(|why| {
                CoordinatorError::Config(format!("the TLS certificate and key cannot be used together: {why}"))
            })?;
        }
        match self.job_sizing {
            JobSizing::Fixed(0) => return bad("the default job size must be at least 1"),
            JobSizing::Seconds(seconds) if !(seconds > 0.0 && seconds <= 86_400.0) => {
                return bad("the seconds a job is sized for must be more than 0 and at most 86,400 (a day)");
            }
            _ => {}
        }
        if self.lease_timeout < self.heartbeat_interval * 3 {
            return bad(
                "the lease timeout must be at least three heartbeat intervals, or live workers lose their leases",
            );
        }
        if self.max_job_time < self.lease_timeout {
            return bad("the maximum job time must be at least the lease timeout");
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > MAX_MESSAGE_MIB_LIMIT << 20 {
            return bad("the message limit must be 1 byte to 4096 MiB");
        }
        if self.max_attempts == 0 || self.max_batch == 0 {
            return bad("max attempts and max batch must be at least 1");
        }
        if self.preparing_at_once == 0 || self.preparation_budget_bytes == 0 {
            return bad("the submissions prepared at once and their byte budget must be at least 1");
        }
        if self.max_connections == 0 {
            return bad("the connection limit must be at least 1");
        }
        if [self.handshake_timeout, self.keepalive_interval, self.keepalive_timeout].contains(&Duration::ZERO) {
            return bad("the handshake timeout, keep-alive interval and keep-alive timeout must be longer than 0");
        }
        Ok(())
    }
}
