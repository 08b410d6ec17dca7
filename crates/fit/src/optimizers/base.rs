//! What every optimizer shares, after `keras/src/optimizers/base_optimizer.py`: the iteration
//! counter, the learning rate or its schedule, gradient clipping, weight decay, per-variable
//! slots, and the state saved in checkpoints.

use super::clipping::{GradientAdjustment, GradientClipping};
use super::host_kernel::HostUpdate;
use super::schedules::{LearningRate, LearningRateSchedule};
use super::update_rule::{slot_count, StepScalars, UpdateRule};
use super::{apply_summed_parts, check_parts, Optimizer};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor, TensorId, Var};
use serde_json::json;
use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// A variable's optimizer slots: host vectors for contiguous `f32` CPU variables (updated by the
/// fused host kernel), tensors otherwise.
#[derive(Debug)]
enum Slots {
    Host(Vec<Vec<f32>>),
    Tensors(Vec<Tensor>),
}

/// An optimizer: an [`UpdateRule`] plus everything Keras's base optimizer adds to it.
///
/// The builder method [`learning_rate`](Self::learning_rate) shadows the trait getter of the same
/// name on concrete types; call the getter as `Optimizer::learning_rate(&optimizer)`.
#[derive(Debug)]
pub struct BaseOptimizer<R> {
    pub(crate) rule: R,
    learning_rate: LearningRate,
    clipping: GradientClipping,
    weight_decay: Option<f64>,
    iterations: u64,
    slots: HashMap<TensorId, Slots>,
    scratch: Vec<f32>,
}

fn uses_host_kernel(var: &Var) -> bool {
    matches!(var.device(), Device::Cpu) && var.dtype() == DType::F32 && var.is_contiguous()
}

