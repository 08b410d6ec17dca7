//! The optimizer's per-variable slots (Keras's optimizer variables: moments, accumulators) and
//! their checkpoint form, named and ordered as Keras orders its optimizer variables.

use super::saved_state::SavedState;
use super::update_rule::{slot_count, UpdateRule};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, TensorId, Var};
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// A variable's optimizer slots: host vectors for contiguous `f32` CPU variables (updated by the
/// host kernel), tensors otherwise.
#[derive(Debug)]
pub(crate) enum Slots {
    Host(Vec<Vec<f32>>),
    Tensors(Vec<Tensor>),
}

/// The slots of every variable the optimizer has met, keyed by the variable (candle `Var`'s
/// tensor id).
#[derive(Debug, Default)]
pub(crate) struct SlotStore(HashMap<TensorId, Slots>);

fn uses_host_kernel(var: &Var) -> bool {
    matches!(var.device(), Device::Cpu) && var.dtype() == DType::F32 && var.is_contiguous()
}

/// Fresh slots for `var`, each at `rule`'s initial value.
fn new_slots<R: UpdateRule>(rule: &R, var: &Var) -> Result<Slots> {
    let count = slot_count(rule);
    let init = rule.initial_slot_value();
    Ok(if uses_host_kernel(var) {
        Slots::Host(vec![vec![init as f32; var.elem_count()]; count])
    } else {
        let slot = Tensor::full(init, var.shape(), var.device())?.to_dtype(var.dtype())?;
        Slots::Tensors(vec![slot; count])
    })
}

/// The checkpoint names of the slots of `variables` variables, `"<slot>/<index of the
/// variable>"`, in Keras's order (group by group, each group's names interleaved per variable),
/// with the index of the variable and of the slot.
fn entries<R: UpdateRule>(rule: &R, variables: usize) -> Vec<(String, usize, usize)> {
    let mut entries = Vec::new();
    let mut offset = 0;
    for group in rule.slot_groups() {
        for var_index in 0..variables {
            for (i, name) in group.iter().enumerate() {
                entries.push((format!("{name}/{var_index}"), var_index, offset + i));
            }
        }
        offset += group.len();
    }
    entries
}

