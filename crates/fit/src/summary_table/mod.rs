//! `model.summary()` text, character for character as Keras 3 prints it without a terminal
//! (`keras/src/utils/summary_utils.py` drawing a rich `Table` with `box.HEAVY_HEAD` and
//! `show_lines=True`).

mod layout;
mod numbers;
mod ratio;
mod table;

pub use numbers::{format_count, readable_memory_size};

use crate::error::Result;
use crate::format::{wrap, Justify, Overflow};

/// One layer of the summary table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// The layer's name and class, e.g. `"dense (Dense)"`.
    pub layer: String,
    /// The output shape, e.g. `"(None, 49)"`, or `"?"` when it is not known yet.
    pub output_shape: String,
    /// The number of weights; `None` for a layer that is not built yet (`0 (unbuilt)`).
    pub params: Option<usize>,
    /// The inbound tensors, e.g. `["dense[0][0]"]`; shown only with the `Connected to` column,
    /// as `-` when empty.
    pub connected_to: Vec<String>,
}

/// Parameter counts and their sizes in bytes for the lines under the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamTotals {
    /// Trainable weights: (count, bytes).
    pub trainable: (usize, usize),
    /// Non-trainable weights: (count, bytes).
    pub non_trainable: (usize, usize),
    /// Optimizer variables once the optimizer is built: (count, bytes); `None` hides the line.
    pub optimizer: Option<(usize, usize)>,
}

/// Renders the Keras 3 summary of a model: the `Model: "name"` line, the table and the
/// parameter totals, each line ending in `\n`, without colours.
///
/// `show_connected_to` adds Keras's 4th column (models that are not sequential-like).
/// `terminal_columns` is the width of the terminal, or `None` when output is not a terminal,
/// where Keras assumes 80 columns; the table is then 76 characters wide.
///
/// Fails, like Keras, when the terminal is too narrow to give every column 4 characters.
pub fn render_summary(
    model_name: &str,
    rows: &[SummaryRow],
    totals: &ParamTotals,
    show_connected_to: bool,
    terminal_columns: Option<usize>,
) -> Result<String> {
    let console_columns = terminal_columns.unwrap_or(layout::NON_TERMINAL_COLUMNS);
    let widths = layout::column_widths(show_connected_to, console_columns)?;

    let mut header = vec!["Layer (type)", "Output Shape", "Param #"];
    let mut justify = vec![Justify::Left, Justify::Left, Justify::Right];
    if show_connected_to {
        header.push("Connected to");
        justify.push(Justify::Left);
    }
    let columns: Vec<table::Column> = widths
        .iter()
        .zip(justify)
        .map(|(&width, justify)| table::Column { width, justify })
        .collect();
    let header: Vec<String> = header.into_iter().map(str::to_owned).collect();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row_cells(row, show_connected_to))
        .collect();

    let mut out = String::new();
    print_line(
        &mut out,
        &format!("Model: \"{model_name}\""),
        console_columns,
    );
    table::render(&mut out, &columns, &header, &body);
    for line in totals_lines(totals) {
        print_line(&mut out, &line, console_columns);
    }
    Ok(out)
}

/// The cells of one table row, as Keras fills them.
fn row_cells(row: &SummaryRow, show_connected_to: bool) -> Vec<String> {
    let params = match row.params {
        Some(count) => format_count(count),
        None => "0 (unbuilt)".to_owned(),
    };
    let mut cells = vec![row.layer.clone(), row.output_shape.clone(), params];
    if show_connected_to {
        cells.push(if row.connected_to.is_empty() {
            "-".to_owned()
        } else {
            row.connected_to.join(", ")
        });
    }
    cells
}

/// The `Total`, `Trainable`, `Non-trainable` and (once built) `Optimizer` params lines.
fn totals_lines(totals: &ParamTotals) -> Vec<String> {
    let (optimizer_count, optimizer_bytes) = totals.optimizer.unwrap_or((0, 0));
    let total = (
        totals.trainable.0 + totals.non_trainable.0 + optimizer_count,
        totals.trainable.1 + totals.non_trainable.1 + optimizer_bytes,
    );
    let line = |label: &str, (count, bytes): (usize, usize)| {
        format!(
            " {label} params: {} ({})",
            format_count(count),
            readable_memory_size(bytes)
        )
    };
    let mut lines = vec![
        line("Total", total),
        line("Trainable", totals.trainable),
        line("Non-trainable", totals.non_trainable),
    ];
    if let Some(optimizer) = totals.optimizer {
        lines.push(line("Optimizer", optimizer));
    }
    lines
}

/// Appends a line as rich's `console.print` writes it: wrapped, long words folded, at the
/// console width.
fn print_line(out: &mut String, text: &str, console_columns: usize) {
    for line in wrap(text, console_columns, Justify::None, Overflow::Fold) {
        out.push_str(&line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests;
