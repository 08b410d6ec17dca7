//! An RGB raster with the few drawing operations the plots need: rectangles, straight
//! lines (Bresenham's algorithm with a square brush) and text in the built-in font.
//! Everything drawn is clipped to the canvas, so no coordinate can fail.

use crate::font::{self, ADVANCE, CAP_HEIGHT, GLYPH_HEIGHT, GLYPH_WIDTH};

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rgb(pub(crate) u8, pub(crate) u8, pub(crate) u8);

/// A `width` x `height` RGB image, row-major, three bytes a pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Canvas {
    width: usize,
    height: usize,
    bytes: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub(crate) fn new(width: usize, height: usize, background: Rgb) -> Self {
        let Rgb(r, g, b) = background;
        Self {
            width,
            height,
            bytes: [r, g, b].repeat(width * height),
        }
    }

    /// The RGB bytes, row after row.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The colour at (`x`, `y`), or `None` outside the canvas.
    #[cfg(test)]
    pub(crate) fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let at = 3 * (y * self.width + x);
            Rgb(self.bytes[at], self.bytes[at + 1], self.bytes[at + 2])
        })
    }

    /// Paints one pixel; outside the canvas, nothing.
    pub(crate) fn put(&mut self, x: i64, y: i64, color: Rgb) {
        let (Ok(x), Ok(y)) = (usize::try_from(x), usize::try_from(y)) else {
            return;
        };
        if x < self.width && y < self.height {
            let at = 3 * (y * self.width + x);
            self.bytes[at..at + 3].copy_from_slice(&[color.0, color.1, color.2]);
        }
    }

    /// Paints the `width` x `height` rectangle whose top-left pixel is (`x`, `y`).
    pub(crate) fn fill_rect(&mut self, x: i64, y: i64, width: i64, height: i64, color: Rgb) {
        for row in y..y + height {
            for column in x..x + width {
                self.put(column, row, color);
            }
        }
    }

    /// Draws the segment from (`x0`, `y0`) to (`x1`, `y1`) with a square brush
    /// `thickness` pixels wide centred on each point of Bresenham's line.
    pub(crate) fn line(
        &mut self,
        (x0, y0): (i64, i64),
        (x1, y1): (i64, i64),
        thickness: i64,
        color: Rgb,
    ) {
        let offset = (thickness - 1) / 2;
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (step_x, step_y) = ((x1 - x0).signum(), (y1 - y0).signum());
        let (mut x, mut y, mut error) = (x0, y0, dx + dy);
        loop {
            self.fill_rect(x - offset, y - offset, thickness, thickness, color);
            if x == x1 && y == y1 {
                break;
            }
            let doubled = 2 * error;
            if doubled >= dy {
                error += dy;
                x += step_x;
            }
            if doubled <= dx {
                error += dx;
                y += step_y;
            }
        }
    }

    /// Writes `text` with its top-left corner at (`x`, `y`), each font pixel drawn as a
    /// `scale` x `scale` square.
    pub(crate) fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        let advance = (ADVANCE as i64) * scale;
        for (index, c) in text.chars().enumerate() {
            let left = x + index as i64 * advance;
            for (row, pattern) in font::glyph(c).iter().enumerate() {
                for column in 0..GLYPH_WIDTH {
                    if font::is_ink(pattern, column) {
                        let (px, py) = (left + column as i64 * scale, y + row as i64 * scale);
                        self.fill_rect(px, py, scale, scale, color);
                    }
                }
            }
        }
    }
}

/// The width in pixels of `text` drawn at `scale`, without trailing space.
pub(crate) fn text_width(text: &str, scale: i64) -> i64 {
    let count = text.chars().count() as i64;
    (count * ADVANCE as i64 - 1).max(0) * scale
}

/// The height in pixels of a line of text drawn at `scale`, descenders included.
pub(crate) fn text_height(scale: i64) -> i64 {
    GLYPH_HEIGHT as i64 * scale
}

/// The height in pixels of capitals and digits drawn at `scale`: what to centre on.
pub(crate) fn cap_height(scale: i64) -> i64 {
    CAP_HEIGHT as i64 * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: Rgb = Rgb(255, 255, 255);
    const INK: Rgb = Rgb(10, 20, 30);

    /// The inked pixels of a canvas, as (x, y) pairs in row-major order.
    fn inked(canvas: &Canvas) -> Vec<(usize, usize)> {
        let mut pixels = Vec::new();
        for y in 0..canvas.height {
            for x in 0..canvas.width {
                if canvas.get(x, y) != Some(WHITE) {
                    pixels.push((x, y));
                }
            }
        }
        pixels
    }

    #[test]
    fn new_canvas_is_filled_with_the_background() {
        let canvas = Canvas::new(3, 2, Rgb(1, 2, 3));
        assert_eq!(canvas.bytes(), [1, 2, 3].repeat(6));
    }

    #[test]
    fn drawing_outside_is_clipped() {
        let mut canvas = Canvas::new(3, 3, WHITE);
        canvas.put(-1, 0, INK);
        canvas.put(3, 0, INK);
        canvas.fill_rect(2, 2, 5, 5, INK);
        canvas.line((-10, -10), (-5, 40), 3, INK);
        assert_eq!(inked(&canvas), [(2, 2)]);
    }

    #[test]
    fn lines_hit_the_expected_pixels() {
        let mut canvas = Canvas::new(6, 4, WHITE);
        canvas.line((0, 0), (4, 2), 1, INK);
        // Bresenham from (0,0) to (4,2): y steps at x = 1 and x = 3.
        assert_eq!(inked(&canvas), [(0, 0), (1, 1), (2, 1), (3, 2), (4, 2)]);

        let mut canvas = Canvas::new(6, 4, WHITE);
        canvas.line((2, 3), (2, 1), 1, INK);
        assert_eq!(inked(&canvas), [(2, 1), (2, 2), (2, 3)]);

        let mut canvas = Canvas::new(6, 4, WHITE);
        canvas.line((1, 1), (3, 1), 2, INK);
        // A 2-pixel brush covers the point and the pixel right of and below it.
        assert_eq!(
            inked(&canvas),
            [
                (1, 1),
                (2, 1),
                (3, 1),
                (4, 1),
                (1, 2),
                (2, 2),
                (3, 2),
                (4, 2)
            ]
        );
    }

    #[test]
    fn text_is_drawn_glyph_by_glyph_at_scale() {
        let mut canvas = Canvas::new(20, 16, WHITE);
        canvas.text(1, 1, "-_", 2, INK);
        let mut expected = Vec::new();
        // '-' is row 3 of its glyph, columns 0-4, doubled: y 7..9, x 1..11.
        for y in 7..9 {
            expected.extend((1..11).map(|x| (x, y)));
        }
        // '_' is row 6 of its glyph, starting 12 pixels right: y 13..15, x 13..23 clipped to 20.
        for y in 13..15 {
            expected.extend((13..20).map(|x| (x, y)));
        }
        assert_eq!(inked(&canvas), expected);
        assert_eq!(canvas.get(1, 7), Some(INK));
    }

    #[test]
    fn text_size_is_counted_in_glyphs() {
        assert_eq!(text_width("", 1), 0);
        assert_eq!(text_width("a", 1), 5);
        assert_eq!(text_width("loss", 2), (4 * 6 - 1) * 2);
        assert_eq!(text_height(3), 27);
        assert_eq!(cap_height(3), 21);
    }
}
