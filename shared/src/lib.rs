//! The zonesweep model (docs/model.md), pure computation: no file or network
//! IO beyond parsing text it is handed, and nothing of tonic, prost, tokio or
//! redb.
//!
//! - [`data`]: the dataset format, its validation and gap filling;
//! - [`numerics`]: trend tests, natural breaks, ridge regression, splines;
//! - [`model`]: the chain, in the order of docs/model.md;
//! - [`sweep`]: specs, plans, designs, the sample runner and the mergeable
//!   aggregate;
//! - [`demo`]: the seeded synthetic demonstration dataset.

mod keyed;

pub mod data;
pub mod demo;
pub mod error;
pub mod model;
pub mod numerics;
pub mod sweep;
