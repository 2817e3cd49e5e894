//! The zonesweep model (docs/model.md), pure computation: no file or network
//! IO beyond parsing text it is handed, and nothing of tonic, prost, tokio or
//! redb.
//!
//! - [`data`]: the dataset format, its validation and gap filling, and the
//!   seeded synthetic demonstration dataset;
//! - [`numerics`]: trend tests, natural breaks, ridge regression, splines;
//! - [`model`]: the chain, in the order of docs/model.md;
//! - [`sweep`]: specs, plans, designs, the sample runner and the mergeable
//!   aggregate;

mod keyed;

pub mod data;
pub mod error;
pub mod model;
pub mod numerics;
pub mod sweep;
