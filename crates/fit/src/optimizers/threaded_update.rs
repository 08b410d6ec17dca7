//! One step's updates of the variables: each variable's by the host kernel or by tensor ops,
//! those on the host kernel spread over the threads.

use super::clipping::GradientAdjustment;
use super::host_kernel::HostUpdate;
use super::slots::{SlotStore, Slots};
use super::update_rule::UpdateRule;
use super::weight_decay::WeightDecay;
use crate::Result;
use candle_core::{Tensor, Var};
use std::cell::RefCell;

/// What the updates of every variable in one step share.
pub(crate) struct SharedStep<R: UpdateRule> {
    /// The rule's constants of this update.
    pub(crate) constants: R::Constants,
    /// The weight decay applied before the rule, if any.
    pub(crate) weight_decay: Option<WeightDecay>,
}

/// A variable, its gradient (of the variable's shape and dtype) and that gradient's clipping.
pub(crate) type GradientOf<'a> = (&'a Var, &'a Tensor, GradientAdjustment);

/// Steps whose host variables hold fewer weights in all than this update them on one thread.
const PARALLEL_MIN_WEIGHTS: usize = 1 << 15;

/// Updates every variable of `params` and its slots with `rule`; `scratch` holds a clipped
/// gradient. A variable listed twice is updated twice, in order, as Keras's loop does.
pub(crate) fn update_variables<R: UpdateRule>(
    rule: &R,
    store: &mut SlotStore,
    params: &[GradientOf<'_>],
    step: &SharedStep<R>,
    scratch: &mut Vec<f32>,
) -> Result<()> {
    let vars: Vec<&Var> = params.iter().map(|(var, _, _)| *var).collect();
    if let Some(slots) = store.distinct(rule, &vars)? {
        let updates = params
            .iter()
            .zip(slots)
            .map(|(&(var, grad, adjustment), slots)| VariableUpdate {
                var,
                grad,
                adjustment,
                slots,
            })
            .collect();
        return update_distinct_variables(updates, step, scratch);
    }
    for &(var, grad, adjustment) in params {
        let slots = store.of(rule, var)?;
        let update = VariableUpdate {
            var,
            grad,
            adjustment,
            slots,
        };
        update.apply(step, scratch)?;
    }
    Ok(())
}

/// The updates of distinct variables, those on the host kernel spread over the threads in
/// groups of about equal size (one fork-join for the whole step instead of one per large
/// variable), the others in order on this thread.
fn update_distinct_variables<R: UpdateRule>(
    updates: Vec<VariableUpdate<'_>>,
    step: &SharedStep<R>,
    scratch: &mut Vec<f32>,
) -> Result<()> {
    let (host, others): (Vec<_>, Vec<_>) = updates
        .into_iter()
        .partition(|update| matches!(update.slots, Slots::Host(_)));
    for update in others {
        update.apply(step, scratch)?;
    }
    let weights: usize = host.iter().map(|update| update.var.elem_count()).sum();
    let threads = rkeras_ops::worker_threads();
    if threads == 1 || weights < PARALLEL_MIN_WEIGHTS {
        return host
            .into_iter()
            .try_for_each(|update| update.apply(step, scratch));
    }
    let groups = threads.min(host.len());
    rkeras_ops::on_own_threads(balanced_groups(host, groups), |group| {
        let mut scratch = Vec::new();
        group
            .into_iter()
            .try_for_each(|update| update.apply(step, &mut scratch))
    })
    .into_iter()
    .collect()
}

/// One variable's update in a step.
struct VariableUpdate<'a> {
    var: &'a Var,
    grad: &'a Tensor,
    adjustment: GradientAdjustment,
    slots: &'a mut Slots,
}

impl VariableUpdate<'_> {
    /// Updates the variable and its slots: in place by the host kernel, or by tensor ops and
    /// `Var::set`, with the same formulas.
    fn apply<R: UpdateRule>(self, step: &SharedStep<R>, scratch: &mut Vec<f32>) -> Result<()> {
        let Self {
            var,
            grad,
            adjustment,
            slots,
        } = self;
        match slots {
            Slots::Host(host_slots) => {
                // As TensorFlow runs Keras's update ops; the moments of weights whose gradient
                // stays near zero pass through the subnormal range for thousands of steps.
                let _flush = rkeras_ops::FlushDenormals::new();
                let grad = grad.contiguous()?;
                let op = HostUpdate {
                    step,
                    adjustment,
                    slots: RefCell::new(host_slots),
                    scratch: RefCell::new(scratch),
                };
                var.as_tensor().inplace_op2(&grad, &op)?;
            }
            Slots::Tensors(tensor_slots) => {
                let mut weights = var.as_tensor().detach();
                let grad = adjustment.apply(&grad.detach())?;
                if let Some(decay) = step.weight_decay {
                    weights = decay.apply(&weights)?;
                }
                R::update(&step.constants, &mut weights, &grad, tensor_slots)?;
                var.set(&weights)?;
            }
        }
        Ok(())
    }
}

/// `updates` in `count` groups of about equal numbers of weights (largest first, each into the
/// lightest group).
fn balanced_groups(
    mut updates: Vec<VariableUpdate<'_>>,
    count: usize,
) -> Vec<Vec<VariableUpdate<'_>>> {
    updates.sort_by_key(|update| std::cmp::Reverse(update.var.elem_count()));
    let mut groups: Vec<(usize, Vec<VariableUpdate<'_>>)> =
        (0..count.max(1)).map(|_| (0, Vec::new())).collect();
    for update in updates {
        if let Some(lightest) = groups.iter_mut().min_by_key(|(weights, _)| *weights) {
            lightest.0 += update.var.elem_count();
            lightest.1.push(update);
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, run, var};
    use super::super::{Adam, Optimizer};
    use crate::Result;
    use candle_core::{DType, Device, Tensor, Var};

    #[test]
    fn variables_off_the_fast_path_use_tensor_ops_with_the_same_result() -> Result<()> {
        let grads: [&[f32]; 2] = [&[0.5, -1.0], &[0.1, 0.3]];
        let fast = var(&[1.0, -2.0])?;
        let slow = Var::new(&[1f64, -2.0], &Device::Cpu)?; // f64 is not on the host kernel path
        let mut fast_adam = Adam::new().learning_rate(0.01).clipnorm(0.8);
        let mut slow_adam = Adam::new().learning_rate(0.01).clipnorm(0.8);
        run(&mut fast_adam, &fast, &grads)?;
        for grad in grads {
            let grad = Tensor::new(grad, &Device::Cpu)?; // f32 gradient, cast to the variable's f64
            slow_adam.apply_gradients(&[(&slow, &grad)])?;
        }
        let slow = slow.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let expected: Vec<f64> = slow.iter().map(|&x| x as f64).collect();
        assert_close(&fast.to_vec1::<f32>()?, &expected, 1e-6);
        Ok(())
    }
}
