//! A grid of grey-scale images, one row per slice of images, as the tutorial's
//! `plot_digits` draws originals, noisy inputs and reconstructions.

use std::path::Path;

use crate::error::{Error, Result};
use crate::png_file::{write_png, Pixels};

/// How many screen pixels wide and high each image pixel is drawn.
pub const DIGIT_SCALE: usize = 4;
/// The width of the lines between cells and around the grid, in screen pixels.
pub const SEPARATOR: usize = 2;
/// The grey of the separators and of empty cells (rows shorter than the longest).
pub const SEPARATOR_GREY: u8 = 128;

/// Writes a PNG grid of grey-scale images to `path`: one grid row per slice of `rows`,
/// each slice holding `k` images of `image_size.0` (height) x `image_size.1` (width)
/// pixels, row-major, back to back. There are as many columns as the longest slice has
/// images; shorter rows end in empty grey cells.
///
/// Pixels are shown as matplotlib's `gray` map does: 0 black, 1 white, values outside
/// [0, 1] clamped and NaN black. Each pixel is drawn [`DIGIT_SCALE`] times larger, and
/// cells are parted by [`SEPARATOR`] pixels of [`SEPARATOR_GREY`]. The file is written
/// to a temporary file first and renamed, so a failure leaves any old `path` intact.
pub fn plot_digits(path: &Path, rows: &[&[f32]], image_size: (usize, usize)) -> Result<()> {
    let grid = Grid::new(rows, image_size)?;
    write_png(
        path,
        grid.width,
        grid.height,
        Pixels::Grey,
        &grid.render(rows),
    )
}

/// The layout of the grid, checked against the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grid {
    image_height: usize,
    image_width: usize,
    /// The picture's width in pixels.
    width: u32,
    /// The picture's height in pixels.
    height: u32,
}

impl Grid {
    /// Checks the input and sizes the grid.
    fn new(rows: &[&[f32]], (image_height, image_width): (usize, usize)) -> Result<Self> {
        let pixels_per_image = image_height.checked_mul(image_width).unwrap_or(0);
        if pixels_per_image == 0 {
            return Err(Error::invalid(
                "image_size",
                "a non-zero height and width whose product fits in memory",
                format!("{image_height} x {image_width}"),
            ));
        }
        for (index, row) in rows.iter().enumerate() {
            if row.len() % pixels_per_image != 0 {
                return Err(Error::invalid(
                    format!("rows[{index}]"),
                    format!(
                        "a multiple of {image_height} x {image_width} = {pixels_per_image} values"
                    ),
                    format!("{} values", row.len()),
                ));
            }
        }
        let columns = rows
            .iter()
            .map(|row| row.len() / pixels_per_image)
            .max()
            .unwrap_or(0);
        if columns == 0 {
            return Err(Error::invalid(
                "rows",
                "at least one image",
                format!("{} rows without images", rows.len()),
            ));
        }
        let too_large = || {
            Error::invalid(
                "rows",
                format!("a grid at most {MAX_SIDE} pixels wide and high"),
                format!(
                    "{} rows of {columns} images of {image_height} x {image_width}",
                    rows.len()
                ),
            )
        };
        Ok(Self {
            image_height,
            image_width,
            width: side_length(columns, image_width).ok_or_else(too_large)?,
            height: side_length(rows.len(), image_height).ok_or_else(too_large)?,
        })
    }

    /// The grey bytes of the picture.
    fn render(&self, rows: &[&[f32]]) -> Vec<u8> {
        let width = self.width as usize;
        let mut picture = vec![SEPARATOR_GREY; width * self.height as usize];
        let pixels_per_image = self.image_height * self.image_width;
        let pitch_x = self.image_width * DIGIT_SCALE + SEPARATOR;
        let pitch_y = self.image_height * DIGIT_SCALE + SEPARATOR;
        for (grid_row, row) in rows.iter().enumerate() {
            for (grid_column, image) in row.chunks_exact(pixels_per_image).enumerate() {
                let left = SEPARATOR + grid_column * pitch_x;
                let top = SEPARATOR + grid_row * pitch_y;
                for (index, &value) in image.iter().enumerate() {
                    let (y, x) = (index / self.image_width, index % self.image_width);
                    let grey = to_grey(value);
                    for dy in 0..DIGIT_SCALE {
                        let start = (top + y * DIGIT_SCALE + dy) * width + left + x * DIGIT_SCALE;
                        picture[start..start + DIGIT_SCALE].fill(grey);
                    }
                }
            }
        }
        picture
    }
}

/// The most pixels a side of the grid may have: far beyond any screen, and small
/// enough that the picture's bytes fit in memory.
const MAX_SIDE: usize = 65_535;

