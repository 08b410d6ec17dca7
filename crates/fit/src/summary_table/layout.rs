//! Column widths of the summary table: Keras's `line_length` and `positions`, then rich's
//! fixed-width column measurement and `ratio_reduce` (`rich/table.py`).

use super::ratio::ratio_reduce;
use crate::error::{Error, Result};

/// The console width Keras sees when stdout is not a terminal (`shutil` falls back to 80).
pub(crate) const NON_TERMINAL_COLUMNS: usize = 80;

/// Relative column end positions Keras uses for sequential-like models.
const POSITIONS_3: [f64; 3] = [0.45, 0.80, 1.0];
/// Relative column end positions Keras uses when a `Connected to` column is shown.
const POSITIONS_4: [f64; 4] = [0.3, 0.56, 0.74, 1.0];
/// Cell padding rich adds to every column (one space on each side).
const CELL_PADDING: usize = 2;

/// Keras's `line_length`: `min(88, columns - 4)`, or `min(108, columns - 4)` with 4 columns.
pub(crate) fn line_length(show_connected_to: bool, console_columns: usize) -> Result<usize> {
    let default = if show_connected_to { 108 } else { 88 };
    console_columns
        .checked_sub(4)
        .map(|available| available.min(default))
        .ok_or_else(|| insufficient_width(console_columns))
}

fn insufficient_width(console_columns: usize) -> Error {
    Error::Config(format!(
        "insufficient console width to print the summary: {console_columns} columns \
         (Keras needs every column to get at least 4 characters)"
    ))
}

/// The width of each column, padding included and borders excluded, as rich renders a
/// `Table(width=line_length)` whose columns have Keras's fixed widths.
pub(crate) fn column_widths(show_connected_to: bool, console_columns: usize) -> Result<Vec<usize>> {
    let line_length = line_length(show_connected_to, console_columns)?;
    let positions: &[f64] = if show_connected_to {
        &POSITIONS_4
    } else {
        &POSITIONS_3
    };

    // Keras: `width = int(pos * line_length) - current`, each at least 4.
    let mut requested = Vec::with_capacity(positions.len());
    let mut current = 0;
    for &position in positions {
        let end = (position * line_length as f64) as usize;
        if end < current + 4 {
            return Err(insufficient_width(console_columns));
        }
        requested.push(end - current);
        current = end;
    }

    // rich: borders take 2 edges plus one divider between columns; each column asks for its
    // width plus padding, capped at the space left.
    let borders = 2 + positions.len() - 1;
    let max_width = line_length.saturating_sub(borders);
    let widths: Vec<usize> = requested
        .iter()
        .map(|width| (width + CELL_PADDING).min(max_width).max(1))
        .collect();
    let table_width: usize = widths.iter().sum();
    if table_width <= max_width {
        return Ok(widths);
    }
    let ones = vec![1; widths.len()];
    Ok(ratio_reduce(
        table_width - max_width,
        &ones,
        &widths,
        &widths,
    ))
}

/// The width of the text inside a column of `width` cells.
pub(crate) fn content_width(width: usize) -> usize {
    width.saturating_sub(CELL_PADDING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_length_follows_the_terminal() {
        assert_eq!(line_length(false, 80).unwrap(), 76);
        assert_eq!(line_length(false, 92).unwrap(), 88);
        assert_eq!(line_length(false, 200).unwrap(), 88);
        assert_eq!(line_length(true, 80).unwrap(), 76);
        assert_eq!(line_length(true, 200).unwrap(), 108);
        assert!(line_length(false, 3).is_err());
    }

    #[test]
    fn three_columns_at_80_and_92_columns() {
        assert_eq!(column_widths(false, 80).unwrap(), [33, 24, 15]);
        assert_eq!(column_widths(false, 92).unwrap(), [38, 29, 17]);
    }

    #[test]
    fn four_columns_at_80_columns() {
        assert_eq!(column_widths(true, 80).unwrap(), [21, 19, 12, 19]);
    }

    #[test]
    fn four_columns_at_full_width() {
        // Line 108: int(.3*108)=32, int(.56*108)=60, int(.74*108)=79, so 32/28/19/29; with
        // padding 34/30/21/31 = 116 for 103 available: 13 removed as 3, 3, 4, 3.
        assert_eq!(column_widths(true, 112).unwrap(), [31, 27, 17, 28]);
    }

    #[test]
    fn narrow_consoles_are_refused_like_keras() {
        // 24 columns: line 20, requested 9/7/4, padded 11/9/6 for 16: 10 removed as 3, 4, 3.
        assert_eq!(column_widths(false, 24).unwrap(), [8, 5, 3]);
        // 20 columns: line 16, requested 7/5/4, the narrowest layout Keras accepts.
        assert_eq!(column_widths(false, 20).unwrap(), [6, 3, 3]);
        // 19 columns: line 15 gives a last column of 15 - int(.8*15) = 3.
        assert!(column_widths(false, 19).is_err());
    }
}
