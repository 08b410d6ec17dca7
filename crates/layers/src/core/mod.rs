//! Core layers: `Input`, `Dense`, `Embedding`, `Activation`, `Lambda`.

pub mod activation;
pub mod dense;
pub mod embedding;
pub mod input;
pub mod lambda;
