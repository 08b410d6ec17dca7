//! Loading weights by a model's structure, as Keras's `load_weights` does
//! (`keras/src/saving/saving_lib.py`: `_save_state`, `_save_container_state`): each weight is
//! found by its layer's place in the model, never by the layer's name, so that a file saved
//! from one model loads into a second one built alike (whose layers are `dense_2`, `dense_3`...).
//!
//! A weight's place is its Keras path in `model.weights.h5`: `layers/<class>/vars/<i>`, where
//! `<class>` is the layer's snake-cased class numbered among the model's layers of that class
//! (`dense`, `dense_1`...), a nested model's layers come under its own place
//! (`layers/functional/layers/dense/vars/0`), and `<i>` is the weight's index in its layer.
//! Every file rkeras writes records each tensor's place in its metadata entry
//! [`KEY_WEIGHT_STRUCTURE`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use candle_core::TensorId;
use rkeras_layers::naming::to_snake_case;
use rkeras_layers::{Layer, Weight};
use serde_json::{Map, Value};

use super::error::{Mismatches, SaveError, WeightMismatch};
use super::header::Header;
use super::load::load_weights;
use super::options::LoadOptions;
use super::source::Source;
use super::weights::{assign, match_weights};
use crate::{Functional, Model};

/// Metadata key of the places of the weights: a JSON object from each place
/// (`layers/dense/vars/0`) to the name of the tensor stored there (`dense/kernel`).
pub const KEY_WEIGHT_STRUCTURE: &str = "weight_structure";

/// A weight of a model at its place.
struct Placed {
    place: String,
    weight: Weight,
}

/// Every weight of `model` at its place, in Keras's order, each once.
fn placed_weights(model: &Model) -> Vec<Placed> {
    let mut walk = Walk::default();
    walk.layers(&model.graph().layers(), "", "");
    walk.placed
}

#[derive(Default)]
struct Walk {
    /// The layers met so far (Keras's `visited_saveables`): a layer in two models is placed
    /// where it is met first.
    visited: HashSet<usize>,
    seen: HashSet<TensorId>,
    placed: Vec<Placed>,
}

impl Walk {
    /// Places the weights of `layers`, the layers of a model placed at `place` whose weight
    /// paths start with `path`.
    fn layers(&mut self, layers: &[Arc<dyn Layer>], place: &str, path: &str) {
        let mut used = HashMap::new();
        for layer in layers {
            // Numbered even when already visited, as Keras's `_get_unique_name` is.
            let here = format!(
                "{place}layers/{}",
                unique(to_snake_case(layer.class_name()), &mut used)
            );
            if !self
                .visited
                .insert(Arc::as_ptr(layer) as *const () as usize)
            {
                continue;
            }
            let path = format!("{path}{}/", layer.name());
            if let Some(nested) = layer.as_any().downcast_ref::<Functional>() {
                self.layers(&nested.graph().layers(), &format!("{here}/"), &path);
                continue;
            }
            for (i, weight) in layer.weights().into_iter().enumerate() {
                if self.seen.insert(weight.var.id()) {
                    self.placed.push(Placed {
                        place: format!("{here}/vars/{i}"),
                        weight: Weight {
                            path: format!("{path}{}", weight.path),
                            ..weight
                        },
                    });
                }
            }
        }
    }
}

/// Keras's `_get_unique_name`: `dense`, then `dense_1`, `dense_2`...
fn unique(name: String, used: &mut HashMap<String, usize>) -> String {
    match used.get_mut(&name) {
        Some(count) => {
            *count += 1;
            format!("{name}_{count}")
        }
        None => {
            used.insert(name.clone(), 0);
            name
        }
    }
}

/// The metadata entry recording the place of each of `model`'s weights.
pub fn weight_structure(model: &Model) -> String {
    let places: Map<String, Value> = placed_weights(model)
        .into_iter()
        .map(|p| (p.place, Value::String(p.weight.path)))
        .collect();
    Value::Object(places).to_string()
}

