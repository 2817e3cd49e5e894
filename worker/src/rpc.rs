//! The connection to the coordinator: the client with its token, how a
//! status is classified (retry, fatal, refused), backoff, and the one-line
//! outage log shared by every loop.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::{Code, Status};
use zonesweep_proto::client::{Authorized, ClientError, ClientOptions, Connection};
use zonesweep_proto::pb::workers_client::WorkersClient;

use crate::error::WorkerError;

/// The generated client with the bearer token on every call.
pub(crate) type Client = WorkersClient<Authorized>;

/// Bounds every call, so a coordinator that hangs (stopped, partitioned)
/// looks like an outage instead of blocking a loop forever. Generous because
/// a completion waits for the coordinator's durable group commit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings detect a dead connection while a call is in flight.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Bounds on a whole call, waiting for a connection included: the
/// endpoint's timeout only starts once a request is on its way. Control
/// calls (register, lease, heartbeat) are answered from memory; a result or
/// a blob may wait for a durable commit or carry megabytes. A control call
/// must give up well within a lease's life (20 s by default), so one stalled
/// heartbeat is retried before the worker's leases expire.
pub(crate) const CONTROL_DEADLINE: Duration = Duration::from_secs(5);
pub(crate) const DATA_DEADLINE: Duration = Duration::from_secs(75);

/// Run one call within `deadline`; past it the call counts as an outage
/// (DEADLINE_EXCEEDED, retried), so no loop of the worker can wedge on it.
pub(crate) async fn bounded<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    tokio::time::timeout(deadline, call)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded(format!("no answer within {} s", deadline.as_secs()))))
}

/// A client that connects on first use and reconnects after an outage,
/// with messages up to `max_message_mib`.
pub(crate) fn connect(
    url: &str,
    token: &str,
    max_message_mib: usize,
    ca_pem: Option<Vec<u8>>,
) -> Result<Client, WorkerError> {
    let options = ClientOptions {
        max_message_mib,
        connect_timeout: CONNECT_TIMEOUT,
        request_timeout: Some(REQUEST_TIMEOUT),
        keep_alive: Some((KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT)),
        ca_pem,
    };
    let connection = Connection::lazy(url, token, &options).map_err(|error| match error {
        ClientError::Url { url, message } => WorkerError::CoordinatorUrl { url, message },
        other => WorkerError::Config(other.to_string()),
    })?;
    Ok(connection.workers())
}

/// What to do about a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The coordinator is unreachable, overloaded or restarting: try again
    /// after a backoff. Connection refused and dropped connections arrive
    /// as UNAVAILABLE or UNKNOWN, a request timeout as CANCELLED.
    Retry,
    /// The token is wrong: nothing this worker does will succeed.
    Fatal,
    /// The coordinator answered and said no (NOT_FOUND, FAILED_PRECONDITION,
    /// INVALID_ARGUMENT, OUT_OF_RANGE for an oversized message, …): the same
    /// request would get the same answer.
    Refused,
}

pub fn classify(status: &Status) -> Disposition {
    // TLS set up wrongly on one side: no retry mends it.
    if is_tls_trouble(status) {
        return Disposition::Fatal;
    }
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Unknown
        | Code::Aborted
        | Code::ResourceExhausted => Disposition::Retry,
        Code::Unauthenticated | Code::PermissionDenied => Disposition::Fatal,
        _ => Disposition::Refused,
    }
}

/// A refused certificate, or TLS spoken to a plain coordinator.
pub(crate) fn is_tls_trouble(status: &Status) -> bool {
    let message = status.message();
    message.contains("invalid peer certificate") || message.contains("InvalidContentType")
}

/// Exponential backoff: `first`, doubling, at most `max`.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max, next: first }
    }

    /// The delay to wait now; the one after it is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The worker's events, through `tracing`: each job and call at DEBUG
/// (`info`), the few a log of a standalone worker needs (connected, sweep
/// started, coordinator lost and back, stopped) at INFO (`notice`). The
/// program's subscriber decides what is shown (the embedded mode of `run`
/// shows warnings only: it draws a progress bar on the same terminal).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Log;

impl Log {
    pub fn info(&self, message: std::fmt::Arguments<'_>) {
        tracing::debug!("{message}");
    }

    pub fn notice(&self, message: std::fmt::Arguments<'_>) {
        tracing::info!("{message}");
    }
}

/// Whether the coordinator is reachable, as seen by every loop of this
/// worker, so an outage prints one line when it starts and one when it ends
/// however many calls fail in between.
#[derive(Debug, Default)]
pub(crate) struct Outage {
    since: Mutex<Option<Instant>>,
    /// Outages begun so far.
    begun: std::sync::atomic::AtomicU64,
}

impl Outage {
    pub fn failed(&self, log: Log, call: &str, status: &Status) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_none() {
            *since = Some(Instant::now());
            self.begun.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            log.notice(format_args!(
                "coordinator unreachable ({call}: {:?}: {}); retrying with backoff",
                status.code(),
                status.message()
            ));
        }
    }

    pub fn recovered(&self, log: Log) {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(start) = since.take() {
            log.notice(format_args!("coordinator reachable again after {:.1} s", start.elapsed().as_secs_f64()));
        }
    }

    /// How many outages have begun since the worker started.
    #[cfg(test)]
    pub fn begun(&self) -> u64 {
        self.begun.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long the current outage has lasted; zero when there is none.
    pub fn duration(&self) -> Duration {
        self.since.lock().unwrap_or_else(|e| e.into_inner()).map_or(Duration::ZERO, |start| start.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_are_retried_and_answers_are_not() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Cancelled, Code::Unknown, Code::ResourceExhausted]
        {
            assert_eq!(classify(&Status::new(code, "")), Disposition::Retry, "{code:?}");
        }
        for code in [Code::Unauthenticated, Code::PermissionDenied] {
            assert_eq!(classify(&Status::new(code, "")), Disposition::Fatal, "{code:?}");
        }
        for code in [Code::NotFound, Code::FailedPrecondition, Code::InvalidArgument, Code::OutOfRange, Code::Internal]
        {
            assert_eq!(classify(&Status::new(code, "")), Disposition::Refused, "{code:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<u128> = (0..9).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    /// A lazy channel spawns its task on the runtime, hence tokio::test.
    #[tokio::test]
    async fn urls_are_checked_without_connecting() {
        assert!(connect("http://127.0.0.1:7070", "t", 256, None).is_ok());
        assert!(matches!(connect("not a url", "t", 256, None), Err(WorkerError::CoordinatorUrl { .. })));
        assert!(matches!(connect("ftp://example.com", "t", 256, None), Err(WorkerError::CoordinatorUrl { .. })));
        assert!(matches!(connect("http://127.0.0.1:7070", "line\nbreak", 256, None), Err(WorkerError::Config(_))));
        let limit = connect("http://127.0.0.1:7070", "t", 0, None).unwrap_err();
        assert!(limit.to_string().contains("message limit must be 1–4096 MiB"), "{limit}");
    }
}