impl<R: UpdateRule> BaseOptimizer<R> {
    pub(crate) fn with_rule(rule: R, learning_rate: f64) -> Self {
        Self {
            rule,
            learning_rate: LearningRate::Constant(learning_rate),
            clipping: GradientClipping::None,
            weight_decay: None,
            iterations: 0,
            slots: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// A constant learning rate (replacing any schedule).
    pub fn learning_rate(mut self, learning_rate: f64) -> Self {
        self.learning_rate = LearningRate::Constant(learning_rate);
        self
    }

    /// A learning-rate schedule, e.g. [`ExponentialDecay`](super::ExponentialDecay).
    pub fn schedule(mut self, schedule: impl LearningRateSchedule + 'static) -> Self {
        self.learning_rate = LearningRate::Schedule(Box::new(schedule));
        self
    }

    /// Clips each gradient to an L2 norm of at most `clip_norm` (replacing other clipping).
    pub fn clipnorm(mut self, clip_norm: f64) -> Self {
        self.clipping = GradientClipping::Norm(clip_norm);
        self
    }

    /// Clamps each gradient element to `[-clip_value, clip_value]` (replacing other clipping).
    pub fn clipvalue(mut self, clip_value: f64) -> Self {
        self.clipping = GradientClipping::Value(clip_value);
        self
    }

    /// Clips all gradients together to a joint L2 norm of at most `clip_norm` (replacing other clipping).
    pub fn global_clipnorm(mut self, clip_norm: f64) -> Self {
        self.clipping = GradientClipping::GlobalNorm(clip_norm);
        self
    }

    /// Decoupled weight decay: before each update, `w -= w · weight_decay · learning_rate`.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = Some(weight_decay);
        self
    }

    /// The slot names of every variable, grouped and ordered as Keras orders its optimizer variables.
    fn slot_entries(&self, variables: usize) -> Vec<(String, usize, usize)> {
        let mut entries = Vec::new();
        let mut offset = 0;
        for group in self.rule.slot_groups() {
            for var_index in 0..variables {
                for (i, name) in group.iter().enumerate() {
                    entries.push((format!("{name}/{var_index}"), var_index, offset + i));
                }
            }
            offset += group.len();
        }
        entries
    }

    fn check_gradient(&self, var: &Var, grad: &Tensor) -> Result<()> {
        if var.dims() != grad.dims() {
            return Err(Error::Shape {
                context: format!("optimizer {}", self.rule.name()),
                expected: format!("a gradient of the variable's shape {:?}", var.dims()),
                got: format!("{:?}", grad.dims()),
            });
        }
        Ok(())
    }

    fn update_variable(
        &mut self,
        var: &Var,
        grad: Gradient<'_>,
        step: StepScalars,
        adjustment: GradientAdjustment,
    ) -> Result<()> {
        let slots = slots_of(&mut self.slots, &self.rule, var)?;
        let update = VariableUpdate {
            var,
            grad,
            adjustment,
            slots,
        };
        update.apply(&self.rule, self.weight_decay, step, &mut self.scratch)
    }

    /// The updates of distinct variables, those on the host kernel spread over the threads in
    /// groups of about equal size (one fork-join for the whole step instead of one per large
    /// variable), the others in order on this thread. Updates nothing and returns false when a
    /// variable is listed twice.
    fn update_distinct_variables(
        &mut self,
        params: &[(&Var, Gradient<'_>, GradientAdjustment)],
        step: StepScalars,
    ) -> Result<bool> {
        for (var, _, _) in params {
            slots_of(&mut self.slots, &self.rule, var)?;
        }
        let Self {
            rule,
            weight_decay,
            slots,
            scratch,
            ..
        } = self;
        let mut slots_by_id: HashMap<TensorId, &mut Slots> =
            slots.iter_mut().map(|(id, slots)| (*id, slots)).collect();
        let (mut host, mut others) = (Vec::new(), Vec::new());
        for (var, grad, adjustment) in params {
            // Every variable got its slots above, so a missing entry was taken by an earlier
            // listing of the same variable.
            let Some(slots) = slots_by_id.remove(&var.id()) else {
                return Ok(false);
            };
            let update = VariableUpdate {
                var,
                grad: *grad,
                adjustment: *adjustment,
                slots,
            };
            match update.slots {
                Slots::Host(_) => host.push(update),
                Slots::Tensors(_) => others.push(update),
            }
        }
        for update in others {
            update.apply(rule, *weight_decay, step, scratch)?;
        }
        let weights: usize = host.iter().map(|update| update.var.elem_count()).sum();
        let threads = rkeras_ops::worker_threads();
        if threads == 1 || weights < PARALLEL_MIN_WEIGHTS {
            for update in host {
                update.apply(rule, *weight_decay, step, scratch)?;
            }
            return Ok(true);
        }
        let rule = &*rule;
        let weight_decay = *weight_decay;
        let groups = threads.min(host.len());
        rkeras_ops::on_own_threads(balanced_groups(host, groups), |group| {
            let mut scratch = Vec::new();
            group
                .into_iter()
                .try_for_each(|update| update.apply(rule, weight_decay, step, &mut scratch))
        })
        .into_iter()
        .collect::<Result<()>>()?;
        Ok(true)
    }

    /// One step over checked `(variable, gradient, adjustment)` triples.
    fn update(&mut self, params: &[(&Var, Gradient<'_>, GradientAdjustment)]) -> Result<()> {
        let step = StepScalars {
            learning_rate: self.learning_rate.at(self.iterations),
            step: self.iterations + 1,
        };
        if !self.update_distinct_variables(params, step)? {
            // A variable listed twice is updated twice, in order, as Keras's loop does.
            for (var, grad, adjustment) in params {
                self.update_variable(var, *grad, step, *adjustment)?;
            }
        }
        self.iterations += 1;
        Ok(())
    }
}

/// Fresh slots for `var`, each at `rule`'s initial value.
fn new_slots(rule: &dyn UpdateRule, var: &Var) -> Result<Slots> {
    let count = slot_count(rule);
    let init = rule.initial_slot_value();
    Ok(if uses_host_kernel(var) {
        Slots::Host(vec![vec![init as f32; var.elem_count()]; count])
    } else {
        let slot = Tensor::full(init, var.shape(), var.device())?.to_dtype(var.dtype())?;
        Slots::Tensors(vec![slot; count])
    })
}

/// `var`'s slots in `slots`, made fresh on its first update.
fn slots_of<'s>(
    slots: &'s mut HashMap<TensorId, Slots>,
    rule: &dyn UpdateRule,
    var: &Var,
) -> Result<&'s mut Slots> {
    Ok(match slots.entry(var.id()) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(new_slots(rule, var)?),
    })
}

/// Steps whose host variables hold fewer weights in all than this update them on one thread.
const PARALLEL_MIN_WEIGHTS: usize = 1 << 15;

/// A variable's gradient in one step, in the variable's dtype.
#[derive(Clone, Copy)]
enum Gradient<'a> {
    /// One tensor.
    Whole(&'a Tensor),
    /// `Σ share · part` over the parts of a batch that ran on separate threads: added up on the
    /// thread that updates the variable, just before its update, so the sum is still in that
    /// core's cache when the update reads it.
    Parts(&'a [(f32, &'a Tensor)]),
}

