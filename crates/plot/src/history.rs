//! Loss curves: one coloured line per series of per-epoch values, with axes, numbered
//! ticks, a title and a legend, like `plt.plot(history.history["loss"])`.

use std::path::Path;

use crate::canvas::{cap_height, text_height, text_width, Canvas, Rgb};
use crate::error::{Error, Result};
use crate::png_file::{write_png, Pixels};
use crate::ticks::{nice_step, Ticks};

/// The width of a history plot, in pixels.
pub const HISTORY_WIDTH: u32 = 800;
/// The height of a history plot, in pixels.
pub const HISTORY_HEIGHT: u32 = 500;

/// The frame of the plotting area, in pixels from the top-left corner.
const PLOT_LEFT: i64 = 80;
const PLOT_RIGHT: i64 = HISTORY_WIDTH as i64 - 30;
const PLOT_TOP: i64 = 50;
const PLOT_BOTTOM: i64 = HISTORY_HEIGHT as i64 - 60;
/// The gap between the frame and the data's extreme points.
const PADDING: i64 = 12;

const BACKGROUND: Rgb = Rgb(255, 255, 255);
const INK: Rgb = Rgb(0, 0, 0);
const GRID: Rgb = Rgb(225, 225, 225);
const LEGEND_BORDER: Rgb = Rgb(190, 190, 190);

/// Matplotlib's default colour cycle ("tab10"), used in turn by the series.
const SERIES_COLORS: [Rgb; 10] = [
    Rgb(0x1f, 0x77, 0xb4),
    Rgb(0xff, 0x7f, 0x0e),
    Rgb(0x2c, 0xa0, 0x2c),
    Rgb(0xd6, 0x27, 0x28),
    Rgb(0x94, 0x67, 0xbd),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0xe3, 0x77, 0xc2),
    Rgb(0x7f, 0x7f, 0x7f),
    Rgb(0xbc, 0xbd, 0x22),
    Rgb(0x17, 0xbe, 0xcf),
];

/// Writes a [`HISTORY_WIDTH`] x [`HISTORY_HEIGHT`] PNG of per-epoch curves to `path`:
/// each `(name, values)` of `series` is a line through `(epoch, value)` for epochs
/// 1, 2, ..., in matplotlib's colours in turn (they repeat after ten series), named in
/// a legend. NaN and infinite values are skipped, breaking the line; a value with no
/// drawn neighbour shows as a dot. The file is written to a temporary file first and
/// renamed, so a failure leaves any old `path` intact.
///
/// Errors when `series` is empty, when a series has no value, or when no value at all
/// is finite.
pub fn plot_history(path: &Path, title: &str, series: &[(&str, &[f64])]) -> Result<()> {
    let axes = Axes::fit(series)?;
    let mut canvas = Canvas::new(HISTORY_WIDTH as usize, HISTORY_HEIGHT as usize, BACKGROUND);
    draw_title(&mut canvas, title);
    axes.draw(&mut canvas);
    for ((_, values), &color) in series.iter().zip(SERIES_COLORS.iter().cycle()) {
        axes.draw_series(&mut canvas, values, color);
    }
    draw_legend(&mut canvas, series);
    write_png(
        path,
        HISTORY_WIDTH,
        HISTORY_HEIGHT,
        Pixels::Rgb,
        canvas.bytes(),
    )
}

/// The data ranges shown and their ticks.
#[derive(Debug, Clone, PartialEq)]
struct Axes {
    /// The first and last epoch shown.
    epochs: (f64, f64),
    /// The epochs labelled on the x axis.
    epoch_ticks: Vec<u64>,
    /// The value ticks; their span is the y range shown.
    value_ticks: Ticks,
}

