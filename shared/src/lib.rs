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

/// The revision of the model chain's arithmetic: which bits a sample of
/// given (dataset, configuration, spec, k) comes out as.
///
/// Two builds of one revision compute every sample bit for bit alike on
/// any machine (docs/model.md, "Determinism"); two revisions may differ in
/// the last bit of a value, which can move a histogram bin or break a
/// near-tie. A coordinator records its revision in every sweep it accepts
/// and takes workers of that revision only, so one sweep's results never
/// mix two revisions. Raise it with every change that alters any sample's
/// outcome; `shared/tests/chain_revision.rs` pins a digest of every bit of
/// a few samples' outcomes to it and fails until the revision and the
/// pinned digest are changed together.
pub const CHAIN_REVISION: u32 = 1;
pub mod model;
pub mod numerics;
pub mod sweep;