/// The pixels along one side: `cells` cells of `image_side` scaled pixels with a
/// separator before each and one at the end; `None` past [`MAX_SIDE`].
fn side_length(cells: usize, image_side: usize) -> Option<u32> {
    let length = image_side
        .checked_mul(DIGIT_SCALE)?
        .checked_add(SEPARATOR)?
        .checked_mul(cells)?
        .checked_add(SEPARATOR)?;
    if length <= MAX_SIDE {
        u32::try_from(length).ok()
    } else {
        None
    }
}

/// A value in [0, 1] as a grey byte: clamped, rounded, NaN black.
fn to_grey(value: f32) -> u8 {
    if value.is_nan() {
        0
    } else {
        (value.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png_file::tests::read_png;

    /// The grey a test pixel value should show as, computed independently.
    fn expected_grey(value: f32) -> u8 {
        match value {
            v if v.is_nan() || v <= 0.0 => 0,
            v if v >= 1.0 => 255,
            v => (v * 255.0 + 0.5) as u8,
        }
    }

    #[test]
    fn each_cell_shows_its_image_at_scale_and_the_rest_is_separator() {
        let (h, w) = (3, 2);
        // Row 0: three images; row 1: one image, so two empty cells.
        let row0: Vec<f32> = (0..3 * h * w).map(|i| i as f32 / 17.0).collect();
        let row1 = vec![0.0, 1.0, -0.5, 1.5, f32::NAN, 0.5];
        let rows: [&[f32]; 2] = [&row0, &row1];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digits.png");
        plot_digits(&path, &rows, (h, w)).unwrap();

        let png = read_png(&path);
        assert_eq!(png.color, png::ColorType::Grayscale);
        let (cell_w, cell_h) = (w * DIGIT_SCALE, h * DIGIT_SCALE);
        assert_eq!(png.width, 3 * cell_w + 4 * SEPARATOR);
        assert_eq!(png.height, 2 * cell_h + 3 * SEPARATOR);

        // What every screen pixel should be, built cell by cell.
        let mut expected = vec![SEPARATOR_GREY; png.width * png.height];
        for (r, row) in rows.iter().enumerate() {
            for (c, image) in row.chunks(h * w).enumerate() {
                let (left, top) = (
                    SEPARATOR + c * (cell_w + SEPARATOR),
                    SEPARATOR + r * (cell_h + SEPARATOR),
                );
                for sy in 0..cell_h {
                    for sx in 0..cell_w {
                        let value = image[(sy / DIGIT_SCALE) * w + sx / DIGIT_SCALE];
                        expected[(top + sy) * png.width + left + sx] = expected_grey(value);
                    }
                }
            }
        }
        assert_eq!(png.bytes, expected);
        // Spot checks of the clamping: row 1's second pixel is 1.0, its fourth 1.5.
        let top = 2 * SEPARATOR + cell_h;
        assert_eq!(png.bytes[top * png.width + SEPARATOR + DIGIT_SCALE], 255);
        assert_eq!(
            png.bytes[(top + DIGIT_SCALE) * png.width + SEPARATOR + DIGIT_SCALE],
            255
        );
        assert_eq!(png.bytes[(top + DIGIT_SCALE) * png.width + SEPARATOR], 0);
    }

    #[test]
    fn a_row_not_made_of_whole_images_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digits.png");
        let good = [0.5; 8];
        let bad = [0.5; 7];
        let error = plot_digits(&path, &[&good, &bad], (2, 2)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "rows[1]: expected a multiple of 2 x 2 = 4 values, found 7 values"
        );
        assert!(!path.exists());
    }

    #[test]
    fn nothing_to_draw_is_an_error() {
        let path = Path::new("never-written.png");
        let no_rows: [&[f32]; 0] = [];
        assert!(plot_digits(path, &no_rows, (28, 28)).is_err());
        let empty_rows: [&[f32]; 2] = [&[], &[]];
        assert_eq!(
            plot_digits(path, &empty_rows, (28, 28))
                .unwrap_err()
                .to_string(),
            "rows: expected at least one image, found 2 rows without images"
        );
        assert!(plot_digits(path, &[&[0.0]], (0, 1)).is_err());
        assert!(plot_digits(path, &[&[0.0; 4]], (usize::MAX, 2)).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn a_grid_too_large_is_an_error_before_any_allocation() {
        let one_wide_row = vec![0.0f32; 20_000];
        let error =
            plot_digits(Path::new("never-written.png"), &[&one_wide_row], (1, 1)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("rows: expected a grid at most 65535 pixels"),
            "{error}"
        );
    }
}
