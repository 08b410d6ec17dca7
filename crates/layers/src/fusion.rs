//! Backward passes of two consecutive calls in one, where a kernel does both for less than each
//! alone: a `Conv2D` (ReLU or linear) whose output only a `MaxPooling2D` reads. A model's
//! backward pass asks here first for each such pair of its nodes; a pair with no fused pass is
//! differentiated call by call, with the same result.

use candle_core::Tensor;

use crate::pooling::base_pooling::PoolingLayer;
use crate::pooling::max_pooling2d::MaxPooling2DKind;
use crate::record::{CallRecord, WeightGrads};
use crate::{Conv2DLayer, Layer, Result};

/// The backward pass of `producer`'s call and `consumer`'s call on the producer's only output
/// (its only reader), in one: given the gradients of the consumer's outputs, adds the producer's
/// weight gradients to `weight_grads` and returns the gradients of the producer's inputs (`None`
/// where `needs_input_grad` is false). The consumer holds no trainable weight. None when the
/// pair has no fused pass.
pub fn backward_pair(
    producer: &dyn Layer,
    producer_record: &CallRecord,
    consumer: &dyn Layer,
    consumer_record: &CallRecord,
    grad_outputs: &[Tensor],
    needs_input_grad: &[bool],
    weight_grads: &mut WeightGrads,
) -> Option<Result<Vec<Option<Tensor>>>> {
    let conv = producer.as_any().downcast_ref::<Conv2DLayer>()?;
    let pool = consumer
        .as_any()
        .downcast_ref::<PoolingLayer<MaxPooling2DKind>>()?;
    if consumer_record.is_differentiated_by_autograd() {
        return None;
    }
    let pooling = match pool.max_pool_gradient(consumer_record, grad_outputs)? {
        Ok(pooling) => pooling,
        Err(err) => return Some(Err(err)),
    };
    conv.backward_through_max_pool(producer_record, &pooling, needs_input_grad, weight_grads)
}
