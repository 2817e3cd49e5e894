//! The gRPC contract of zonesweep. This crate owns the generated wire types
//! ([`pb`]); other crates convert at the boundary ([`convert`]) into the
//! typed ids of [`ids`], the sweep statuses of [`status`] and the
//! `zonesweep_shared` aggregates.

#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("zonesweep.v1");
}

pub mod auth;
pub mod client;
pub mod convert;
pub mod ids;
pub mod status;

pub use tonic;

/// A wire value that does not convert into its domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("`{value}` is not a valid {kind} id")]
    BadId { kind: &'static str, value: String },
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl From<ProtoError> for tonic::Status {
    fn from(error: ProtoError) -> tonic::Status {
        tonic::Status::invalid_argument(error.to_string())
    }
}
