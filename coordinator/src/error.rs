//! The coordinator's one error type, and its one mapping to gRPC status
//! codes ([`CoordinatorError::code`]): a caller told UNAVAILABLE tries again,
//! so only trouble that may pass is UNAVAILABLE.

use tonic::{Code, Status};
use zonesweep_proto::ProtoError;

use crate::store::{StoreCause, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Not a `source`: the message already holds the store error's, and a
    /// report of the error chain would repeat it.
    #[error("storage: {0}")]
    Store(StoreError),
    /// A batch of the committer was not stored; every change in it is
    /// answered with this (the store error itself goes to one caller only).
    #[error("not stored: {message}")]
    NotStored { cause: StoreCause, message: String },
    #[error("{0}")]
    Internal(String),
    /// Passing trouble: the caller should retry.
    #[error("{0}")]
    Unavailable(String),
    /// The coordinator is busy with other requests of this kind: the
    /// caller may try again once they are done.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Stored data that cannot be read (a quarantined sweep): retrying
    /// reads the same bytes.
    #[error("{0}")]
    DataLoss(String),
    #[error("cannot serve: {0}")]
    Transport(String),
    #[error("invalid coordinator settings: {0}")]
    Config(String),
}

impl From<StoreError> for CoordinatorError {
    fn from(error: StoreError) -> Self {
        CoordinatorError::Store(error)
    }
}

impl From<ProtoError> for CoordinatorError {
    fn from(error: ProtoError) -> Self {
        CoordinatorError::InvalidArgument(error.to_string())
    }
}

/// The code that tells a caller what to do about a storage failure.
fn store_code(cause: StoreCause) -> Code {
    match cause {
        StoreCause::Transient => Code::Unavailable,
        StoreCause::Corrupt => Code::DataLoss,
        StoreCause::Unusable => Code::FailedPrecondition,
        StoreCause::Missing => Code::NotFound,
        StoreCause::Exists => Code::AlreadyExists,
        StoreCause::Refused => Code::Internal,
    }
}

impl CoordinatorError {
    /// The gRPC code of this error: UNAVAILABLE (retry) only for trouble
    /// that may pass; corrupt storage is DATA_LOSS, bad input
    /// INVALID_ARGUMENT, an unknown sweep NOT_FOUND.
    pub fn code(&self) -> Code {
        match self {
            CoordinatorError::NotFound(_) => Code::NotFound,
            CoordinatorError::InvalidArgument(_) | CoordinatorError::Config(_) => Code::InvalidArgument,
            CoordinatorError::FailedPrecondition(_) => Code::FailedPrecondition,
            CoordinatorError::Store(error) => store_code(error.cause()),
            CoordinatorError::NotStored { cause, .. } => store_code(*cause),
            CoordinatorError::Internal(_) | CoordinatorError::Transport(_) => Code::Internal,
            CoordinatorError::Unavailable(_) => Code::Unavailable,
            CoordinatorError::ResourceExhausted(_) => Code::ResourceExhausted,
            CoordinatorError::DataLoss(_) => Code::DataLoss,
        }
    }
}

/// The longest status message sent, in bytes: it travels in an HTTP/2
/// header (percent-encoded, so up to three times longer), and a header
/// over the client's limit loses the whole answer.
pub const MAX_STATUS_MESSAGE: usize = 4096;

/// `message` cut to [`MAX_STATUS_MESSAGE`] bytes at a character boundary,
/// saying that it was cut.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" … (cut)");
    }
    message
}

impl From<CoordinatorError> for Status {
    fn from(error: CoordinatorError) -> Status {
        let message = match &error {
            // The wire message of these omits the variant's framing.
            CoordinatorError::InvalidArgument(m)
            | CoordinatorError::FailedPrecondition(m)
            | CoordinatorError::Internal(m)
            | CoordinatorError::Unavailable(m)
            | CoordinatorError::ResourceExhausted(m)
            | CoordinatorError::DataLoss(m)
            | CoordinatorError::Transport(m)
            | CoordinatorError::Config(m) => m.clone(),
            other => other.to_string(),
        };
        Status::new(error.code(), bounded(message))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn each_cause_has_its_code() {
        let corrupt = StoreError::Corrupt { table: "aggregates", key: "sw-1".into(), reason: "truncated".into() };
        let cases = [
            (CoordinatorError::Store(corrupt), Code::DataLoss),
            (CoordinatorError::NotStored { cause: StoreCause::Transient, message: "disk".into() }, Code::Unavailable),
            (CoordinatorError::NotStored { cause: StoreCause::Corrupt, message: "page".into() }, Code::DataLoss),
            (CoordinatorError::Store(StoreError::InUse { path: PathBuf::from("db"), hint: "" }), Code::Unavailable),
            (CoordinatorError::Store(StoreError::JobAlreadyDone { sweep_id: "a".into(), job: 0 }), Code::Internal),
            (CoordinatorError::Store(StoreError::SweepExists { id: "a".into() }), Code::AlreadyExists),
            (CoordinatorError::NotFound("sweep sw-1".into()), Code::NotFound),
            (CoordinatorError::InvalidArgument("bad".into()), Code::InvalidArgument),
            (CoordinatorError::FailedPrecondition("cancelled".into()), Code::FailedPrecondition),
            (CoordinatorError::Unavailable("shutting down".into()), Code::Unavailable),
            (CoordinatorError::ResourceExhausted("busy".into()), Code::ResourceExhausted),
            (CoordinatorError::Internal("bug".into()), Code::Internal),
            (CoordinatorError::DataLoss("sweep sw-1: quarantined".into()), Code::DataLoss),
            (CoordinatorError::Store(StoreError::Empty { path: PathBuf::from("db") }), Code::FailedPrecondition),
            (
                CoordinatorError::Store(StoreError::Closed { path: PathBuf::from("db"), trouble: "".into() }),
                Code::Unavailable,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(Status::from(error).code(), code);
        }
    }

    #[test]
    fn long_messages_are_cut_to_fit_a_header() {
        let long = "é".repeat(MAX_STATUS_MESSAGE);
        let status = Status::from(CoordinatorError::InvalidArgument(long));
        assert!(status.message().len() <= MAX_STATUS_MESSAGE + " … (cut)".len(), "{}", status.message().len());
        assert!(status.message().starts_with("éé") && status.message().ends_with(" … (cut)"));
        let short = Status::from(CoordinatorError::InvalidArgument("short".into()));
        assert_eq!(short.message(), "short");
    }

    #[test]
    fn wire_messages_read_as_before() {
        let status = Status::from(CoordinatorError::NotFound("sweep sw-1".into()));
        assert_eq!(status.message(), "sweep sw-1 not found");
        let status = Status::from(CoordinatorError::InvalidArgument("the result is inconsistent".into()));
        assert_eq!(status.message(), "the result is inconsistent");
        let corrupt = StoreError::Corrupt { table: "sweeps", key: "sw-1".into(), reason: "truncated".into() };
        let status = Status::from(CoordinatorError::Store(corrupt));
        assert!(status.message().starts_with("storage: corrupt value in table `sweeps`"), "{status:?}");
    }
}
