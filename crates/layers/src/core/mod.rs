//! Core layers: `Input`, `Dense`, `Embedding`, `Activation`, `Identity`, `Lambda`.

pub mod activation;
pub mod dense;
pub mod embedding;
pub mod identity;
pub mod input;
pub mod lambda;
