//! Bounds that keep a hostile architecture from making the loader allocate huge weights or
//! overflow shape arithmetic inside the layers: every size a file gives is checked before a
//! layer is made or built.

use rkeras_layers::convolutional::conv2d::Conv2DConfig;
use rkeras_layers::convolutional::conv2d::Conv2DLayer;
use rkeras_layers::convolutional::options::Size2;
use rkeras_layers::core::dense::DenseConfig;
use rkeras_layers::pooling::max_pooling2d::MaxPooling2DConfig;
use rkeras_layers::reshaping::reshape::ReshapeConfig;
use rkeras_layers::reshaping::up_sampling2d::UpSampling2DConfig;
use rkeras_layers::{DenseLayer, Layer, SymbolicShape};

/// The most values one sample of any tensor in a loaded graph may hold (2³²).
pub const MAX_SAMPLE_ELEMENTS: u64 = 1 << 32;

/// The largest window, stride, dilation or up-sampling factor a loaded layer may have (2¹⁶).
pub const MAX_WINDOW: usize = 1 << 16;

/// The number of values per sample of `dims` (batch excluded), if it stays within
/// [`MAX_SAMPLE_ELEMENTS`].
fn bounded_product(dims: impl IntoIterator<Item = u64>) -> Option<u64> {
    dims.into_iter()
        .try_fold(1u64, u64::checked_mul)
        .filter(|&n| n <= MAX_SAMPLE_ELEMENTS)
}

/// Checks a symbolic shape: every known dimension after the batch multiplies to at most
/// [`MAX_SAMPLE_ELEMENTS`], and a fixed batch is no larger.
pub fn check_shape(shape: &SymbolicShape) -> Result<(), String> {
    let features = shape.dims().iter().skip(1).flatten().map(|&d| d as u64);
    let batch_ok = shape
        .batch()
        .is_none_or(|b| b as u64 <= MAX_SAMPLE_ELEMENTS);
    match bounded_product(features) {
        Some(_) if batch_ok => Ok(()),
        _ => Err(format!(
            "shape {shape} holds more than {MAX_SAMPLE_ELEMENTS} values per sample"
        )),
    }
}

/// Checks an input layer's shape.
pub fn check_input_shape(shape: &SymbolicShape) -> Result<(), String> {
    check_shape(shape)
}

/// Checks a Lambda's output shape (without the batch).
pub fn check_lambda_output(dims: &[usize]) -> Result<(), String> {
    bounded_product(dims.iter().map(|&d| d as u64))
        .map(|_| ())
        .ok_or_else(|| {
            format!("output_shape {dims:?} holds more than {MAX_SAMPLE_ELEMENTS} values")
        })
}

/// Checks `Dense` options.
pub fn check_dense(config: &DenseConfig) -> Result<(), String> {
    if config.units as u64 > MAX_SAMPLE_ELEMENTS {
        return Err(format!(
            "units {} exceeds the limit of {MAX_SAMPLE_ELEMENTS}",
            config.units
        ));
    }
    Ok(())
}

/// Checks `Reshape` options (the layer itself rejects zeros and more than one -1).
pub fn check_reshape(config: &ReshapeConfig) -> Result<(), String> {
    let known = config
        .target_shape
        .iter()
        .filter(|&&d| d > 0)
        .map(|&d| d as u64);
    bounded_product(known).map(|_| ()).ok_or_else(|| {
        format!(
            "target_shape {:?} holds more than {MAX_SAMPLE_ELEMENTS} values",
            config.target_shape
        )
    })
}

/// How many weight values `layer` will create when first built on `inputs` (0 for layers
/// without weights or already built; `None` when that number overflows). Custom layers are
/// trusted: they come from code the caller registered.
pub fn new_weight_elements(layer: &dyn Layer, inputs: &[SymbolicShape]) -> Option<u64> {
    if !layer.weights().is_empty() {
        return Some(0);
    }
    let input_last = || inputs.first().and_then(SymbolicShape::last).unwrap_or(0) as u64;
    let any = layer.as_any();
    if let Some(dense) = any.downcast_ref::<DenseLayer>() {
        let units = dense.dense_config().units as u64;
        return input_last().checked_mul(units)?.checked_add(units);
    }
    if let Some(conv) = any.downcast_ref::<Conv2DLayer>() {
        let c = conv.conv_config();
        let filters = c.filters as u64;
        let window = (c.kernel_size.0 as u64).checked_mul(c.kernel_size.1 as u64)?;
        return window
            .checked_mul(input_last())?
            .checked_mul(filters)?
            .checked_add(filters);
    }
    Some(0)
}

