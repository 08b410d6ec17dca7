//! The part of rich's text layout that a summary needs (`rich/_wrap.py`, `rich/text.py`,
//! `rich/cells.py`): word wrapping, cropping with `…`, folding long words, and justification,
//! all measured in terminal cells.

use unicode_width::UnicodeWidthChar;

/// How a line that does not fit is shortened, as rich's `overflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Table cells (rich's column default): a word longer than the width is cut and ends in `…`.
    Ellipsis,
    /// Plain console lines (rich's console default): a word longer than the width is split.
    Fold,
}

/// Where the text of a line goes, as rich's `justify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Justify {
    /// No padding at all (rich's "default", used by `console.print`).
    None,
    /// Padded on the right to the width.
    Left,
    /// Padded on the left to the width.
    Right,
}

/// The number of terminal cells a character occupies (0 for control characters).
fn char_cells(character: char) -> usize {
    character.width().unwrap_or(0)
}

/// The number of terminal cells a string occupies.
pub(crate) fn cell_len(text: &str) -> usize {
    text.chars().map(char_cells).sum()
}

/// Crops or pads `text` with spaces to exactly `total` cells (rich's `set_cell_size`); a wide
/// character cut in half becomes spaces.
fn set_cell_size(text: &str, total: usize) -> String {
    let mut result = String::with_capacity(total);
    let mut size = 0;
    for character in text.chars() {
        let cells = char_cells(character);
        if size + cells > total {
            break;
        }
        size += cells;
        result.push(character);
    }
    result.extend(std::iter::repeat_n(' ', total - size));
    result
}

/// Splits a word into pieces of at most `width` cells (rich's `chop_cells`).
fn chop_cells(word: &[char], width: usize) -> Vec<usize> {
    // Lengths, in characters, of each piece.
    let mut pieces = Vec::new();
    let mut piece_chars = 0;
    let mut piece_cells = 0;
    for &character in word {
        let cells = char_cells(character);
        if piece_cells + cells > width {
            pieces.push(piece_chars);
            piece_chars = 0;
            piece_cells = 0;
        }
        piece_chars += 1;
        piece_cells += cells;
    }
    if piece_cells > 0 {
        pieces.push(piece_chars);
    }
    pieces
}

/// The words of a line as rich sees them (`\s*\S+\s*`): character ranges that keep the spaces
/// around them.
fn words(line: &[char]) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut position = 0;
    loop {
        let mut end = position;
        while end < line.len() && line[end].is_whitespace() {
            end += 1;
        }
        let word_start = end;
        while end < line.len() && !line[end].is_whitespace() {
            end += 1;
        }
        if end == word_start {
            return words;
        }
        while end < line.len() && line[end].is_whitespace() {
            end += 1;
        }
        words.push((position, end));
        position = end;
    }
}

fn cells_of(chars: &[char]) -> usize {
    chars.iter().copied().map(char_cells).sum()
}

fn trim_end_whitespace(chars: &[char]) -> &[char] {
    let kept = chars.len() - chars.iter().rev().take_while(|c| c.is_whitespace()).count();
    &chars[..kept]
}

/// The character offsets where rich breaks a line to fit `width` cells (`divide_line`).
fn divide_line(line: &[char], width: usize, overflow: Overflow) -> Vec<usize> {
    let mut breaks = Vec::new();
    let mut cell_offset = 0;
    for (mut start, end) in words(line) {
        let word = &line[start..end];
        let word_length = cells_of(trim_end_whitespace(word));
        if cell_offset + word_length <= width {
            cell_offset += cells_of(word);
        } else if word_length > width {
            match overflow {
                Overflow::Fold => {
                    let pieces = chop_cells(word, width);
                    for (index, &piece) in pieces.iter().enumerate() {
                        if start > 0 {
                            breaks.push(start);
                        }
                        if index + 1 == pieces.len() {
                            cell_offset = cells_of(&line[start..start + piece]);
                        } else {
                            start += piece;
                        }
                    }
                }
                Overflow::Ellipsis => {
                    if start > 0 {
                        breaks.push(start);
                    }
                    cell_offset = cells_of(word);
                }
            }
        } else if cell_offset > 0 && start > 0 {
            breaks.push(start);
            cell_offset = cells_of(word);
        }
    }
    breaks
}

