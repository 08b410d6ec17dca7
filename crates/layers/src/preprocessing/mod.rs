//! Preprocessing layers: `Rescaling`.

pub mod rescaling;
