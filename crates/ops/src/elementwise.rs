//! Elementwise products and sums outside candle's thread pool.
//!
//! candle 0.11 runs an elementwise op on more than 64 Ki elements on its own pool of threads,
//! which spin at a barrier until the op ends. Training runs each part of a batch on its own
//! thread already, so two parts that multiply at the same time queue for that pool, and its
//! workers spin on the cores the parts need: a Dropout mask's product cost about a seventh of the
//! MNIST convnet's step that way. Here the product is a plain loop, split over rayon's pool,
//! which the parts' threads share without spinning.

use crate::dense::map_pairs;
use crate::kernels_on;
use crate::storage::CpuView;
use candle_core::{DType, Tensor};

/// Name used in messages.
const OP: &str = "elementwise";

/// `a · b` elementwise. For f32 CPU tensors of one shape that track no gradient (the operands
/// of a hand-written backward pass), a loop outside candle's graph and thread pool, whose result
/// tracks no gradient either; otherwise candle's broadcasting `broadcast_mul`, recorded for
/// autograd as usual.
pub fn multiply(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    match plain_operands(a, b) {
        true => plain_binary(a, b, |a, b| a * b),
        false => a.broadcast_mul(b),
    }
}

/// `a + b` elementwise, as [`multiply`] computes its product (candle's `broadcast_add` where the
/// plain loop does not apply).
pub fn add(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    match plain_operands(a, b) {
        true => plain_binary(a, b, |a, b| a + b),
        false => a.broadcast_add(b),
    }
}

/// Whether `a` and `b` take the plain loop: f32 CPU tensors (outside a composed-ops scope) of
/// one shape, neither tracking a gradient.
fn plain_operands(a: &Tensor, b: &Tensor) -> bool {
    kernels_on(a.device())
        && a.shape() == b.shape()
        && a.dtype() == DType::F32
        && b.dtype() == DType::F32
        && a.device().same_device(b.device())
        && !a.track_op()
        && !b.track_op()
}

/// `f(a, b)` cell by cell, split over rayon's pool in vectorized runs ([`map_pairs`]), each
/// result cell written once (no zeroing pass before it).
fn plain_binary<F>(a: &Tensor, b: &Tensor, f: F) -> candle_core::Result<Tensor>
where
    F: Fn(f32, f32) -> f32 + Sync,
{
    let (a_view, b_view) = (CpuView::of(OP, "a", a)?, CpuView::of(OP, "b", b)?);
    let result = map_pairs(&a_view.f32()?, &b_view.f32()?, f);
    Tensor::from_vec(result, a.shape(), a.device())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{add, multiply};
    use crate::with_composed_ops;

    #[test]
    fn multiplies_cell_by_cell_over_many_chunks() -> candle_core::Result<()> {
        // 100 000 cells, more than three chunks: cell i holds i and 2, so the product is 2i.
        let n = 100_000usize;
        let a = Tensor::arange(0f32, n as f32, &Device::Cpu)?.reshape((4, n / 4))?;
        let b = Tensor::full(2f32, (4, n / 4), &Device::Cpu)?;
        let product = multiply(&a, &b)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(product.len(), n);
        assert!(product
            .iter()
            .enumerate()
            .all(|(i, &p)| p == 2.0 * i as f32));
        Ok(())
    }

    #[test]
    fn broadcasts_and_keeps_gradients_through_candle() -> candle_core::Result<()> {
        // A (2, 2) times a (1, 2) row: candle's broadcast product, [[1·10, 2·20], [3·10, 4·20]].
        let a = Var::new(&[[1f32, 2.], [3., 4.]], &Device::Cpu)?;
        let row = Tensor::new(&[[10f32, 20.]], &Device::Cpu)?;
        let product = multiply(a.as_tensor(), &row)?;
        assert_eq!(product.to_vec2::<f32>()?, [[10., 40.], [30., 80.]]);
        // Tracked: d(sum)/da is the row, broadcast.
        let grads = product.sum_all()?.backward()?;
        let grad = grads.get(a.as_tensor()).expect("a's gradient");
        assert_eq!(grad.to_vec2::<f32>()?, [[10., 20.], [10., 20.]]);
        Ok(())
    }

    #[test]
    fn the_composed_form_gives_the_same_product() -> candle_core::Result<()> {
        let a = Tensor::new(&[1.5f32, -2.0, 0.0], &Device::Cpu)?;
        let b = Tensor::new(&[2f32, 0.5, 7.0], &Device::Cpu)?;
        let composed = with_composed_ops(|| multiply(&a, &b))?;
        assert_eq!(multiply(&a, &b)?.to_vec1::<f32>()?, [3.0, -1.0, 0.0]);
        assert_eq!(composed.to_vec1::<f32>()?, [3.0, -1.0, 0.0]);
        // Sums: [1.5 + 2, -2 + 0.5, 0 + 7].
        let composed = with_composed_ops(|| add(&a, &b))?;
        assert_eq!(add(&a, &b)?.to_vec1::<f32>()?, [3.5, -1.5, 7.0]);
        assert_eq!(composed.to_vec1::<f32>()?, [3.5, -1.5, 7.0]);
        Ok(())
    }
}
