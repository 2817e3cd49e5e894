//! The dataset format (docs/model.md section 2): the 41 panel [`fields`],
//! parsing and validation of a dataset folder ([`dataset`], with spline
//! filling of interior gaps), and a dataset as one content-hashed [`blob`]
//! for the wire; [`demo`], the seeded synthetic demonstration dataset and its
//! calibration targets.

pub mod blob;
pub mod dataset;
pub mod demo;
pub mod fields;
