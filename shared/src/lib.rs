//! The zonesweep model chain (MODEL.md): datasets, carbon indices,
//! Theil-Sen / Mann-Kendall trends, STIRPAT by ridge regression, scenario
//! projection, zoning, sweep sampling and mergeable aggregates.
//!
//! Pure computation: no file or network IO beyond parsing text it is handed,
//! and nothing of tonic, prost, tokio or redb.

pub mod dataset;
pub mod fields;
pub mod spline;
pub mod coefficients;
pub mod config;
pub mod demo;
pub mod error;
pub mod indices;
pub mod trend;
pub mod jenks;
pub mod ridge;
pub mod projection;
pub mod zoning;
pub mod chain;
pub mod evaluation;
pub mod distribution;
pub mod sweep;
pub mod histogram;
pub mod aggregate;
pub mod runner;
pub mod blob;
