//! Drawing of a rich `Table` with the `HEAVY_HEAD` box, a header row and lines between rows.

use super::layout::content_width;
use crate::format::{fit_to_width, wrap, Justify, Overflow};

/// A column of the table: its width (padding included) and alignment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// Width in cells, one space of padding on each side included.
    pub(crate) width: usize,
    /// Horizontal alignment of the text.
    pub(crate) justify: Justify,
}

/// The characters of a horizontal rule: left end, fill, column divider, right end.
struct Rule(char, char, char, char);

const TOP: Rule = Rule('┏', '━', '┳', '┓');
const HEAD_SEPARATOR: Rule = Rule('┡', '━', '╇', '┩');
const ROW_SEPARATOR: Rule = Rule('├', '─', '┼', '┤');
const BOTTOM: Rule = Rule('└', '─', '┴', '┘');
/// Vertical border of the header row.
const HEAD_VERTICAL: char = '┃';
/// Vertical border of body rows.
const BODY_VERTICAL: char = '│';

/// Which edge a row's cells stick to when they have fewer lines than the tallest cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vertical {
    Top,
    Bottom,
}

/// Appends the whole table, one `\n`-terminated line at a time.
pub(crate) fn render(
    out: &mut String,
    columns: &[Column],
    header: &[String],
    body: &[Vec<String>],
) {
    push_rule(out, columns, &TOP);
    push_row(out, columns, header, HEAD_VERTICAL, Vertical::Bottom);
    push_rule(out, columns, &HEAD_SEPARATOR);
    for (index, row) in body.iter().enumerate() {
        if index > 0 {
            push_rule(out, columns, &ROW_SEPARATOR);
        }
        push_row(out, columns, row, BODY_VERTICAL, Vertical::Top);
    }
    push_rule(out, columns, &BOTTOM);
}

fn push_rule(out: &mut String, columns: &[Column], rule: &Rule) {
    out.push(rule.0);
    for (index, column) in columns.iter().enumerate() {
        if index > 0 {
            out.push(rule.2);
        }
        out.extend(std::iter::repeat_n(rule.1, column.width));
    }
    out.push(rule.3);
    out.push('\n');
}

fn push_row(
    out: &mut String,
    columns: &[Column],
    cells: &[String],
    vertical_border: char,
    vertical: Vertical,
) {
    let rendered: Vec<Vec<String>> = columns
        .iter()
        .zip(cells)
        .map(|(column, text)| render_cell(column, text))
        .collect();
    let height = rendered.iter().map(Vec::len).max().unwrap_or(1).max(1);
    for line_index in 0..height {
        out.push(vertical_border);
        for (index, (column, lines)) in columns.iter().zip(&rendered).enumerate() {
            if index > 0 {
                out.push(vertical_border);
            }
            let blank_before = match vertical {
                Vertical::Top => 0,
                Vertical::Bottom => height - lines.len(),
            };
            match line_index
                .checked_sub(blank_before)
                .and_then(|i| lines.get(i))
            {
                Some(line) => out.push_str(line),
                None => out.extend(std::iter::repeat_n(' ', column.width)),
            }
        }
        out.push(vertical_border);
        out.push('\n');
    }
}

/// The lines of one cell, each exactly `column.width` cells wide, padding included.
fn render_cell(column: &Column, text: &str) -> Vec<String> {
    let inner = content_width(column.width);
    wrap(text, inner, column.justify, Overflow::Ellipsis)
        .iter()
        .map(|line| fit_to_width(&format!(" {} ", fit_to_width(line, inner)), column.width))
        .collect()
}
