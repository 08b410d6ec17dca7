//! Symbolic tensors: what calling a layer on an `Input` returns while a model is being
//! written. Each is a small `Copy` handle into a per-thread arena of recorded calls, which
//! `Model::new` walks back from the outputs (Keras's `KerasTensor` and `Node`).
//!
//! A call cannot return `Result` through call syntax, so a call that fails records its error
//! in the tensors it returns; the error surfaces when the model is built.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::{Error, Layer, Result, SymbolicShape};

/// A symbolic tensor: the output of a layer call (or an input) while a graph is written.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolicTensor {
    id: u32,
    generation: u32,
}

/// The call that produced a symbolic tensor.
#[derive(Clone)]
pub struct Producer {
    /// The call's position in the arena: calls are numbered in the order they were made,
    /// which is a topological order.
    pub call: usize,
    /// The layer called.
    pub layer: Arc<dyn Layer>,
    /// The call's inputs (none for an input layer).
    pub inputs: Vec<SymbolicTensor>,
    /// Which of the call's outputs this tensor is.
    pub output_index: usize,
}

struct TensorRecord {
    shape: Result<SymbolicShape>,
    producer: Option<(usize, usize)>,
    /// For a list of tensors (the inputs of a call, the outputs of one): its items.
    items: Option<Vec<SymbolicTensor>>,
}

struct CallRecord {
    layer: Arc<dyn Layer>,
    inputs: Vec<SymbolicTensor>,
}

struct Arena {
    generation: u32,
    tensors: Vec<TensorRecord>,
    calls: Vec<CallRecord>,
}

static NEXT_GENERATION: AtomicU32 = AtomicU32::new(1);

impl Arena {
    fn new() -> Self {
        Arena {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            tensors: Vec::new(),
            calls: Vec::new(),
        }
    }

    fn push_tensor(&mut self, record: TensorRecord) -> SymbolicTensor {
        self.tensors.push(record);
        SymbolicTensor {
            id: (self.tensors.len() - 1) as u32,
            generation: self.generation,
        }
    }

    fn record(&self, tensor: SymbolicTensor) -> Result<&TensorRecord> {
        if tensor.generation != self.generation {
            return Err(Error::Graph(
                "symbolic tensor from another thread or from before clear_session()".into(),
            ));
        }
        self.tensors
            .get(tensor.id as usize)
            .ok_or_else(|| Error::Graph("unknown symbolic tensor".into()))
    }
}

thread_local! {
    static ARENA: RefCell<Arena> = RefCell::new(Arena::new());
}

pub(crate) fn reset_arena() {
    ARENA.with(|a| *a.borrow_mut() = Arena::new());
}

/// Runs `f` with a fresh arena of its own, dropped when `f` returns, so that the calls `f`
/// records (a loader rebuilding a model, whose graph keeps what it needs) leave nothing behind
/// in the session. Symbolic tensors made inside are invalid outside, and the other way round.
pub fn with_scratch_arena<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arena>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(arena) = self.0.take() {
                ARENA.with(|a| *a.borrow_mut() = arena);
            }
        }
    }
    let _restore = Restore(Some(ARENA.with(|a| a.replace(Arena::new()))));
    f()
}

impl SymbolicTensor {
    /// The tensor's shape, batch first, or the error of the call that produced it.
    pub fn shape(&self) -> Result<SymbolicShape> {
        ARENA.with(|a| a.borrow().record(*self)?.shape.clone())
    }

    /// The call that produced this tensor (`None` when its layer could not even be made).
    pub fn producer(&self) -> Result<Option<Producer>> {
        ARENA.with(|a| {
            let arena = a.borrow();
            let record = arena.record(*self)?;
            Ok(record.producer.map(|(call, output_index)| {
                let c = &arena.calls[call];
                Producer {
                    call,
                    layer: c.layer.clone(),
                    inputs: c.inputs.clone(),
                    output_index,
                }
            }))
        })
    }

    /// A symbolic tensor that carries `error` (for a layer that could not be made).
    pub fn failed(error: Error) -> SymbolicTensor {
        ARENA.with(|a| {
            a.borrow_mut().push_tensor(TensorRecord {
                shape: Err(error),
                producer: None,
                items: None,
            })
        })
    }

    /// Several tensors as one, as Keras passes a list: calling a layer on it passes each item
    /// as an input (`Concatenate::new(-1)([a, b].into())`), and a call with several outputs
    /// returns one (`let [output, state_h, state_c] = lstm(x).unpack();`).
    pub fn list(items: &[SymbolicTensor]) -> SymbolicTensor {
        let items: Vec<SymbolicTensor> = items.iter().flat_map(|t| t.items()).collect();
        ARENA.with(|a| {
            let count = items.len();
            a.borrow_mut().push_tensor(TensorRecord {
                shape: Err(Error::Graph(format!(
                    "a list of {count} tensors has no one shape: take one with .get(i)"
                ))),
                producer: None,
                items: Some(items),
            })
        })
    }

