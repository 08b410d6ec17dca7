//! The optional `gamma` (scale) and `beta` (offset) a normalization layer owns, with their
//! regularizers.

use candle_core::{Tensor, Var};

use crate::initializers::Initializer;
use crate::limits::claim_weight;
use crate::regularizers::Regularizer;
use crate::session::default_device;
use crate::{LayerBase, Result, Weight};

/// A weight of `shape` drawn from `init` for `layer`, once its size passes [`claim_weight`].
pub(super) fn new_weight(layer: &str, shape: &[usize], init: &Initializer) -> Result<Var> {
    claim_weight(layer, shape)?;
    Ok(Var::from_tensor(
        &init.initialize(shape, &default_device())?,
    )?)
}

/// `gamma` and `beta`, each present only when the layer scales or centers.
pub(super) struct ScaleOffset {
    pub gamma: Option<Var>,
    pub beta: Option<Var>,
}

impl ScaleOffset {
    /// Draws `gamma` from `scale` and `beta` from `center` (when given), both of `shape`.
    pub(super) fn new(
        layer: &str,
        shape: &[usize],
        scale: Option<&Initializer>,
        center: Option<&Initializer>,
    ) -> Result<Self> {
        Ok(ScaleOffset {
            gamma: scale
                .map(|init| new_weight(layer, shape, init))
                .transpose()?,
            beta: center
                .map(|init| new_weight(layer, shape, init))
                .transpose()?,
        })
    }

    /// `gamma` then `beta`, as the layer's weights.
    pub(super) fn weights(&self, base: &LayerBase) -> Vec<Weight> {
        let named = [("gamma", &self.gamma), ("beta", &self.beta)];
        named
            .into_iter()
            .filter_map(|(path, var)| var.as_ref().map(|v| base.weight(path, v)))
            .collect()
    }

    /// The penalties of the regularizers on `gamma` and `beta`, for those the layer has.
    pub(super) fn penalties(
        &self,
        gamma: Option<&Regularizer>,
        beta: Option<&Regularizer>,
    ) -> Result<Vec<Tensor>> {
        let pairs = [(gamma, &self.gamma), (beta, &self.beta)];
        let mut losses = Vec::new();
        for (regularizer, var) in pairs {
            if let (Some(r), Some(v)) = (regularizer, var) {
                losses.push(r.penalty(v.as_tensor())?);
            }
        }
        Ok(losses)
    }
}

/// The builder methods of a normalization layer's options shared by `BatchNormalization` and
/// `LayerNormalization`, for a config with the fields `epsilon`, `center`, `scale`,
/// `beta_initializer`, `gamma_initializer`, `beta_regularizer` and `gamma_regularizer`.
macro_rules! scale_offset_options {
    () => {
        /// The small value added to the variance before its square root.
        pub fn epsilon(self, epsilon: f64) -> Self {
            self.with(|c| c.epsilon = epsilon)
        }

        /// Whether to add the offset `beta`.
        pub fn center(self, center: bool) -> Self {
            self.with(|c| c.center = center)
        }

        /// Whether to multiply by the scale `gamma`.
        pub fn scale(self, scale: bool) -> Self {
            self.with(|c| c.scale = scale)
        }

        /// The initializer of `beta`.
        pub fn beta_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.beta_initializer = init)
        }

        /// The initializer of `gamma`.
        pub fn gamma_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.gamma_initializer = init)
        }

        /// A penalty on `beta`.
        pub fn beta_regularizer(self, r: Regularizer) -> Self {
            self.with(|c| c.beta_regularizer = Some(r))
        }

        /// A penalty on `gamma`.
        pub fn gamma_regularizer(self, r: Regularizer) -> Self {
            self.with(|c| c.gamma_regularizer = Some(r))
        }
    };
}
pub(super) use scale_offset_options;

/// Refuses an `epsilon` that is negative or not finite, naming `layer`.
pub(super) fn check_epsilon(layer: &str, epsilon: f64) -> Result<()> {
    if epsilon.is_finite() && epsilon >= 0.0 {
        return Ok(());
    }
    Err(crate::Error::config(
        layer,
        format!("epsilon must be finite and non-negative, got {epsilon}"),
    ))
}
