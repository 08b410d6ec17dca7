//! Helpers shared by the optimizer tests.

use super::host_kernel::update_elements;
use super::update_rule::{slot_count, StepScalars, UpdateRule};
use super::Optimizer;
use crate::Result;
use candle_core::{Device, Tensor, Var};

/// A CPU f32 variable.
pub(crate) fn var(values: &[f32]) -> Result<Var> {
    Ok(Var::new(values, &Device::Cpu)?)
}

/// Applies `grads` one step each and returns the weights after every step.
pub(crate) fn run(
    optimizer: &mut dyn Optimizer,
    var: &Var,
    grads: &[&[f32]],
) -> Result<Vec<Vec<f32>>> {
    let mut history = Vec::new();
    for grad in grads {
        let grad = Tensor::new(*grad, &Device::Cpu)?;
        optimizer.apply_gradients(&[(var, &grad)])?;
        history.push(var.to_vec1::<f32>()?);
    }
    Ok(history)
}

/// Asserts `got` is within `tol` (relative) of the f64 reference.
pub(crate) fn assert_close(got: &[f32], expected: &[f64], tol: f64) {
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!(
            ((*g as f64) - e).abs() <= tol * (1.0 + e.abs()),
            "got {got:?}, expected {expected:?}"
        );
    }
}

/// Runs `rule` over `grads` by the host kernel's loop and on CPU tensors and asserts identical
/// results.
pub(crate) fn assert_paths_agree<R: UpdateRule>(
    rule: &R,
    weights: &[f32],
    grads: &[&[f32]],
    lr: f64,
) -> Result<()> {
    let slots = slot_count(rule);
    let init = rule.initial_slot_value();
    let mut host_w = weights.to_vec();
    let mut host_slots = vec![vec![init as f32; weights.len()]; slots];
    let mut tensor_w = Tensor::new(weights, &Device::Cpu)?;
    let mut tensor_slots = vec![Tensor::full(init as f32, weights.len(), &Device::Cpu)?; slots];
    for (i, grad) in grads.iter().enumerate() {
        let constants = rule.constants(&StepScalars {
            learning_rate: lr,
            step: i as u64 + 1,
        });
        update_elements::<R>(&constants, &mut host_w, grad, &mut host_slots)?;
        R::update(
            &constants,
            &mut tensor_w,
            &Tensor::new(*grad, &Device::Cpu)?,
            &mut tensor_slots,
        )?;
        assert_eq!(
            host_w,
            tensor_w.to_vec1::<f32>()?,
            "weights differ at step {}",
            i + 1
        );
        for (h, t) in host_slots.iter().zip(&tensor_slots) {
            assert_eq!(h, &t.to_vec1::<f32>()?, "slots differ at step {}", i + 1);
        }
    }
    Ok(())
}
