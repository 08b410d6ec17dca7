//! `model.summary()`: the Keras 3 table of a model's layers, shapes and parameter counts.

use std::io::IsTerminal;
use std::sync::Arc;

use rkeras_layers::{Layer, Weight};
use rkeras_model::Model;

use crate::compile::{with_compiled, CompileState};
use crate::summary_table::{render_summary, ParamTotals, SummaryRow};
use crate::Result;

/// Keras's `summary()` on a model.
pub trait Summary {
    /// Prints the summary to stdout, sized to the terminal as Keras does (76 columns when
    /// stdout is not a terminal).
    fn summary(&self);

    /// The summary text Keras prints when stdout is not a terminal.
    fn summary_string(&self) -> Result<String>;
}

impl Summary for Model {
    fn summary(&self) {
        let columns = std::io::stdout()
            .is_terminal()
            .then(terminal_columns)
            .flatten();
        match summary_text(self, columns) {
            Ok(text) => print!("{text}"),
            Err(e) => eprintln!("summary of model '{}' failed: {e}", self.name()),
        }
    }

    fn summary_string(&self) -> Result<String> {
        summary_text(self, None)
    }
}

fn terminal_columns() -> Option<usize> {
    std::env::var("COLUMNS").ok()?.trim().parse().ok()
}

fn summary_text(model: &Model, columns: Option<usize>) -> Result<String> {
    let sequential_like = model.is_sequential_like();
    let rows: Vec<SummaryRow> = model
        .layers()
        .iter()
        .map(|layer| layer_row(model, layer, !sequential_like))
        .collect();
    let weights = model.weights();
    let sum = |trainable: bool| -> (usize, usize) {
        weights
            .iter()
            .filter(|w| w.trainable == trainable)
            .fold((0, 0), |(n, b), w| (n + w.count(), b + w.bytes()))
    };
    let trainable = sum(true);
    let optimizer = with_compiled(model, |state| match state {
        CompileState::Ready(c) if c.optimizer.iterations() > 0 => {
            let n = c.optimizer.variable_count(trainable.0);
            // Keras's iteration counter is an int64: 8 bytes, the other variables 4 each.
            Some((n, n * 4 + 4))
        }
        _ => None,
    });
    let totals = ParamTotals {
        trainable,
        non_trainable: sum(false),
        optimizer,
    };
    render_summary(model.name(), &rows, &totals, !sequential_like, columns)
}

fn layer_row(model: &Model, layer: &Arc<dyn Layer>, connected: bool) -> SummaryRow {
    // Keras lists the inbound tensors of every call of the layer, and the output shape of
    // its last call (`summary_utils.py`: `get_connections`, `format_layer_shape`).
    let calls: Vec<_> = model
        .nodes()
        .iter()
        .filter(|n| Arc::ptr_eq(&n.layer, layer))
        .collect();
    let node = calls.last().copied();
    let input_shape = model
        .graph()
        .input_layers
        .iter()
        .position(|l| Arc::ptr_eq(l, layer))
        .map(|i| model.input_shapes()[i].to_string());
    let output_shape = match (node, input_shape) {
        (_, Some(shape)) => shape,
        (Some(node), None) => match node.output_shapes.as_slice() {
            [only] => only.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        (None, None) => "?".to_string(),
    };
    let connected_to = if connected {
        calls
            .iter()
            .flat_map(|node| &node.inbound)
            .map(|i| format!("{}[{}][{}]", i.layer, i.node_index, i.tensor_index))
            .collect()
    } else {
        Vec::new()
    };
    SummaryRow {
        layer: format!("{} ({})", layer.name(), layer.class_name()),
        output_shape,
        params: Some(layer.weights().iter().map(Weight::count).sum()),
        connected_to,
    }
}
