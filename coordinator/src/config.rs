//! The coordinator's settings.

use std::path::PathBuf;
use std::time::Duration;

use zonesweep_proto::client::{DEFAULT_MAX_MESSAGE_MIB, MAX_MESSAGE_MIB_LIMIT};

use crate::error::CoordinatorError;

/// The most connections open at once unless configured otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Coordinator settings; [`CoordinatorConfig::validate`] checks that they
/// make sense together.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub db: PathBuf,
    pub token: String,
    /// Samples per job when a submission does not say.
    pub default_job_size: u64,
    pub heartbeat_interval: Duration,
    /// A lease without a heartbeat for this long expires.
    pub lease_timeout: Duration,
    /// A job that fails or expires this many times fails its sweep.
    pub max_attempts: u32,
    /// The longest a job may stay leased, heartbeats or not: a worker whose
    /// samples hang loses the job after this and it runs elsewhere.
    pub max_job_time: Duration,
    /// The largest message accepted or sent.
    pub max_message_bytes: usize,
    /// The most completions one durable commit takes.
    pub max_batch: usize,
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

impl CoordinatorConfig {
    pub fn new(db: PathBuf, token: String) -> CoordinatorConfig {
        CoordinatorConfig {
            db,
            token,
            default_job_size: 100,
            heartbeat_interval: Duration::from_secs(2),
            lease_timeout: Duration::from_secs(20),
            max_attempts: 5,
            max_job_time: Duration::from_secs(3600),
            max_message_bytes: DEFAULT_MAX_MESSAGE_MIB << 20,
            max_batch: 1024,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
        }
    }

    pub fn validate(&self) -> Result<(), CoordinatorError> {
        let bad = |m: &str| Err(CoordinatorError::Config(m.to_owned()));
        if self.token.is_empty() {
            return bad("the access token is empty");
        }
        if self.default_job_size == 0 {
            return bad("the default job size must be at least 1");
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
        if self.max_connections == 0 {
            return bad("the connection limit must be at least 1");
        }
        if [self.handshake_timeout, self.keepalive_interval, self.keepalive_timeout].contains(&Duration::ZERO) {
            return bad("the handshake timeout, keep-alive interval and keep-alive timeout must be longer than 0");
        }
        Ok(())
    }
}