/// Shortens a line longer than `width` cells (rich's `Text.truncate`), optionally padding a
/// shorter one with spaces.
fn truncate(line: &mut String, width: usize, overflow: Overflow, pad: bool) {
    let length = cell_len(line);
    if length > width {
        *line = match overflow {
            Overflow::Ellipsis => set_cell_size(line, width.saturating_sub(1)) + "…",
            Overflow::Fold => set_cell_size(line, width),
        };
    }
    if pad && length < width {
        line.extend(std::iter::repeat_n(' ', width - length));
    }
}

/// Lays `text` out in lines of at most `width` cells the way rich renders a `Text`: each `\n`
/// starts a line, long lines are word-wrapped, then each line is justified and truncated.
pub(crate) fn wrap(text: &str, width: usize, justify: Justify, overflow: Overflow) -> Vec<String> {
    let mut lines = Vec::new();
    for source_line in text.split('\n') {
        let chars: Vec<char> = source_line.chars().collect();
        let mut bounds = vec![0];
        bounds.extend(divide_line(&chars, width, overflow));
        bounds.push(chars.len());
        for piece in bounds.windows(2) {
            let mut piece = &chars[piece[0]..piece[1]];
            // rstrip_end: drop trailing whitespace that goes beyond the width (counted in chars).
            if piece.len() > width {
                let excess = piece.len() - width;
                let trailing = piece.len() - trim_end_whitespace(piece).len();
                piece = &piece[..piece.len() - trailing.min(excess)];
            }
            let mut line: String = piece.iter().collect();
            match justify {
                Justify::None => {}
                Justify::Left => truncate(&mut line, width, overflow, true),
                Justify::Right => {
                    line.truncate(line.trim_end().len());
                    truncate(&mut line, width, overflow, false);
                    let missing = width.saturating_sub(cell_len(&line));
                    line.insert_str(0, &" ".repeat(missing));
                }
            }
            truncate(&mut line, width, overflow, false);
            lines.push(line);
        }
    }
    lines
}

/// Crops or pads a rendered line to exactly `width` cells (rich's `Segment.set_shape`).
pub(crate) fn fit_to_width(line: &str, width: usize) -> String {
    set_cell_size(line, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap_left(text: &str, width: usize) -> Vec<String> {
        wrap(text, width, Justify::Left, Overflow::Ellipsis)
    }

    #[test]
    fn short_text_is_padded_or_right_aligned() {
        assert_eq!(wrap_left("dense (Dense)", 16), ["dense (Dense)   "]);
        assert_eq!(
            wrap("25,120", 9, Justify::Right, Overflow::Ellipsis),
            ["   25,120"]
        );
        assert_eq!(wrap("abc", 6, Justify::None, Overflow::Fold), ["abc"]);
    }

    #[test]
    fn words_move_to_the_next_line() {
        assert_eq!(
            wrap_left("dense[0][0], dense_1[0][0]", 17),
            ["dense[0][0],     ", "dense_1[0][0]    "]
        );
        assert_eq!(
            wrap_left("a bb ccc dddd", 6),
            ["a bb  ", "ccc   ", "dddd  "]
        );
        assert_eq!(
            wrap("a bb ccc dddd", 6, Justify::Right, Overflow::Ellipsis),
            ["  a bb", "   ccc", "  dddd"]
        );
    }

    #[test]
    fn a_word_wider_than_a_cell_ends_in_an_ellipsis() {
        assert_eq!(
            wrap_left("extremely_long_layer_name (Dense)", 10),
            ["extremely…", "(Dense)   "]
        );
        assert_eq!(wrap_left("abcdefgh", 5), ["abcd…"]);
    }

    #[test]
    fn a_word_wider_than_a_console_line_is_folded() {
        assert_eq!(
            wrap("ab abcdefghij cd", 4, Justify::None, Overflow::Fold),
            ["ab ", "abcd", "efgh", "ij ", "cd"]
        );
    }

    #[test]
    fn newlines_start_lines_and_spaces_beyond_the_width_are_dropped() {
        assert_eq!(wrap_left("ab\ncd", 4), ["ab  ", "cd  "]);
        // "abcd " has 5 chars for 4 cells: the trailing space goes.
        assert_eq!(
            wrap("abcd ef", 4, Justify::None, Overflow::Fold),
            ["abcd", "ef"]
        );
    }

    #[test]
    fn wide_characters_take_two_cells() {
        assert_eq!(cell_len("層a"), 3);
        // Cropping to 3 cells cuts the second wide character: a space takes its place.
        assert_eq!(wrap_left("層層層", 4), ["層 …"]);
        assert_eq!(fit_to_width("層層", 3), "層 ");
    }
}
