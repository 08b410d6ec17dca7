//! `CallContext`: what a layer call needs besides its inputs.

use std::any::Any;
use std::sync::Arc;

use candle_core::{Tensor, Var};
use rkeras_ops::BatchPart;

/// How the weights enter a call, and whether the call is being recorded for a backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Weights enter as constants: candle records no graph (inference).
    Detached,
    /// Weights enter as the variables themselves: candle's autograd sees the whole call.
    Tracked,
    /// Training through the layers' own backward passes: weights enter as constants and each
    /// layer with a hand-written backward keeps what it needs with [`CallContext::save`].
    Recording,
}

/// What a call needs besides its inputs: whether it runs in training, how the weights enter it,
/// what a layer keeps for its backward pass, and the losses the call adds (Keras's `add_loss`:
/// activity penalties, a VAE's KL term), which training adds to the loss.
#[derive(Debug)]
pub struct CallContext {
    training: bool,
    mode: Mode,
    losses: Vec<Tensor>,
    saved: Option<Box<dyn Any + Send + Sync>>,
    part: Option<Arc<BatchPart>>,
}

impl CallContext {
    /// A context for a training (`true`) or inference (`false`) call.
    ///
    /// In training the weights enter the call as the variables themselves, so that candle's
    /// autograd can differentiate a loss computed from the outputs; in inference they enter
    /// detached, so that candle records no graph and every intermediate tensor is freed as soon
    /// as the next layer has read it.
    pub fn new(training: bool) -> Self {
        CallContext {
            training,
            mode: if training {
                Mode::Tracked
            } else {
                Mode::Detached
            },
            losses: Vec::new(),
            saved: None,
            part: None,
        }
    }

    /// A training context that records each call for the layers' own backward passes (what
    /// `fit` uses): weights enter detached, and [`CallContext::is_recording`] is true.
    pub fn recording() -> Self {
        CallContext {
            training: true,
            mode: Mode::Recording,
            losses: Vec::new(),
            saved: None,
            part: None,
        }
    }

    /// This recording context for one part of a training batch, run on its own thread beside
    /// the other parts: a layer that needs the whole batch's statistics
    /// ([`Layer::meets_other_parts`](crate::Layer::meets_other_parts)) combines them with the
    /// other parts' through it.
    pub fn in_batch_part(mut self, part: BatchPart) -> Self {
        self.part = Some(Arc::new(part));
        self
    }

    /// The part of a training batch this call runs on, when the batch runs in parts that meet
    /// (see [`CallContext::in_batch_part`]); `None` when the call sees the whole batch.
    pub fn batch_part(&self) -> Option<&Arc<BatchPart>> {
        self.part.as_ref()
    }

    /// True inside `fit` (and in a direct training call), false in `predict` and `evaluate`.
    pub fn training(&self) -> bool {
        self.training
    }

    /// Whether the call is recorded for a hand-written backward pass: a layer that keeps
    /// something for its backward (a pre-activation, a mask) does so only then.
    pub fn is_recording(&self) -> bool {
        self.mode == Mode::Recording
    }

    /// A weight as the call must read it: the variable itself when candle's autograd is to see
    /// the call, else a detached view of its storage.
    pub fn weight(&self, var: &Var) -> Tensor {
        match self.mode {
            Mode::Tracked => var.as_tensor().clone(),
            Mode::Detached | Mode::Recording => var.as_tensor().detach(),
        }
    }

    /// Keeps `state` for the layer's hand-written [`Layer::backward`](crate::Layer::backward),
    /// which finds it in [`CallRecord::state`](crate::CallRecord). Ignored unless recording.
    pub fn save(&mut self, state: impl Any + Send + Sync) {
        if self.is_recording() {
            self.saved = Some(Box::new(state));
        }
    }

    /// Adds a scalar loss produced by this call (Keras's `add_loss`). A layer without a
    /// hand-written backward has it differentiated with its call; a layer with one adds the
    /// loss's gradient in its own backward pass.
    pub fn add_loss(&mut self, loss: Tensor) {
        self.losses.push(loss);
    }

    /// The losses the calls made with this context added.
    pub fn losses(&self) -> &[Tensor] {
        &self.losses
    }

    /// Takes the added losses out, leaving none.
    pub fn take_losses(&mut self) -> Vec<Tensor> {
        std::mem::take(&mut self.losses)
    }

    /// Runs `call` with the weights tracked (for a call differentiated by candle's autograd),
    /// returning its result and the losses it added, which are taken out of the context.
    pub(crate) fn tracked<T>(&mut self, call: impl FnOnce(&mut Self) -> T) -> (T, Vec<Tensor>) {
        let (mode, before) = (self.mode, self.losses.len());
        self.mode = Mode::Tracked;
        let result = call(self);
        self.mode = mode;
        (result, self.losses.split_off(before))
    }

    /// Runs `call` and returns its result with what it saved (see [`CallContext::save`]),
    /// leaving whatever an enclosing call saved in place.
    pub(crate) fn saving<T>(
        &mut self,
        call: impl FnOnce(&mut Self) -> T,
    ) -> (T, Option<Box<dyn Any + Send + Sync>>) {
        let outer = self.saved.take();
        let result = call(self);
        (result, std::mem::replace(&mut self.saved, outer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn weights_enter_tracked_only_where_autograd_must_see_them() {
        let var = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        assert!(CallContext::new(true).weight(&var).track_op());
        assert!(!CallContext::new(false).weight(&var).track_op());
        let mut recording = CallContext::recording();
        assert!(recording.training() && recording.is_recording());
        assert!(!recording.weight(&var).track_op());
        let (tracked, _) = recording.tracked(|ctx| ctx.weight(&var).track_op());
        assert!(tracked);
        assert!(!recording.weight(&var).track_op());
    }

    #[test]
    fn saved_state_belongs_to_the_innermost_call() {
        let mut ctx = CallContext::recording();
        let ((), outer) = ctx.saving(|ctx| {
            ctx.save(1u8);
            let ((), inner) = ctx.saving(|ctx| ctx.save(2u8));
            assert_eq!(
                inner.and_then(|s| s.downcast::<u8>().ok()).map(|b| *b),
                Some(2)
            );
        });
        assert_eq!(
            outer.and_then(|s| s.downcast::<u8>().ok()).map(|b| *b),
            Some(1)
        );
        let mut inference = CallContext::new(false);
        let ((), nothing) = inference.saving(|ctx| ctx.save(3u8));
        assert!(nothing.is_none());
    }

    #[test]
    fn a_tracked_call_hands_back_the_losses_it_added() {
        let mut ctx = CallContext::recording();
        ctx.add_loss(Tensor::new(1f32, &Device::Cpu).unwrap());
        let ((), added) = ctx.tracked(|ctx| ctx.add_loss(Tensor::new(2f32, &Device::Cpu).unwrap()));
        assert_eq!(added.len(), 1);
        assert_eq!(ctx.losses().len(), 1);
    }
}
