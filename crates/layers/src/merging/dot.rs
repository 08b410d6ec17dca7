//! `Dot`: the dot product of two inputs along one axis of each, sample by sample
//! (`keras/src/layers/merging/dot.py`, Keras's `batch_dot`): the output has the first input's
//! other axes (batch first), then the second's other axes after its batch, or `(batch, 1)` when
//! that leaves none. With `normalize`, both inputs are first L2-normalised along their axis
//! (Keras's `normalize`: `x * rsqrt(max(sum(x²), 1e-14))`), giving cosine similarities.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::base_merge::only_output;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::config_with_name;
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// Keras's `epsilon()` squared: the least squared norm `normalize` divides by.
const EPSILON_SQUARED: f64 = 1e-7 * 1e-7;

/// The axes a [`Dot`] multiplies along, batch included, negative from the end: the same for
/// both inputs (`1`), or one each (`(1, 2)`). Saved as Keras saves it: `1` or `[1, 2]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DotAxes {
    /// The same axis of both inputs.
    Both(isize),
    /// An axis of the first input and one of the second.
    Each(isize, isize),
}

impl From<isize> for DotAxes {
    fn from(axis: isize) -> Self {
        DotAxes::Both(axis)
    }
}

impl From<(isize, isize)> for DotAxes {
    fn from((a, b): (isize, isize)) -> Self {
        DotAxes::Each(a, b)
    }
}

/// `Dot`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DotConfig {
    /// The axes to multiply along.
    pub axes: DotAxes,
    /// Whether to L2-normalise both inputs along those axes first (default false).
    pub normalize: bool,
}

/// The dot product of two inputs: `Dot::new(1)([a, b].into())`, or
/// [`dot`](fn@super::dot)`(&[a, b], 1)`.
pub type Dot = LayerBuilder<DotConfig>;

impl Dot {
    /// The product along `axes` (one for both inputs, or a pair), without normalising.
    pub fn new(axes: impl Into<DotAxes>) -> Self {
        LayerBuilder::from_config(DotConfig {
            axes: axes.into(),
            normalize: false,
        })
    }

    /// Whether to L2-normalise the inputs first (the output is then their cosine similarity).
    pub fn normalize(self, normalize: bool) -> Self {
        self.with(|c| c.normalize = normalize)
    }
}

impl LayerConfig for DotConfig {
    const CLASS_NAME: &'static str = "Dot";
    const NAME_PREFIX: &'static str = "dot";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(DotLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Dot`] builder makes.
pub struct DotLayer {
    base: LayerBase,
    config: DotConfig,
}

impl DotLayer {
    /// The two inputs, or an error naming the layer.
    fn pair<'a, T>(&self, inputs: &'a [T]) -> Result<(&'a T, &'a T)> {
        match inputs {
            [x, y] => Ok((x, y)),
            _ => Err(Error::config(
                self.name(),
                format!("a Dot layer takes exactly 2 inputs, got {}", inputs.len()),
            )),
        }
    }

    /// The axes to multiply inputs of these ranks along, each after the batch.
    fn axes(&self, x_rank: usize, y_rank: usize) -> Result<(usize, usize)> {
        let (a, b) = match self.config.axes {
            DotAxes::Both(axis) => (axis, axis),
            DotAxes::Each(a, b) => (a, b),
        };
        let resolve = |axis: isize, rank: usize| {
            let resolved = match axis < 0 {
                true => rank.checked_sub(axis.unsigned_abs()),
                false => Some(axis as usize),
            };
            resolved.filter(|&a| a >= 1 && a < rank).ok_or_else(|| {
                Error::config(
                    self.name(),
                    format!(
                        "axes {:?} do not name an axis after the batch of inputs of ranks \
                         {x_rank} and {y_rank}",
                        self.config.axes
                    ),
                )
            })
        };
        Ok((resolve(a, x_rank)?, resolve(b, y_rank)?))
    }

    /// The axes of `x` and `y` to multiply along, and how each enters the product, once their
    /// batches and the sizes along those axes are checked to agree.
    fn plan(&self, x: &Tensor, y: &Tensor) -> Result<(usize, usize, Operand, Operand)> {
        let (a, b) = self.axes(x.rank(), y.rank())?;
        let (xd, yd) = (x.dims(), y.dims());
        if xd[0] != yd[0] || xd[a] != yd[b] {
            return Err(Error::shape(
                self.name(),
                format!("inputs of one batch size and one size along axes {a} and {b}"),
                format!("{xd:?} and {yd:?}"),
            ));
        }
        Ok((a, b, Operand::new(xd, a, true), Operand::new(yd, b, false)))
    }

