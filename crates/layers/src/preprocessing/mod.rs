//! Preprocessing layers: `Normalization`, `Rescaling`.

pub mod normalization;
pub mod rescaling;