    /// The items of a list, or this tensor alone.
    pub fn items(&self) -> Vec<SymbolicTensor> {
        ARENA
            .with(|a| a.borrow().record(*self).ok().and_then(|r| r.items.clone()))
            .unwrap_or_else(|| vec![*self])
    }

    /// Item `index` of a list (this tensor itself at 0 when it is not a list); a tensor that
    /// carries an error carries it on for every index.
    pub fn get(&self, index: usize) -> SymbolicTensor {
        let items = self.items();
        match items.get(index) {
            Some(item) => *item,
            None if self.shape().is_err() && items.len() == 1 => *self,
            None => SymbolicTensor::failed(Error::Graph(format!(
                "index {index} of a list of {} tensor(s)",
                items.len()
            ))),
        }
    }

    /// The `N` items of a list, each carrying an error if the list does not hold `N`.
    pub fn unpack<const N: usize>(&self) -> [SymbolicTensor; N] {
        let count = self.items().len();
        std::array::from_fn(|i| {
            if count == N {
                self.get(i)
            } else {
                SymbolicTensor::failed(Error::Graph(format!(
                    "unpacking {N} tensors from a list of {count}"
                )))
            }
        })
    }
}

impl<const N: usize> From<[SymbolicTensor; N]> for SymbolicTensor {
    fn from(items: [SymbolicTensor; N]) -> Self {
        SymbolicTensor::list(&items)
    }
}

impl From<&[SymbolicTensor]> for SymbolicTensor {
    fn from(items: &[SymbolicTensor]) -> Self {
        SymbolicTensor::list(items)
    }
}

impl From<Vec<SymbolicTensor>> for SymbolicTensor {
    fn from(items: Vec<SymbolicTensor>) -> Self {
        SymbolicTensor::list(&items)
    }
}

/// The inputs and outputs of the first recorded call of `layer` in this thread's session
/// (Keras's node 0: `layer.input`, `layer.output`), or `None` if it was never called here.
pub fn first_call_of(
    layer: &(impl Layer + ?Sized),
) -> Option<(Vec<SymbolicTensor>, Vec<SymbolicTensor>)> {
    let address = layer as *const _ as *const ();
    ARENA.with(|a| {
        let arena = a.borrow();
        let call = arena
            .calls
            .iter()
            .position(|c| Arc::as_ptr(&c.layer) as *const () == address)?;
        let outputs = arena
            .tensors
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t.producer, Some((c, _)) if c == call))
            .map(|(id, _)| SymbolicTensor {
                id: id as u32,
                generation: arena.generation,
            })
            .collect();
        Some((arena.calls[call].inputs.clone(), outputs))
    })
}

/// The outputs of a call as one tensor: the output itself, or a list of several.
pub fn one_or_list(outputs: Vec<SymbolicTensor>) -> SymbolicTensor {
    match outputs.as_slice() {
        [only] => *only,
        several => SymbolicTensor::list(several),
    }
}

impl fmt::Debug for SymbolicTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape() {
            Ok(shape) => write!(f, "SymbolicTensor#{}{}", self.id, shape),
            Err(e) => write!(f, "SymbolicTensor#{}(error: {e})", self.id),
        }
    }
}

/// Records a call of `layer` on `inputs`: builds the layer for the inputs' shapes and returns
/// its outputs. An error (from an input or from the layer) is carried by every output.
pub fn call_layer(layer: &Arc<dyn Layer>, inputs: &[SymbolicTensor]) -> Vec<SymbolicTensor> {
    let inputs: Vec<SymbolicTensor> = inputs.iter().flat_map(SymbolicTensor::items).collect();
    let inputs = inputs.as_slice();
    let shapes: Result<Vec<SymbolicShape>> = inputs.iter().map(|t| t.shape()).collect();
    let outputs = shapes.and_then(|shapes| match layer.build(&shapes)? {
        outputs if outputs.is_empty() => Err(Error::Graph(format!(
            "layer '{}' returned no output shape",
            layer.name()
        ))),
        outputs => {
            for shape in &outputs {
                crate::limits::check_shape(layer.name(), shape)?;
            }
            Ok(outputs)
        }
    });
    ARENA.with(|a| {
        let mut arena = a.borrow_mut();
        arena.calls.push(CallRecord {
            layer: layer.clone(),
            inputs: inputs.to_vec(),
        });
        let call = arena.calls.len() - 1;
        match outputs {
            Ok(shapes) => shapes
                .into_iter()
                .enumerate()
                .map(|(i, shape)| {
                    arena.push_tensor(TensorRecord {
                        shape: Ok(shape),
                        producer: Some((call, i)),
                        items: None,
                    })
                })
                .collect(),
            Err(error) => vec![arena.push_tensor(TensorRecord {
                shape: Err(error),
                producer: Some((call, 0)),
                items: None,
            })],
        }
    })
}