    /// The inputs as the product reads them: normalised along their axes if asked.
    fn operands(&self, x: &Tensor, y: &Tensor, a: usize, b: usize) -> Result<(Tensor, Tensor)> {
        match self.config.normalize {
            true => Ok((normalized(x, a)?.0, normalized(y, b)?.0)),
            false => Ok((x.clone(), y.clone())),
        }
    }
}

/// `x` L2-normalised along `axis`, with one over the (clamped) norm and its squared norm.
fn normalized(x: &Tensor, axis: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let squares = x.sqr()?.sum_keepdim(axis)?;
    let inverse = squares.maximum(EPSILON_SQUARED)?.sqrt()?.recip()?;
    Ok((x.broadcast_mul(&inverse)?, inverse, squares))
}

/// The gradient of `x` from that of `normalized(x, axis)`: `(g - x̂·sum(g·x̂)) / |x|` where the
/// norm is not clamped, `g / ε` where it is.
fn normalize_gradient(x: &Tensor, axis: usize, grad: &Tensor) -> Result<Tensor> {
    let (unit, inverse, squares) = normalized(x, axis)?;
    let unclamped = squares.gt(EPSILON_SQUARED)?.to_dtype(x.dtype())?;
    let along = (grad * &unit)?
        .sum_keepdim(axis)?
        .broadcast_mul(&unclamped)?;
    Ok((grad - unit.broadcast_mul(&along)?)?.broadcast_mul(&inverse)?)
}

/// The output's shape: the first input's axes but `a`, then the second's but the batch and
/// `b`, or `(batch, one)` when that leaves only the batch.
fn product_dims<T: Copy>(x: &[T], y: &[T], a: usize, b: usize, one: T) -> Vec<T> {
    let mut dims: Vec<T> = x.to_vec();
    dims.remove(a);
    dims.extend(
        y.iter()
            .enumerate()
            .filter(|&(i, _)| i != 0 && i != b)
            .map(|(_, &d)| d),
    );
    if dims.len() == 1 {
        dims.push(one);
    }
    dims
}

/// How an input enters the batched matrix product: permuted so that its multiplied axis comes
/// last (the first input) or right after the batch (the second), then seen as a batch of
/// matrices.
struct Operand {
    /// The permutation applied.
    perm: Vec<usize>,
    /// The input's shape once permuted.
    permuted: Vec<usize>,
    /// The batch of matrices: (batch, others, size) or (batch, size, others).
    matrices: (usize, usize, usize),
}

impl Operand {
    fn new(dims: &[usize], axis: usize, first: bool) -> Self {
        let rest: Vec<usize> = (1..dims.len()).filter(|&d| d != axis).collect();
        let others = rest.iter().map(|&d| dims[d]).product();
        let (perm, matrices): (Vec<usize>, _) = match first {
            true => (
                std::iter::once(0).chain(rest).chain([axis]).collect(),
                (dims[0], others, dims[axis]),
            ),
            false => (
                [0, axis].into_iter().chain(rest).collect(),
                (dims[0], dims[axis], others),
            ),
        };
        let permuted = perm.iter().map(|&p| dims[p]).collect();
        Operand {
            perm,
            permuted,
            matrices,
        }
    }

    /// `x` (of the shape this was made for) as its batch of matrices.
    fn matrices(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.permute(self.perm.clone())?.reshape(self.matrices)?)
    }

    /// The gradient of the batch of matrices, back in the input's shape.
    fn unmatrices(&self, grad: &Tensor) -> Result<Tensor> {
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(grad.reshape(self.permuted.clone())?.permute(inverse)?)
    }
}

