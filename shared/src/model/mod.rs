//! The model chain in the order of docs/model.md: the [`coefficients`] and
//! the [`config`] schema; carbon [`indices`]; the STIRPAT fit and scenario
//! [`projection`]; [`zoning`]; [`chain`] runs them in order for one set of
//! parameters, and [`evaluation`] is the `evaluate --json` document.

pub mod chain;
pub mod coefficients;
pub mod config;
pub mod evaluation;
pub mod indices;
pub mod projection;
pub mod zoning;