fn check_window(what: &str, size: Size2) -> Result<(), String> {
    if size.0 > MAX_WINDOW || size.1 > MAX_WINDOW {
        return Err(format!("{what} {size:?} exceeds the limit of {MAX_WINDOW}"));
    }
    Ok(())
}

/// Checks `Conv2D` options.
pub fn check_conv2d(c: &Conv2DConfig) -> Result<(), String> {
    if c.filters as u64 > MAX_SAMPLE_ELEMENTS {
        return Err(format!(
            "filters {} exceeds the limit of {MAX_SAMPLE_ELEMENTS}",
            c.filters
        ));
    }
    check_window("kernel_size", c.kernel_size)?;
    check_window("strides", c.strides)?;
    check_window("dilation_rate", c.dilation_rate)
}

/// Checks `MaxPooling2D` options.
pub fn check_max_pooling2d(c: &MaxPooling2DConfig) -> Result<(), String> {
    check_window("pool_size", c.pool_size)?;
    c.strides.map_or(Ok(()), |s| check_window("strides", s))
}

/// Checks `UpSampling2D` options.
pub fn check_up_sampling2d(c: &UpSampling2DConfig) -> Result<(), String> {
    check_window("size", c.size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkeras_layers::builder::LayerConfig;

    #[test]
    fn shapes_are_bounded_per_sample() {
        assert!(check_shape(&SymbolicShape::batched(None, &[1 << 16, 1 << 16])).is_ok());
        assert!(check_shape(&SymbolicShape::batched(None, &[1 << 16, (1 << 16) + 1])).is_err());
        assert!(check_shape(&SymbolicShape::batched(None, &[usize::MAX, usize::MAX])).is_err());
        assert!(check_shape(&SymbolicShape(vec![Some(usize::MAX), Some(2)])).is_err());
        assert!(check_shape(&SymbolicShape(vec![None, None, Some(3)])).is_ok());
    }

    #[test]
    fn reshape_and_dense_sizes_are_bounded() {
        let reshape = |t: &[i64]| ReshapeConfig {
            target_shape: t.to_vec(),
        };
        assert!(check_reshape(&reshape(&[28, 28, -1])).is_ok());
        assert!(check_reshape(&reshape(&[1 << 40, 1 << 40])).is_err());
        assert!(check_dense(&DenseConfig::new(10)).is_ok());
        assert!(check_dense(&DenseConfig::new(usize::MAX)).is_err());
        assert!(check_lambda_output(&[usize::MAX, 2]).is_err());
    }

    #[test]
    fn windows_are_bounded() {
        use rkeras_layers::{Conv2D, MaxPooling2D, UpSampling2D};
        let conv = |k: usize| Conv2D::new(8, (3, k)).config().clone();
        assert!(check_conv2d(&conv(3)).is_ok());
        assert!(check_conv2d(&conv(MAX_WINDOW + 1)).is_err());
        let pool = MaxPooling2D::new((2, 2)).strides((1, usize::MAX));
        assert!(check_max_pooling2d(pool.config()).is_err());
        assert!(check_max_pooling2d(MaxPooling2D::new((2, 2)).config()).is_ok());
        assert!(check_up_sampling2d(UpSampling2D::new((1 << 20, 2)).config()).is_err());
    }

    #[test]
    fn counts_the_weights_a_conv_layer_will_make() {
        let conv = rkeras_layers::Conv2D::new(4, (3, 2)).config().clone();
        let layer = conv.make("c".into(), true).unwrap();
        let input = SymbolicShape::batched(None, &[8, 8, 5]);
        assert_eq!(
            new_weight_elements(&*layer, &[input]),
            Some(3 * 2 * 5 * 4 + 4)
        );
    }

    #[test]
    fn counts_the_weights_a_dense_layer_will_make() {
        let layer = DenseConfig::new(5).make("d".into(), true).unwrap();
        let input = SymbolicShape::batched(None, &[7]);
        assert_eq!(
            new_weight_elements(&*layer, std::slice::from_ref(&input)),
            Some(7 * 5 + 5)
        );
        layer.build(std::slice::from_ref(&input)).unwrap();
        assert_eq!(new_weight_elements(&*layer, &[input]), Some(0));
        let huge = DenseConfig::new(1 << 32).make("h".into(), true).unwrap();
        let wide = SymbolicShape::batched(None, &[usize::MAX]);
        assert_eq!(new_weight_elements(&*huge, &[wide]), None);
    }
}
