//! The zonesweep model chain (docs/model.md): datasets, carbon indices,
//! Theil-Sen / Mann-Kendall trends, STIRPAT by ridge regression, scenario
//! projection, zoning, sweep sampling and mergeable aggregates.
//!
//! Pure computation: no file or network IO beyond parsing text it is handed,
//! and nothing of tonic, prost, tokio or redb.

pub mod blob;
pub mod chain;
pub mod coefficients;
pub mod config;
mod keyed;

pub mod dataset;
pub mod demo;
pub mod error;
pub mod evaluation;
pub mod fields;
pub mod indices;
pub mod numerics;
pub mod projection;
pub mod sweep;
pub mod zoning;