impl Axes {
    /// Checks the series and chooses ranges covering them.
    fn fit(series: &[(&str, &[f64])]) -> Result<Self> {
        if series.is_empty() {
            return Err(Error::invalid("series", "at least one series", "none"));
        }
        if let Some((index, (name, _))) = series.iter().enumerate().find(|(_, (_, v))| v.is_empty())
        {
            return Err(Error::invalid(
                format!("series[{index}] ({name:?})"),
                "at least one value",
                "none",
            ));
        }
        let finite = || {
            series
                .iter()
                .flat_map(|(_, values)| values.iter().copied())
                .filter(|v| v.is_finite())
        };
        let (Some(min), Some(max)) = (finite().reduce(f64::min), finite().reduce(f64::max)) else {
            return Err(Error::invalid(
                "series",
                "at least one finite value",
                "only NaN or infinite values",
            ));
        };
        if !(max - min).is_finite() {
            return Err(Error::invalid(
                "series",
                "values whose range fits in an f64",
                format!("values from {min:e} to {max:e}"),
            ));
        }
        let last_epoch = series
            .iter()
            .map(|(_, values)| values.len())
            .max()
            .unwrap_or(1) as u64;
        let epochs = if last_epoch == 1 {
            (0.0, 2.0)
        } else {
            (1.0, last_epoch as f64)
        };
        let step = nice_step((epochs.1 - epochs.0) / 8.0).round().max(1.0) as u64;
        let epoch_ticks = (1..=last_epoch).filter(|epoch| epoch % step == 0).collect();
        Ok(Self {
            epochs,
            epoch_ticks,
            value_ticks: Ticks::covering(min, max, 6),
        })
    }

    /// The pixel column of `epoch`.
    fn x(&self, epoch: f64) -> i64 {
        let (first, last) = self.epochs;
        let span = (PLOT_RIGHT - PLOT_LEFT - 2 * PADDING) as f64;
        PLOT_LEFT + PADDING + ((epoch - first) / (last - first) * span).round() as i64
    }

    /// The pixel row of `value`.
    fn y(&self, value: f64) -> i64 {
        let Ticks { low, high, .. } = self.value_ticks;
        let span = (PLOT_BOTTOM - PLOT_TOP - 2 * PADDING) as f64;
        PLOT_BOTTOM - PADDING - ((value - low) / (high - low) * span).round() as i64
    }

    /// Grid lines, frame, tick marks and tick labels, and the x axis's name.
    fn draw(&self, canvas: &mut Canvas) {
        let label_height = cap_height(1);
        for &value in &self.value_ticks.values() {
            let y = self.y(value);
            canvas.line((PLOT_LEFT, y), (PLOT_RIGHT, y), 1, GRID);
            canvas.line((PLOT_LEFT - 5, y), (PLOT_LEFT, y), 1, INK);
            let label = self.value_ticks.label(value);
            let x = PLOT_LEFT - 9 - text_width(&label, 1);
            canvas.text(x, y - label_height / 2, &label, 1, INK);
        }
        for &epoch in &self.epoch_ticks {
            let x = self.x(epoch as f64);
            canvas.line((x, PLOT_TOP), (x, PLOT_BOTTOM), 1, GRID);
            canvas.line((x, PLOT_BOTTOM), (x, PLOT_BOTTOM + 5), 1, INK);
            let label = epoch.to_string();
            canvas.text(
                x - text_width(&label, 1) / 2,
                PLOT_BOTTOM + 10,
                &label,
                1,
                INK,
            );
        }
        let corners = [
            (PLOT_LEFT, PLOT_TOP),
            (PLOT_RIGHT, PLOT_TOP),
            (PLOT_RIGHT, PLOT_BOTTOM),
            (PLOT_LEFT, PLOT_BOTTOM),
        ];
        for (index, &corner) in corners.iter().enumerate() {
            canvas.line(corner, corners[(index + 1) % corners.len()], 1, INK);
        }
        let name = "epoch";
        let centre = (PLOT_LEFT + PLOT_RIGHT) / 2;
        canvas.text(
            centre - text_width(name, 2) / 2,
            PLOT_BOTTOM + 28,
            name,
            2,
            INK,
        );
    }

