//! The coordinator's one error type, and its one mapping to gRPC status codes.

use tonic::Status;
use zonesweep_proto::ProtoError;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
    /// Passing trouble: the caller should retry.
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot serve: {0}")]
    Transport(String),
    #[error("invalid coordinator settings: {0}")]
    Config(String),
}

impl From<ProtoError> for CoordinatorError {
    fn from(error: ProtoError) -> Self {
        CoordinatorError::InvalidArgument(error.to_string())
    }
}

impl From<CoordinatorError> for Status {
    fn from(error: CoordinatorError) -> Status {
        match error {
            CoordinatorError::NotFound(what) => Status::not_found(format!("{what} not found")),
            CoordinatorError::InvalidArgument(message) => Status::invalid_argument(message),
            CoordinatorError::FailedPrecondition(message) => Status::failed_precondition(message),
            // Storage trouble is the server's, and a retry may succeed.
            CoordinatorError::Store(e) => Status::unavailable(format!("storage: {e}")),
            CoordinatorError::Internal(message) => Status::internal(message),
            CoordinatorError::Unavailable(message) => Status::unavailable(message),
            CoordinatorError::Transport(message) | CoordinatorError::Config(message) => Status::internal(message),
        }
    }
}