impl Gradient<'_> {
    /// The gradient as one tensor.
    fn tensor(self) -> Result<Tensor> {
        match self {
            Self::Whole(grad) => Ok(grad.clone()),
            Self::Parts(terms) => sum_of_parts(terms),
        }
    }
}

/// `Σ share · part` over one variable's `(share, part)` terms: a lone term of share 1 is the
/// gradient itself; f32 CPU parts are added in one pass ([`rkeras_ops::weighted_sums`]), the
/// others by candle ops.
pub(crate) fn sum_of_parts(terms: &[(f32, &Tensor)]) -> Result<Tensor> {
    let Some(((first_share, first), rest)) = terms.split_first() else {
        return Err(Error::Config(
            "optimizer: a variable with no gradient parts".into(),
        ));
    };
    if rest.is_empty() && *first_share == 1.0 {
        return Ok((*first).clone());
    }
    let on_host = terms
        .iter()
        .all(|(_, grad)| grad.dtype() == DType::F32 && grad.device().is_cpu());
    if on_host {
        return Ok(rkeras_ops::weighted_sums(&[terms.to_vec()])?.remove(0));
    }
    let first = first.affine(*first_share as f64, 0.0)?;
    rest.iter().try_fold(first, |sum, (share, grad)| {
        Ok((sum + grad.affine(*share as f64, 0.0)?)?)
    })
}

/// One variable's update in a step.
struct VariableUpdate<'a> {
    var: &'a Var,
    grad: Gradient<'a>,
    adjustment: GradientAdjustment,
    slots: &'a mut Slots,
}

