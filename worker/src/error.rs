//! The worker's one error type. Only what ends [`crate::run`] is an error:
//! an unreachable coordinator is retried, a refused job result is logged.

use tonic::Code;

/// Why the worker stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("invalid worker configuration: {0}")]
    Config(String),
    #[error("`{url}` is not a valid coordinator URL: {message}")]
    CoordinatorUrl { url: String, message: String },
    #[error("could not start the worker thread pool: {0}")]
    ThreadPool(String),
    /// The coordinator refused the token (UNAUTHENTICATED or PERMISSION_DENIED):
    /// retrying cannot help.
    #[error("the coordinator refused this worker's token ({code:?}): {message}")]
    Unauthenticated { code: Code, message: String },
    /// Registration was answered with a status no retry can change.
    #[error("the coordinator refused to register this worker ({code:?}): {message}")]
    RegisterRefused { code: Code, message: String },
    /// The coordinator answered with something that breaks the contract.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS is set up wrongly: a certificate the worker does not trust, or
    /// TLS spoken to a coordinator that serves plain HTTP/2.
    #[error("TLS with the coordinator failed: {0} (check the URL's scheme and --ca)")]
    Tls(String),
    /// The coordinator was unreachable for longer than `--max-disconnect`.
    #[error("the coordinator has been unreachable for {seconds:.0} s (the limit set by --max-disconnect); giving up")]
    Disconnected { seconds: f64 },
}

impl WorkerError {
    pub(crate) fn from_auth_status(status: &tonic::Status) -> WorkerError {
        if crate::rpc::is_tls_trouble(status) {
            return WorkerError::Tls(status.message().to_owned());
        }
        WorkerError::Unauthenticated { code: status.code(), message: status.message().to_owned() }
    }
}
