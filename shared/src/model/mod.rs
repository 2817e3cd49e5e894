//! The model chain in the order of docs/model.md: the [`coefficients`] and
//! the [`config`] schema (each key documented in [`config_keys`]); carbon
//! [`indices`]; the STIRPAT fit and scenario [`projection`]; [`zoning`]; [`chain`] runs them in order for one set of
//! parameters, and [`evaluation`] is the `evaluate --json` document.

pub mod chain;
pub mod coefficients;
pub mod config;
pub mod config_keys;
pub mod evaluation;
pub mod indices;
pub mod projection;
pub mod zoning;
