//! Two consecutive calls run as one, where a kernel does both for less than each alone: a
//! `Conv2D` (ReLU or linear) whose output only a `MaxPooling2D` reads is convolved and pooled in
//! one pass that never writes the convolution's output in full, and differentiated in one pass
//! that never writes that output's gradient. A model asks here first for each such pair of its
//! nodes, forward ([`call_pair`]) and backward ([`backward_pair`]); a pair with no fused pass is
//! run call by call, with the same result.

use candle_core::Tensor;
use rkeras_ops::PoolWinners;

use crate::pooling::base_pooling::PoolingLayer;
use crate::pooling::max_pooling2d::MaxPooling2DKind;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Conv2DLayer, Error, Layer, Result};

/// Two calls run as one by [`call_pair`].
pub struct PairCall {
    /// The consumer's outputs.
    pub outputs: Vec<Tensor>,
    /// In a recording context, the records of the producer's call and of the consumer's, which
    /// only [`backward_pair`] differentiates: the producer's output is never made, so its
    /// record holds no output, and the consumer's record no input.
    pub records: Option<(CallRecord, CallRecord)>,
}

/// `consumer`'s call on the only output of `producer`'s call on `inputs` (its only reader), in
/// one pass, when the pair has one. None when it does not: the caller then runs the two calls.
pub fn call_pair(
    producer: &dyn Layer,
    consumer: &dyn Layer,
    inputs: &[Tensor],
    ctx: &mut CallContext,
) -> Option<Result<PairCall>> {
    let conv = producer.as_any().downcast_ref::<Conv2DLayer>()?;
    let pool = consumer
        .as_any()
        .downcast_ref::<PoolingLayer<MaxPooling2DKind>>()?;
    let [x] = inputs else {
        return None;
    };
    let called = conv.call_through_max_pool(x, |dims| pool.window_over(dims), ctx)?;
    Some(called.map(|(pooled, winners)| {
        let records = ctx.is_recording().then(|| {
            let producer_record = CallRecord::new(vec![x.clone()], Vec::new());
            let mut consumer_record = CallRecord::new(Vec::new(), vec![pooled.clone()]);
            consumer_record.state = Some(Box::new(winners));
            (producer_record, consumer_record)
        });
        PairCall {
            outputs: vec![pooled],
            records,
        }
    }))
}

/// The backward pass of two calls that [`call_pair`] ran as one, from their records: given the
/// gradients of the consumer's outputs, adds the producer's weight gradients to `weight_grads`
/// and returns the gradients of the producer's inputs (`None` where `needs_input_grad` is
/// false). None for records of calls run one by one.
pub fn backward_pair(
    producer: &dyn Layer,
    producer_record: &CallRecord,
    consumer_record: &CallRecord,
    grad_outputs: &[Tensor],
    needs_input_grad: &[bool],
    weight_grads: &mut WeightGrads,
) -> Option<Result<Vec<Option<Tensor>>>> {
    let winners = consumer_record.saved_if::<PoolWinners>()?;
    let conv = producer.as_any().downcast_ref::<Conv2DLayer>()?;
    let (Some(x), Some(pooled), Some(grad)) = (
        producer_record.inputs.first(),
        consumer_record.outputs.first(),
        grad_outputs.first(),
    ) else {
        return Some(Err(Error::config(
            conv.name(),
            "a backward pass through a max pooling needs the input, the pooled output and its gradient",
        )));
    };
    Some(conv.backward_through_max_pool(x, pooled, grad, winners, needs_input_grad, weight_grads))
}
