//! Core layers: `Input`, `Dense`, `Activation`, `Lambda`.

pub mod activation;
pub mod dense;
pub mod input;
pub mod lambda;