/// The checkpoint names of the slots of `variables` variables, in Keras's order.
pub(crate) fn slot_names<R: UpdateRule>(rule: &R, variables: usize) -> Vec<String> {
    entries(rule, variables)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

impl SlotStore {
    /// `var`'s slots, made fresh on its first update.
    pub(crate) fn of<R: UpdateRule>(&mut self, rule: &R, var: &Var) -> Result<&mut Slots> {
        Ok(match self.0.entry(var.id()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(new_slots(rule, var)?),
        })
    }

    /// The slots of each of `vars` (made fresh where new), in order; `None` when a variable is
    /// listed twice.
    pub(crate) fn distinct<R: UpdateRule>(
        &mut self,
        rule: &R,
        vars: &[&Var],
    ) -> Result<Option<Vec<&mut Slots>>> {
        for var in vars {
            self.of(rule, var)?;
        }
        let mut by_id: HashMap<TensorId, &mut Slots> =
            self.0.iter_mut().map(|(id, slots)| (*id, slots)).collect();
        // Every variable has its slots now, so a missing entry was taken by an earlier listing
        // of the same variable.
        Ok(vars.iter().map(|var| by_id.remove(&var.id())).collect())
    }

    /// The slots of `vars` as named tensors, in Keras's order (fresh values for a variable not
    /// updated yet).
    pub(crate) fn state<R: UpdateRule>(
        &self,
        rule: &R,
        vars: &[Var],
    ) -> Result<Vec<(String, Tensor)>> {
        let mut fresh = HashMap::new();
        for var in vars {
            if !self.0.contains_key(&var.id()) {
                fresh.insert(var.id(), new_slots(rule, var)?);
            }
        }
        entries(rule, vars.len())
            .into_iter()
            .map(|(name, var_index, slot)| {
                let var = &vars[var_index];
                let tensor = match self.0.get(&var.id()).or_else(|| fresh.get(&var.id())) {
                    Some(Slots::Host(host)) => {
                        Tensor::from_slice(&host[slot], var.shape(), var.device())?
                    }
                    Some(Slots::Tensors(tensors)) => tensors[slot].clone(),
                    None => {
                        return Err(Error::Config(format!(
                            "optimizer {}: no state for {name}",
                            rule.name()
                        )))
                    }
                };
                Ok((name, tensor))
            })
            .collect()
    }

    /// Replaces the slots of `vars` by those of `saved`; changes nothing when one does not fit.
    pub(crate) fn load<R: UpdateRule>(
        &mut self,
        rule: &R,
        vars: &[Var],
        saved: &SavedState<'_>,
    ) -> Result<()> {
        let mut loaded: HashMap<TensorId, Slots> = HashMap::new();
        for var in vars {
            loaded.insert(var.id(), new_slots(rule, var)?);
        }
        for (name, var_index, slot) in entries(rule, vars.len()) {
            let var = &vars[var_index];
            let tensor = saved.get(&name)?;
            if tensor.dims() != var.dims() {
                return Err(Error::Shape {
                    context: format!("optimizer {} state {name}", rule.name()),
                    expected: format!("{:?} (the variable's shape)", var.dims()),
                    got: format!("{:?}", tensor.dims()),
                });
            }
            match loaded.get_mut(&var.id()) {
                Some(Slots::Host(host)) => {
                    host[slot] = tensor
                        .to_dtype(DType::F32)?
                        .flatten_all()?
                        .to_vec1::<f32>()?;
                }
                Some(Slots::Tensors(tensors)) => {
                    tensors[slot] = tensor.to_device(var.device())?.to_dtype(var.dtype())?;
                }
                None => {
                    return Err(Error::Config(format!(
                        "optimizer state {name}: unknown variable"
                    )))
                }
            }
        }
        self.0.extend(loaded);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::var;
    use super::super::{Adam, Optimizer};
    use crate::{Error, Result};
    use candle_core::{Device, Tensor, Var};

    #[test]
    fn state_round_trip_gives_the_same_next_step() -> Result<()> {
        let grads: [&[f32]; 2] = [&[0.5, -1.0], &[0.1, 0.3]];
        let kernel = var(&[1.0, -2.0])?;
        let bias = Var::new(&[0.5f64], &Device::Cpu)?;
        let bias_grad = Tensor::new(&[0.2f64], &Device::Cpu)?;
        let mut original = Adam::new().learning_rate(0.05).amsgrad(true);
        for grad in grads {
            original.apply_gradients(&[
                (&kernel, &Tensor::new(grad, &Device::Cpu)?),
                (&bias, &bias_grad),
            ])?;
        }
        let vars = [kernel.clone(), bias.clone()];
        let state = original.state(&vars)?;
        let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "iterations",
                "learning_rate",
                "momentum/0",
                "velocity/0",
                "momentum/1",
                "velocity/1",
                "velocity_hat/0",
                "velocity_hat/1"
            ]
        );
        let (kernel_copy, bias_copy) = (
            var(&kernel.to_vec1::<f32>()?)?,
            Var::new(bias.to_vec1::<f64>()?, &Device::Cpu)?,
        );
        let mut restored = Adam::new().amsgrad(true);
        restored.load_state(&[kernel_copy.clone(), bias_copy.clone()], &state)?;
        assert_eq!(restored.iterations(), 2);
        assert!((Optimizer::learning_rate(&restored) - 0.05).abs() < 1e-9);
        let next = Tensor::new(&[-0.4f32, 0.9], &Device::Cpu)?;
        original.apply_gradients(&[(&kernel, &next), (&bias, &bias_grad)])?;
        restored.apply_gradients(&[(&kernel_copy, &next), (&bias_copy, &bias_grad)])?;
        assert_eq!(kernel.to_vec1::<f32>()?, kernel_copy.to_vec1::<f32>()?);
        assert_eq!(bias.to_vec1::<f64>()?, bias_copy.to_vec1::<f64>()?);
        Ok(())
    }

    #[test]
    fn bad_state_and_gradients_are_errors() -> Result<()> {
        let w = var(&[1.0, 2.0])?;
        let mut adam = Adam::new();
        let wrong = Tensor::new(&[1f32, 2., 3.], &Device::Cpu)?;
        assert!(matches!(
            adam.apply_gradients(&[(&w, &wrong)]),
            Err(Error::Shape { .. })
        ));
        let state = vec![("iterations".to_string(), Tensor::new(3i64, &Device::Cpu)?)];
        assert!(matches!(
            adam.load_state(std::slice::from_ref(&w), &state),
            Err(Error::Config(_))
        ));
        let mut state = Adam::new().state(std::slice::from_ref(&w))?;
        state[2].1 = wrong;
        assert!(matches!(
            adam.load_state(&[w], &state),
            Err(Error::Shape { .. })
        ));
        Ok(())
    }
}
