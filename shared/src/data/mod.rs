//! The dataset format (docs/model.md section 2): the 41 panel [`fields`],
//! parsing and validation of a dataset folder ([`dataset`], with spline
//! filling of interior gaps), and a dataset as one content-hashed [`blob`]
//! for the wire.

pub mod blob;
pub mod dataset;
pub mod fields;