impl VariableUpdate<'_> {
    /// Updates the variable and its slots with `rule`; `scratch` holds a clipped gradient.
    fn apply(
        self,
        rule: &dyn UpdateRule,
        weight_decay: Option<f64>,
        step: StepScalars,
        scratch: &mut Vec<f32>,
    ) -> Result<()> {
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
                let grad = grad.tensor()?.contiguous()?;
                let op = HostUpdate {
                    rule,
                    step,
                    adjustment,
                    weight_decay,
                    slots: RefCell::new(host_slots),
                    scratch: RefCell::new(scratch),
                };
                var.as_tensor().inplace_op2(&grad, &op)?;
            }
            Slots::Tensors(tensor_slots) => {
                let mut weights = var.as_tensor().detach();
                let grad = adjustment.apply_tensor(&grad.tensor()?.detach())?;
                if let Some(decay) = weight_decay {
                    weights = (&weights
                        - weights
                            .affine(decay, 0.0)?
                            .affine(step.learning_rate, 0.0)?)?;
                }
                let updated = rule.update_tensor(&step, &weights, &grad, tensor_slots)?;
                var.set(&updated)?;
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

impl<R: UpdateRule> Optimizer for BaseOptimizer<R> {
    fn name(&self) -> &str {
        self.rule.name()
    }

    fn apply_gradients(&mut self, params_and_grads: &[(&Var, &Tensor)]) -> Result<()> {
        self.learning_rate.validate()?;
        let mut grads = Vec::with_capacity(params_and_grads.len());
        for (var, grad) in params_and_grads {
            self.check_gradient(var, grad)?;
            grads.push(if grad.dtype() == var.dtype() {
                (*grad).clone()
            } else {
                grad.to_dtype(var.dtype())?
            });
        }
        let adjustments = self.clipping.adjustments(&grads)?;
        let params: Vec<(&Var, Gradient<'_>, GradientAdjustment)> = params_and_grads
            .iter()
            .zip(&grads)
            .zip(adjustments)
            .map(|(((var, _), grad), adjustment)| (*var, Gradient::Whole(grad), adjustment))
            .collect();
        self.update(&params)
    }

    fn apply_gradient_parts(&mut self, params: &[(&Var, Vec<(f32, &Tensor)>)]) -> Result<()> {
        // Clipping needs every whole gradient before any update, and a part in another dtype
        // needs converting first: those take the default path.
        let summed_in_update = !self.clipping.is_active()
            && params
                .iter()
                .all(|(var, terms)| terms.iter().all(|(_, grad)| grad.dtype() == var.dtype()));
        if !summed_in_update {
            return apply_summed_parts(self, params);
        }
        self.learning_rate.validate()?;
        check_parts(params)?;
        for (var, terms) in params {
            for (_, grad) in terms {
                self.check_gradient(var, grad)?;
            }
        }
        let params: Vec<(&Var, Gradient<'_>, GradientAdjustment)> = params
            .iter()
            .map(|(var, terms)| (*var, Gradient::Parts(terms), GradientAdjustment::Identity))
            .collect();
        self.update(&params)
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate.at(self.iterations)
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.learning_rate = LearningRate::Constant(lr);
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn variable_count(&self, trainable_params: usize) -> usize {
        let learning_rate = usize::from(matches!(self.learning_rate, LearningRate::Constant(_)));
        1 + learning_rate + slot_count(&self.rule) * trainable_params
    }

    fn state(&self, vars: &[Var]) -> Result<Vec<(String, Tensor)>> {
        let mut state = vec![(
            "iterations".to_string(),
            Tensor::new(self.iterations as i64, &Device::Cpu)?,
        )];
        if let LearningRate::Constant(lr) = self.learning_rate {
            state.push(("learning_rate".to_string(), Tensor::new(lr, &Device::Cpu)?));
        }
        let mut fresh = HashMap::new();
        for var in vars {
            if !self.slots.contains_key(&var.id()) {
                fresh.insert(var.id(), new_slots(&self.rule, var)?);
            }
        }
        for (name, var_index, slot) in self.slot_entries(vars.len()) {
            let var = &vars[var_index];
            let tensor = match self.slots.get(&var.id()).or_else(|| fresh.get(&var.id())) {
                Some(Slots::Host(host)) => {
                    Tensor::from_slice(&host[slot], var.shape(), var.device())?
                }
                Some(Slots::Tensors(tensors)) => tensors[slot].clone(),
                None => {
                    return Err(Error::Config(format!(
                        "optimizer {}: no state for {name}",
                        self.rule.name()
                    )))
                }
            };
            state.push((name, tensor));
        }
        Ok(state)
    }

    fn load_state(&mut self, vars: &[Var], state: &[(String, Tensor)]) -> Result<()> {
        let by_name: HashMap<&str, &Tensor> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let entries = self.slot_entries(vars.len());
        let mut expected: Vec<&str> = vec!["iterations"];
        if matches!(self.learning_rate, LearningRate::Constant(_)) {
            expected.push("learning_rate");
        }
        expected.extend(entries.iter().map(|(name, _, _)| name.as_str()));
        let mut found: Vec<&str> = by_name.keys().copied().collect();
        found.sort_unstable();
        let mut wanted = expected.clone();
        wanted.sort_unstable();
        if found != wanted || by_name.len() != state.len() {
            return Err(Error::Config(format!(
                "optimizer {}: state for {} variables must hold exactly [{}], got [{}]",
                self.rule.name(),
                vars.len(),
                expected.join(", "),
                state
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let lookup = |name: &str| {
            by_name
                .get(name)
                .copied()
                .ok_or_else(|| Error::Config(format!("optimizer state lacks {name}")))
        };
        let iterations = lookup("iterations")?
            .to_dtype(DType::I64)?
            .to_scalar::<i64>()?;
        let iterations = u64::try_from(iterations).map_err(|_| {
            Error::Config(format!(
                "optimizer state: iterations must be >= 0, got {iterations}"
            ))
        })?;
        let learning_rate = match self.learning_rate {
            LearningRate::Constant(_) => Some(
                lookup("learning_rate")?
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()?,
            ),
            LearningRate::Schedule(_) => None,
        };
        let mut loaded: HashMap<TensorId, Slots> = HashMap::new();
        for var in vars {
            loaded.insert(var.id(), new_slots(&self.rule, var)?);
        }
        for (name, var_index, slot) in &entries {
            let var = &vars[*var_index];
            let tensor = lookup(name)?;
            if tensor.dims() != var.dims() {
                return Err(Error::Shape {
                    context: format!("optimizer {} state {name}", self.rule.name()),
                    expected: format!("{:?} (the variable's shape)", var.dims()),
                    got: format!("{:?}", tensor.dims()),
                });
            }
            match loaded.get_mut(&var.id()) {
                Some(Slots::Host(host)) => {
                    host[*slot] = tensor
                        .to_dtype(DType::F32)?
                        .flatten_all()?
                        .to_vec1::<f32>()?;
                }
                Some(Slots::Tensors(tensors)) => {
                    tensors[*slot] = tensor.to_device(var.device())?.to_dtype(var.dtype())?;
                }
                None => {
                    return Err(Error::Config(format!(
                        "optimizer state {name}: unknown variable"
                    )))
                }
            }
        }
        self.slots.extend(loaded);
        self.iterations = iterations;
        if let Some(lr) = learning_rate {
            self.learning_rate = LearningRate::Constant(lr);
        }
        Ok(())
    }

    fn config(&self) -> serde_json::Value {
        let mut config = serde_json::Map::new();
        config.insert("name".into(), json!(self.rule.name()));
        config.insert("learning_rate".into(), self.learning_rate.config());
        config.insert("weight_decay".into(), json!(self.weight_decay));
        for (key, value) in self.clipping.config_entries() {
            config.insert(key.into(), value);
        }
        config.insert("use_ema".into(), json!(false));
        config.insert("ema_momentum".into(), json!(0.99));
        config.insert("ema_overwrite_frequency".into(), json!(null));
        config.insert("loss_scale_factor".into(), json!(null));
        config.insert("gradient_accumulation_steps".into(), json!(null));
        config.extend(self.rule.config());
        serde_json::Value::Object(config)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_close, run, var};
    use super::super::{get, Adam, ExponentialDecay, Optimizer, KNOWN_OPTIMIZERS, SGD};
    use crate::{Error, Result};
    use candle_core::{DType, Device, Tensor, Var};

    #[test]
    fn the_schedule_is_read_at_the_iteration_count_before_each_update() -> Result<()> {
        // SGD with lr = 1 · 0.5^floor(step / 1): updates use 1, 0.5, 0.25.
        let w = var(&[0.0])?;
        let mut sgd = SGD::new().schedule(ExponentialDecay::new(1.0, 1, 0.5).staircase(true));
        assert_eq!(Optimizer::learning_rate(&sgd), 1.0);
        let history = run(&mut sgd, &w, &[&[1.0], &[1.0], &[1.0]])?;
        assert_eq!(history, vec![vec![-1.0], vec![-1.5], vec![-1.75]]);
        assert_eq!(Optimizer::learning_rate(&sgd), 0.125);
        assert_eq!(sgd.variable_count(3), 1); // no learning_rate variable under a schedule
        sgd.set_learning_rate(0.01);
        assert_eq!(Optimizer::learning_rate(&sgd), 0.01);
        assert_eq!(sgd.variable_count(3), 2);
        Ok(())
    }

    #[test]
    fn clipping_applies_before_the_update() -> Result<()> {
        // |g| = 5 clipped to norm 1 → [0.6, 0.8]; SGD lr 1
        let w = var(&[0.0, 0.0])?;
        let history = run(
            &mut SGD::new().learning_rate(1.0).clipnorm(1.0),
            &w,
            &[&[3.0, 4.0]],
        )?;
        assert_close(&history[0], &[-0.6, -0.8], 1e-7);
        let w = var(&[0.0, 0.0])?;
        let history = run(
            &mut SGD::new().learning_rate(1.0).clipvalue(0.5),
            &w,
            &[&[3.0, -0.25]],
        )?;
        assert_eq!(history[0], vec![-0.5, 0.25]);
        let (a, b) = (var(&[0.0])?, var(&[0.0])?);
        let (ga, gb) = (
            Tensor::new(&[3f32], &Device::Cpu)?,
            Tensor::new(&[4f32], &Device::Cpu)?,
        );
        let mut sgd = SGD::new().learning_rate(1.0).global_clipnorm(1.0);
        sgd.apply_gradients(&[(&a, &ga), (&b, &gb)])?;
        assert_close(&a.to_vec1::<f32>()?, &[-0.6], 1e-7);
        assert_close(&b.to_vec1::<f32>()?, &[-0.8], 1e-7);
        Ok(())
    }

    #[test]
    fn gradient_parts_are_weighted_by_share_and_added() -> Result<()> {
        let cpu = &Device::Cpu;
        let t = |values: &[f32]| Tensor::new(values, cpu);
        let (a_first, a_second, b_first) = (t(&[4.0, 8.0])?, t(&[2.0, -4.0])?, t(&[10.0])?);
        // SGD with lr 1: w -= 0.75 · first + 0.25 · second, b only in the first part.
        // a: [1, 2] - [3.5, 5]; b: [0] - 7.5. With clipvalue 4 (the default path, which adds the
        // parts before clipping): a's sum becomes [3.5, 4], b's 4.
        let cases = [
            (None, [-2.5f32, -3.0], -7.5f32),
            (Some(4.0), [-2.5, -2.0], -4.0),
        ];
        for (clip, want_a, want_b) in cases {
            let (a, b) = (var(&[1.0, 2.0])?, var(&[0.0])?);
            let mut sgd = SGD::new().learning_rate(1.0);
            if let Some(bound) = clip {
                sgd = sgd.clipvalue(bound);
            }
            sgd.apply_gradient_parts(&[
                (&a, vec![(0.75, &a_first), (0.25, &a_second)]),
                (&b, vec![(0.75, &b_first)]),
            ])?;
            assert_eq!(a.to_vec1::<f32>()?, want_a, "clip {clip:?}");
            assert_eq!(b.to_vec1::<f32>()?, [want_b], "clip {clip:?}");
            assert_eq!(sgd.iterations(), 1);
            let message = sgd.apply_gradient_parts(&[(&a, vec![])]).unwrap_err();
            assert!(
                message.to_string().contains("no gradient parts"),
                "{message}"
            );
        }
        // An f64 variable (off the host kernel) and its f64 parts: summed by candle ops.
        let w = Var::new(&[1f64, 2.], cpu)?;
        let (first, second) = (
            Tensor::new(&[4f64, 8.], cpu)?,
            Tensor::new(&[2f64, -4.], cpu)?,
        );
        let mut sgd = SGD::new().learning_rate(1.0);
        sgd.apply_gradient_parts(&[(&w, vec![(0.75, &first), (0.25, &second)])])?;
        assert_eq!(w.to_vec1::<f64>()?, [-2.5, -3.0]);
        Ok(())
    }

    #[test]
    fn adam_on_gradient_parts_matches_adam_on_their_sum_on_two_threads() -> Result<()> {
        // Large enough to update over both threads, each summing its variables' parts.
        let values = |len: usize, seed: f32| -> Vec<f32> {
            (0..len).map(|i| (i as f32 * 0.37 + seed).sin()).collect()
        };
        let lens = [40_000, 3, 20_000];
        crate::test_threads::on_two_threads(|| -> Result<()> {
            let cpu = &Device::Cpu;
            let make = || -> Result<Vec<Var>> {
                lens.iter()
                    .map(|&len| Ok(Var::new(values(len, 0.0), cpu)?))
                    .collect()
            };
            let (by_parts, by_sum) = (make()?, make()?);
            let parts: Vec<[Tensor; 2]> = lens
                .iter()
                .map(|&len| -> Result<[Tensor; 2]> {
                    Ok([
                        Tensor::new(values(len, 1.0), cpu)?,
                        Tensor::new(values(len, 2.0), cpu)?,
                    ])
                })
                .collect::<Result<_>>()?;
            let (mut adam_parts, mut adam_sum) = (Adam::new(), Adam::new());
            for _ in 0..3 {
                let params: Vec<(&Var, Vec<(f32, &Tensor)>)> = by_parts
                    .iter()
                    .zip(&parts)
                    .map(|(var, [first, second])| (var, vec![(0.5, first), (0.25, second)]))
                    .collect();
                adam_parts.apply_gradient_parts(&params)?;
                let sums: Vec<Tensor> = parts
                    .iter()
                    .map(|[first, second]| -> Result<Tensor> {
                        Ok(((first * 0.5)? + (second * 0.25)?)?)
                    })
                    .collect::<Result<_>>()?;
                let pairs: Vec<(&Var, &Tensor)> = by_sum.iter().zip(&sums).collect();
                adam_sum.apply_gradients(&pairs)?;
            }
            for (a, b) in by_parts.iter().zip(&by_sum) {
                let (a, b) = (a.to_vec1::<f32>()?, b.to_vec1::<f32>()?);
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
                }
            }
            Ok(())
        })
    }

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

    #[test]
    fn get_knows_every_optimizer() -> Result<()> {
        for name in KNOWN_OPTIMIZERS {
            assert_eq!(get(name)?.name(), *name);
        }
        let message = get("lion").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("adagrad"), "{message}");
        Ok(())
    }
}