/// Loads the weights saved at `path` into `model` by structure (Keras's `load_weights`): the
/// model's layers in order, each layer's weights in order, whatever the layers are named. A
/// weight missing from the file, a tensor the model has no place for, or one of another shape
/// or dtype is an error listing them all (each naming the model's weight, its place and both
/// shapes), and nothing is loaded.
///
/// A file without the places of its weights (written by another program) is loaded by name.
pub fn load_weights_by_structure(model: &Model, path: impl AsRef<Path>) -> Result<(), SaveError> {
    let path = path.as_ref();
    let mut source = Source::open(path)?;
    let file = Header::read(&mut source)?;
    let Some(entry) = file.metadata.get(KEY_WEIGHT_STRUCTURE) else {
        return load_weights(model, path, LoadOptions::default()).map(drop);
    };
    let saved: HashMap<String, String> =
        serde_json::from_str(entry).map_err(|e| SaveError::Format {
            path: path.to_path_buf(),
            reason: format!("invalid '{KEY_WEIGHT_STRUCTURE}' entry: {e}"),
        })?;
    // The model's weights under the names of the tensors at their places (under a label of
    // their own where the file has nothing), matched as by name.
    let mut label_of = HashMap::new();
    let renamed: Vec<Weight> = placed_weights(model)
        .into_iter()
        .map(|Placed { place, weight }| {
            let label = format!("{} (at {place})", weight.path);
            let stored = saved.get(&place).cloned().unwrap_or_else(|| label.clone());
            label_of.insert(stored.clone(), label);
            Weight {
                path: stored,
                ..weight
            }
        })
        .collect();
    let mut matching = match_weights(renamed, &file.tensors);
    if matching.mismatches.is_empty() {
        return assign(&matching.matched, &file, &mut source);
    }
    let place_of: HashMap<&String, &String> =
        saved.iter().map(|(place, name)| (name, place)).collect();
    for mismatch in &mut matching.mismatches {
        match mismatch {
            WeightMismatch::Missing { name, .. } | WeightMismatch::Incompatible { name, .. } => {
                *name = label_of
                    .remove(name.as_str())
                    .unwrap_or_else(|| name.clone());
            }
            WeightMismatch::Unexpected { name, .. } => {
                let place = place_of.get(name).map_or("no place", |p| p.as_str());
                *name = format!("{name} (at {place})");
            }
        }
    }
    Err(SaveError::WeightMismatch {
        path: path.to_path_buf(),
        mismatches: Mismatches(matching.mismatches),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkeras_layers::{Dense, Flatten, Input};

    #[test]
    fn places_weights_by_class_and_rank_never_by_name() {
        let input = Input::new(&[2, 2]);
        let inner_in = Input::new(&[4]);
        let inner = Model::new(inner_in, Dense::new(3).name("mid")(inner_in)).unwrap();
        let x = Flatten::new()(input);
        let y = Dense::new(1).name("last")(inner(Dense::new(4).name("first")(x)));
        let model = Model::new(input, y).unwrap();
        let placed: Vec<(String, String)> = placed_weights(&model)
            .into_iter()
            .map(|p| (p.place, p.weight.path))
            .collect();
        let expected = [
            ("layers/dense/vars/0", "first/kernel"),
            ("layers/dense/vars/1", "first/bias"),
            (
                "layers/functional/layers/dense/vars/0",
                "functional/mid/kernel",
            ),
            (
                "layers/functional/layers/dense/vars/1",
                "functional/mid/bias",
            ),
            ("layers/dense_1/vars/0", "last/kernel"),
            ("layers/dense_1/vars/1", "last/bias"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(placed, expected);
        // The same order as the model's weights.
        let paths: Vec<String> = model.weights().into_iter().map(|w| w.path).collect();
        assert_eq!(
            paths,
            expected.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>()
        );
    }
}