    /// One series: segments between finite neighbours, dots for lone finite values.
    fn draw_series(&self, canvas: &mut Canvas, values: &[f64], color: Rgb) {
        let point = |index: usize| {
            let value = values.get(index).copied().filter(|v| v.is_finite())?;
            Some((self.x(index as f64 + 1.0), self.y(value)))
        };
        for index in 0..values.len() {
            let Some(here) = point(index) else { continue };
            let previous = index.checked_sub(1).and_then(point);
            match point(index + 1) {
                Some(next) => canvas.line(here, next, 2, color),
                None if previous.is_none() => canvas.fill_rect(here.0 - 2, here.1 - 2, 5, 5, color),
                None => {}
            }
        }
    }
}

/// The title, centred above the plotting area.
fn draw_title(canvas: &mut Canvas, title: &str) {
    let x = (HISTORY_WIDTH as i64 - text_width(title, 2)) / 2;
    canvas.text(x.max(4), 16, title, 2, INK);
}

/// A boxed legend in the top-right corner of the plotting area.
fn draw_legend(canvas: &mut Canvas, series: &[(&str, &[f64])]) {
    const PAD: i64 = 8;
    const SAMPLE: i64 = 24;
    const GAP: i64 = 6;
    const LINE: i64 = 16;
    let longest = series
        .iter()
        .map(|(name, _)| text_width(name, 1))
        .max()
        .unwrap_or(0);
    let width = PAD + SAMPLE + GAP + longest + PAD;
    let height = 2 * PAD + series.len() as i64 * LINE - (LINE - text_height(1));
    let (left, top) = (PLOT_RIGHT - 10 - width, PLOT_TOP + 10);
    canvas.fill_rect(left, top, width, height, BACKGROUND);
    let corners = [
        (left, top),
        (left + width, top),
        (left + width, top + height),
        (left, top + height),
    ];
    for (index, &corner) in corners.iter().enumerate() {
        canvas.line(
            corner,
            corners[(index + 1) % corners.len()],
            1,
            LEGEND_BORDER,
        );
    }
    for (index, ((name, _), &color)) in series.iter().zip(SERIES_COLORS.iter().cycle()).enumerate()
    {
        let row_top = top + PAD + index as i64 * LINE;
        let middle = row_top + cap_height(1) / 2;
        canvas.line(
            (left + PAD, middle),
            (left + PAD + SAMPLE, middle),
            2,
            color,
        );
        canvas.text(left + PAD + SAMPLE + GAP, row_top, name, 1, INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png_file::tests::{read_png, Decoded};

    fn plot(series: &[(&str, &[f64])]) -> Decoded {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.png");
        plot_history(&path, "Loss per epoch", series).unwrap();
        read_png(&path)
    }

    fn color_at(png: &Decoded, x: i64, y: i64) -> Rgb {
        let at = 3 * (y as usize * png.width + x as usize);
        Rgb(png.bytes[at], png.bytes[at + 1], png.bytes[at + 2])
    }

    fn count_of(png: &Decoded, color: Rgb) -> usize {
        png.bytes
            .chunks_exact(3)
            .filter(|pixel| *pixel == [color.0, color.1, color.2])
            .count()
    }

    #[test]
    fn writes_an_rgb_png_of_the_stated_size_with_every_series_colour() {
        let loss = [0.30, 0.21, 0.17, 0.15, 0.14];
        let val_loss = [0.25, 0.20, 0.18, 0.17, 0.169];
        let png = plot(&[("loss", &loss), ("val_loss", &val_loss)]);
        assert_eq!((png.width, png.height), (800, 500));
        assert_eq!(png.color, png::ColorType::Rgb);
        // Blue and orange, matplotlib's first two colours: curve plus legend sample.
        assert!(count_of(&png, Rgb(0x1f, 0x77, 0xb4)) > 200);
        assert!(count_of(&png, Rgb(0xff, 0x7f, 0x0e)) > 200);
        assert_eq!(count_of(&png, Rgb(0x2c, 0xa0, 0x2c)), 0);
        // Black ink: frame, ticks, labels and title.
        assert!(count_of(&png, INK) > 2 * (PLOT_RIGHT - PLOT_LEFT) as usize);
    }

    #[test]
    fn points_land_where_the_axes_put_them() {
        // Values 1.0, 0.5, 0.0 give ticks 0.0 to 1.0; epochs 1 to 3 span the width.
        let values = [1.0, 0.5, 0.0];
        let png = plot(&[("loss", &values)]);
        let blue = SERIES_COLORS[0];
        let (left, right) = (PLOT_LEFT + PADDING, PLOT_RIGHT - PADDING);
        let (top, bottom) = (PLOT_TOP + PADDING, PLOT_BOTTOM - PADDING);
        assert_eq!(color_at(&png, left, top), blue);
        assert_eq!(color_at(&png, (left + right) / 2, (top + bottom) / 2), blue);
        assert_eq!(color_at(&png, right, bottom), blue);
        // Nothing blue far off the diagonal: the data's bottom-left corner is where the
        // first epoch's and the lowest value's grid lines cross.
        assert_eq!(color_at(&png, left, bottom), GRID);
    }

    #[test]
    fn one_epoch_is_drawn_as_a_dot() {
        let png = plot(&[("loss", &[0.42]), ("val_loss", &[0.40])]);
        let centre_x = (PLOT_LEFT + PLOT_RIGHT) / 2;
        assert_eq!(
            color_at(&png, centre_x, PLOT_TOP + PADDING + 1),
            SERIES_COLORS[0]
        );
        assert_eq!(
            color_at(&png, centre_x, PLOT_BOTTOM - PADDING - 1),
            SERIES_COLORS[1]
        );
    }

    #[test]
    fn nan_values_are_skipped_and_break_the_line() {
        // Epoch 2 is NaN: epochs 1 and 3 are lone dots, epochs 3 and 4 are joined.
        let values = [1.0, f64::NAN, 0.0, 0.0];
        let png = plot(&[("loss", &values)]);
        let blue = SERIES_COLORS[0];
        let (left, right) = (PLOT_LEFT + PADDING, PLOT_RIGHT - PADDING);
        let (top, bottom) = (PLOT_TOP + PADDING, PLOT_BOTTOM - PADDING);
        let x_of = |epoch: i64| left + (epoch - 1) * (right - left) / 3;
        assert_eq!(color_at(&png, x_of(1), top), blue);
        assert_eq!(color_at(&png, x_of(3), bottom), blue);
        assert_eq!(color_at(&png, (x_of(3) + x_of(4)) / 2, bottom), blue);
        // No segment from epoch 1 down to epoch 3.
        assert_ne!(color_at(&png, x_of(2), (top + bottom) / 2), blue);
    }

    #[test]
    fn unusable_input_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.png");
        type Named<'a> = (&'a str, &'a [f64]);
        let cases: [(&[Named], &str); 4] = [
            (&[], "series: expected at least one series, found none"),
            (
                &[("loss", &[0.1]), ("val_loss", &[])],
                "series[1] (\"val_loss\"): expected at least one value, found none",
            ),
            (
                &[("loss", &[f64::NAN, f64::INFINITY])],
                "series: expected at least one finite value, found only NaN or infinite values",
            ),
            (
                &[("loss", &[-f64::MAX, f64::MAX])],
                "series: expected values whose range fits in an f64, \
                 found values from -1.7976931348623157e308 to 1.7976931348623157e308",
            ),
        ];
        for (series, message) in cases {
            let error = plot_history(&path, "t", series).unwrap_err();
            assert_eq!(error.to_string(), message);
        }
        assert!(!path.exists());
    }

    #[test]
    fn epoch_ticks_are_round_numbers_within_the_epochs() {
        let ticks = |count: usize| {
            Axes::fit(&[("loss", &vec![1.0; count])])
                .unwrap()
                .epoch_ticks
        };
        assert_eq!(ticks(1), [1]);
        assert_eq!(ticks(3), [1, 2, 3]);
        assert_eq!(ticks(12), [2, 4, 6, 8, 10, 12]);
        assert_eq!(ticks(50), [10, 20, 30, 40, 50]);
    }
}
