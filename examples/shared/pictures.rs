//! Pictures the examples write: digit grids from image tensors, and the loss curve.
#![allow(dead_code)]

use std::path::Path;

use rkeras::prelude::*;

/// Writes `rows` (each a tensor of images shaped `(n, 28, 28, 1)` or `(n, 784)`, values in
/// [0, 1]) as one PNG grid, one row per tensor: the tutorial's `plot_digits`.
pub fn plot_digits(path: &Path, rows: &[&Tensor]) -> rkeras::Result<()> {
    let pixels: Vec<Vec<f32>> = rows
        .iter()
        .map(|t| t.flatten_all()?.to_vec1::<f32>())
        .collect::<Result<_, _>>()?;
    let slices: Vec<&[f32]> = pixels.iter().map(Vec::as_slice).collect();
    rkeras::plot::plot_digits(path, &slices, (28, 28))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Writes the training and validation loss per epoch as a PNG.
pub fn plot_loss(path: &Path, title: &str, history: &History) -> rkeras::Result<()> {
    let mut series: Vec<(&str, &[f64])> = vec![("loss", history.loss())];
    if !history.val_loss().is_empty() {
        series.push(("val_loss", history.val_loss()));
    }
    rkeras::plot::plot_history(path, title, &series)?;
    println!("wrote {}", path.display());
    Ok(())
}