impl Layer for DotLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <DotConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let (x, y) = self.pair(inputs)?;
        let (a, b) = self.axes(x.rank(), y.rank())?;
        if let (Some(n), Some(m)) = (x.dims()[a], y.dims()[b]) {
            if n != m {
                return Err(Error::shape(
                    self.name(),
                    format!("inputs of one size along axes {a} and {b}"),
                    format!("{x} and {y}"),
                ));
            }
        }
        let dims = product_dims(x.dims(), y.dims(), a, b, Some(1));
        Ok(vec![SymbolicShape(dims)])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let (x, y) = self.pair(inputs)?;
        let (a, b, px, py) = self.plan(x, y)?;
        let (x_unit, y_unit) = self.operands(x, y, a, b)?;
        let product = px.matrices(&x_unit)?.matmul(&py.matrices(&y_unit)?)?;
        let dims = product_dims(x.dims(), y.dims(), a, b, 1);
        Ok(vec![product.reshape(dims)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// Matrix products of candle's, on every device.
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y) = self.pair(&record.inputs)?;
        let (_, grad) = only_output(self.name(), &record, grad_outputs)?;
        let (a, b, px, py) = self.plan(x, y)?;
        let (x_unit, y_unit) = self.operands(x, y, a, b)?;
        let (batch, m, _) = px.matrices;
        let grad = grad.reshape((batch, m, py.matrices.2))?;
        let wants = |i: usize| needs_input_grad.get(i).copied().unwrap_or(false);
        // d(X·Y) = dZ·Yᵀ for X, Xᵀ·dZ for Y, then back through the normalisation if any.
        let back = |operand: &Operand, product: Tensor, input: &Tensor, axis: usize| {
            let g = operand.unmatrices(&product)?;
            match self.config.normalize {
                true => normalize_gradient(input, axis, &g),
                false => Ok(g),
            }
        };
        let dx = match wants(0) {
            true => {
                let product = grad.matmul(&py.matrices(&y_unit)?.t()?)?;
                Some(back(&px, product, x, a)?)
            }
            false => None,
        };
        let dy = match wants(1) {
            true => {
                let product = px.matrices(&x_unit)?.t()?.matmul(&grad)?;
                Some(back(&py, product, y, b)?)
            }
            false => None,
        };
        Ok(vec![dx, dy])
    }
}

/// The harness cases: vectors, a pair of axes, higher ranks, and normalised inputs.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // [1, 2, 3] · [4, 5, 6] = 4 + 10 + 18 = 32, as (batch, 1).
        merge_case(Dot::new(1), &[&[3], &[3]], "(None, 1)").forward(
            vec![input(&[1., 2., 3.], &[3]), input(&[4., 5., 6.], &[3])],
            vec![vec![32.]],
        ),
        // axes (1, 2): out[i][j] = sum_k x[k][i] y[j][k], x = [[1, 2], [3, 4]],
        // y = [[1, 0], [0, 1], [1, 1]]: columns of x [1, 3] and [2, 4] against the rows of y.
        merge_case(Dot::new((1, 2)), &[&[2, 2], &[3, 2]], "(None, 2, 3)").forward(
            vec![
                input(&[1., 2., 3., 4.], &[2, 2]),
                input(&[1., 0., 0., 1., 1., 1.], &[3, 2]),
            ],
            vec![vec![1., 3., 4., 2., 4., 6.]],
        ),
        // Normalised: [3, 4] / 5 · [2, 0] / 2 = 0.6.
        merge_case(Dot::new(-1).normalize(true), &[&[2], &[2]], "(None, 1)").forward(
            vec![input(&[3., 4.], &[2]), input(&[2., 0.], &[2])],
            vec![vec![0.6]],
        ),
        merge_case(Dot::new((3, 1)), &[&[2, 3, 4], &[4, 5]], "(None, 2, 3, 5)"),
        merge_case(
            Dot::new((2, 1)).normalize(true),
            &[&[3, 4], &[4]],
            "(None, 3)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn refuses_mismatched_sizes_and_axes() {
        let (a, b) = (Input::new(&[2, 3]), Input::new(&[4, 3]));
        assert_eq!(
            Dot::new(2)([a, b].into()).shape().unwrap().to_string(),
            "(None, 2, 4)"
        );
        let err = Dot::new(1)([a, b].into()).shape().unwrap_err().to_string();
        assert!(err.contains("axes 1 and 1"), "{err}");
        assert!(Dot::new(0)([a, b].into()).shape().is_err());
        assert!(Dot::new(3)([a, b].into()).shape().is_err());
        assert!(Dot::new(-1)([a, b, a].into()).shape().is_err());
    }

    #[test]
    fn saves_its_axes_as_keras_does() {
        let one = serde_json::to_value(Dot::new(1).config()).unwrap();
        assert_eq!(one["axes"], serde_json::json!(1));
        let pair = serde_json::to_value(Dot::new((1, -1)).config()).unwrap();
        assert_eq!(pair["axes"], serde_json::json!([1, -1]));
    }

    #[test]
    fn a_zero_vector_normalises_to_zero_with_a_finite_gradient() {
        let dev = &Device::Cpu;
        let x = Tensor::zeros((1, 2), candle_core::DType::F32, dev).unwrap();
        let (unit, _, _) = normalized(&x, 1).unwrap();
        assert_eq!(
            unit.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0.0, 0.0]
        );
        let g = Tensor::new(&[[1f32, 2.0]], dev).unwrap();
        let dx = normalize_gradient(&x, 1, &g).unwrap();
        // Clamped: g / 1e-7.
        assert_eq!(
            dx.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1e7, 2e7]
        );
    }
}
