//! The zonesweep coordinator: splits sweeps into jobs, leases them to
//! workers, merges their results exactly once into a redb database with
//! group commits, and answers queries. The only crate that knows redb.

pub mod committer;
pub mod config;
pub mod connections;
pub mod error;
mod expiry;
mod grpc;
mod health;
pub mod offline;
pub mod schema;
pub mod server;
pub mod service;
pub mod state;
pub mod store;
pub mod submission;
pub mod sweep;

pub use config::CoordinatorConfig;
pub use error::CoordinatorError;
pub use service::Coordinator;
