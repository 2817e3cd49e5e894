//! The zonesweep model chain (docs/model.md): datasets, carbon indices,
//! Theil-Sen / Mann-Kendall trends, STIRPAT by ridge regression, scenario
//! projection, zoning, sweep sampling and mergeable aggregates.
//!
//! Pure computation: no file or network IO beyond parsing text it is handed,
//! and nothing of tonic, prost, tokio or redb.

pub mod aggregate;
pub mod blob;
pub mod chain;
pub mod coefficients;
pub mod config;
pub mod count_table;
mod keyed;

pub mod dataset;
pub mod demo;
pub mod distribution;
pub mod error;
pub mod evaluation;
pub mod fields;
pub mod histogram;
pub mod indices;
pub mod jenks;
pub mod projection;
pub mod ridge;
pub mod runner;
pub mod spline;
pub mod sweep;
pub mod trend;
pub mod zoning;
