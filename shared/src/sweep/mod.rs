//! Sweeps (docs/model.md section 8): a spec names the uncertain parameters
//! ([`spec`]); resolved against a configuration it becomes a plan of
//! dimensions ([`plan`]) whose uniform numbers for sample k come from the
//! design ([`design`]) and depend only on (seed, k) (and, for a Latin
//! hypercube, the sample count), so any subset of a sweep's samples can be
//! computed anywhere, in any order; the [`runner`] runs samples into the
//! mergeable [`aggregate`].

pub mod aggregate;
pub mod answers;
pub mod count_table;
pub mod design;
pub mod distribution;
pub mod fast;
pub mod histogram;
pub mod plan;
pub mod runner;
pub mod sensitivity;
pub mod sparse;
pub mod spec;

pub use design::{Design, SOBOL_MAX_DIMENSIONS, Side, design_points};
pub use plan::{Dimension, Draw, Plan, Target};
pub use spec::{
    CapEntry, Categorical, CoefficientEntry, NoiseEntry, RateEntry, ReadingEntry, ReadingValue, SensitivityGroups,
    SensitivityMethod, SensitivitySpec, SweepError, SweepSpec,
};
