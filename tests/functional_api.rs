//! The functional API: the tutorial's models build with Keras's parameter counts, layers and
//! models compose and share weights, and bad graphs are errors that name the layer.

#[path = "../examples/shared/models.rs"]
mod models;

use rkeras::layers::{Layer, Weight};
use rkeras::prelude::*;

fn count(model: &Model) -> usize {
    model.count_params()
}

#[test]
fn the_users_line_compiles_as_written() -> rkeras::Result<()> {
    let input = Input::new(&[28, 28, 1]);
    let encoder = Model::new(
        input,
        Dense::new(49).activation("relu")(Flatten::new()(input)),
    )?;
    let code = Input::new(&[49]);
    let decoder = Model::new(
        code,
        Reshape::new(&[28, 28, 1])(Dense::new(784).activation("sigmoid")(code)),
    )?;

    let autoencoder = Model::new(input, decoder(encoder(input)))?;

    assert_eq!(autoencoder.count_params(), 77_665);
    assert_eq!(autoencoder.layers().len(), 3, "input, encoder, decoder");
    Ok(())
}

#[test]
fn tutorial_models_have_kerass_parameter_counts() -> rkeras::Result<()> {
    let dense = models::create_dense_ae()?;
    assert_eq!(
        (
            count(&dense.encoder),
            count(&dense.decoder),
            count(&dense.autoencoder)
        ),
        (38_465, 39_200, 77_665)
    );

    let deep = models::create_deep_dense_ae()?;
    assert_eq!(
        (
            count(&deep.encoder),
            count(&deep.decoder),
            count(&deep.autoencoder)
        ),
        (134_750, 135_485, 270_235)
    );

    let conv = models::create_deep_conv_ae()?;
    assert_eq!(
        (
            count(&conv.encoder),
            count(&conv.decoder),
            count(&conv.autoencoder)
        ),
        (24_385, 24_385, 48_770)
    );
    assert_eq!(
        conv.encoder.output_shapes()[0].to_string(),
        "(None, 7, 7, 1)"
    );

    let (noiser, denoiser) = models::create_denoising_model(&dense.autoencoder)?;
    assert_eq!((count(&noiser), count(&denoiser)), (0, 77_665));
    assert_eq!(denoiser.output_shapes()[0].to_string(), "(16, 28, 28, 1)");

    let sparse = models::create_sparse_ae()?;
    assert_eq!(
        (
            count(&sparse.encoder),
            count(&sparse.decoder),
            count(&sparse.autoencoder)
        ),
        (39_776, 40_544, 80_320)
    );
    Ok(())
}

#[test]
fn nested_models_share_weights_with_their_originals() -> rkeras::Result<()> {
    let ae = models::create_dense_ae()?;
    let inner = ae
        .autoencoder
        .get_model("encoder")
        .expect("encoder is a layer of the autoencoder");
    assert!(inner.same_as(&ae.encoder));
    let paths: Vec<String> = ae
        .autoencoder
        .weights()
        .into_iter()
        .map(|w| w.path)
        .collect();
    assert_eq!(
        paths,
        [
            "encoder/dense/kernel",
            "encoder/dense/bias",
            "decoder/dense_1/kernel",
            "decoder/dense_1/bias"
        ]
    );

    // Changing the encoder's kernel changes what the autoencoder computes.
    let x = Tensor::ones((2, 28, 28, 1), DType::F32, &Device::Cpu)?;
    let before = ae.autoencoder.forward(std::slice::from_ref(&x))?.remove(0);
    let kernel = &ae.encoder.weights()[0].var;
    kernel.set(&kernel.as_tensor().affine(0.0, 0.01)?)?;
    let after = ae.autoencoder.forward(&[x])?.remove(0);
    let change = (before - after)?.abs()?.sum_all()?.to_scalar::<f32>()?;
    assert!(change > 0.0);
    Ok(())
}

#[test]
fn a_layer_called_twice_shares_its_weights() -> rkeras::Result<()> {
    let a = Input::new(&[3]);
    let b = Input::new(&[3]);
    let shared = Dense::new(2);
    let model = Model::new([a, b], [shared(a), shared(b)])?;
    assert_eq!(model.weights().len(), 2, "one kernel and one bias");
    assert_eq!(model.layers().len(), 3, "two inputs and one dense layer");
    assert!(!model.is_sequential_like());
    let x = Tensor::new(&[[1f32, 2.0, 3.0]], &Device::Cpu)?;
    let out = model.forward(&[x.clone(), x])?;
    assert_eq!(out[0].to_vec2::<f32>()?, out[1].to_vec2::<f32>()?);
    Ok(())
}

fn set_weights(layer: &dyn Layer, values: &[Tensor]) -> rkeras::Result<()> {
    for (w, v) in layer.weights().iter().zip(values) {
        w.var.set(v)?;
    }
    Ok(())
}

#[test]
fn dense_forward_matches_hand_computation() -> rkeras::Result<()> {
    let input = Input::new(&[2]);
    let dense = Dense::new(2).activation("relu");
    let model = Model::new(input, dense(input))?;
    let dev = Device::Cpu;
    // kernel (in, out) as Keras stores it.
    set_weights(
        &*dense.layer()?,
        &[
            Tensor::new(&[[1f32, -1.0], [2.0, 0.5]], &dev)?,
            Tensor::new(&[0.5f32, -3.0], &dev)?,
        ],
    )?;
    let x = Tensor::new(&[[1f32, 2.0], [-1.0, 0.0]], &dev)?;
    let y = model.forward(&[x])?.remove(0).to_vec2::<f32>()?;
    // [1,2]·K + b = [1+4+0.5, -1+1-3] = [5.5, -3] -> relu [5.5, 0]
    // [-1,0]·K + b = [-1+0.5, 1-3] = [-0.5, -2] -> relu [0, 0]
    assert_eq!(y, vec![vec![5.5, 0.0], vec![0.0, 0.0]]);
    Ok(())
}

#[test]
fn dense_applies_to_the_last_axis_of_nd_inputs() -> rkeras::Result<()> {
    let input = Input::new(&[3, 2]);
    let dense = Dense::new(1).use_bias(false);
    let model = Model::new(input, dense(input))?;
    assert_eq!(model.output_shapes()[0].to_string(), "(None, 3, 1)");
    set_weights(
        &*dense.layer()?,
        &[Tensor::new(&[[1f32], [10.0]], &Device::Cpu)?],
    )?;
    let x = Tensor::new(&[[[1f32, 2.0], [3.0, 4.0], [5.0, 6.0]]], &Device::Cpu)?;
    let y = model
        .forward(&[x])?
        .remove(0)
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(y, vec![21.0, 43.0, 65.0]);
    Ok(())
}

#[test]
fn flatten_and_reshape_keep_row_major_channels_last_order() -> rkeras::Result<()> {
    let input = Input::new(&[2, 2, 3]);
    let flat = Flatten::new()(input);
    let back = Reshape::new(&[3, -1])(flat);
    let model = Model::new(input, [flat, back])?;
    assert_eq!(model.output_shapes()[1].to_string(), "(None, 3, 4)");
    let x = Tensor::arange(0f32, 12.0, &Device::Cpu)?.reshape((1, 2, 2, 3))?;
    let out = model.forward(&[x])?;
    // Keras/numpy order: index = ((h * W) + w) * C + c.
    assert_eq!(
        out[0].to_vec2::<f32>()?,
        vec![(0..12).map(|v| v as f32).collect::<Vec<_>>()]
    );
    assert_eq!(out[1].dims(), &[1, 3, 4]);
    assert_eq!(out[1].flatten_all()?.to_vec1::<f32>()?[5], 5.0);
    Ok(())
}

/// A naive channels-last convolution with TensorFlow's 'same' placement, for checking Conv2D.
fn naive_conv(
    x: &[f32],
    (h, w, c): (usize, usize, usize),
    k: &[f32],
    (kh, kw, f): (usize, usize, usize),
    stride: usize,
    same: bool,
) -> (Vec<f32>, usize, usize) {
    let (oh, ow, top, left) = if same {
        let oh = h.div_ceil(stride);
        let ow = w.div_ceil(stride);
        let ph = ((oh - 1) * stride + kh).saturating_sub(h);
        let pw = ((ow - 1) * stride + kw).saturating_sub(w);
        (oh, ow, ph / 2, pw / 2)
    } else {
        ((h - kh) / stride + 1, (w - kw) / stride + 1, 0, 0)
    };
    let mut out = vec![0f32; oh * ow * f];
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..f {
                let mut acc = 0f32;
                for dy in 0..kh {
                    for dx in 0..kw {
                        let iy = (oy * stride + dy) as isize - top as isize;
                        let ix = (ox * stride + dx) as isize - left as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        for i in 0..c {
                            acc += x[((iy as usize) * w + ix as usize) * c + i]
                                * k[((dy * kw + dx) * c + i) * f + o];
                        }
                    }
                }
                out[(oy * ow + ox) * f + o] = acc;
            }
        }
    }
    (out, oh, ow)
}

#[test]
fn conv2d_matches_a_naive_convolution() -> rkeras::Result<()> {
    let dev = Device::Cpu;
    let (h, w, c, f) = (5, 6, 2, 3);
    for &(kh, kw, stride, same) in &[
        (3, 3, 1, true),
        (2, 2, 1, true),
        (3, 2, 2, true),
        (3, 3, 1, false),
        (2, 3, 2, false),
    ] {
        let input = Input::new(&[h, w, c]);
        let conv = Conv2D::new(f, (kh, kw))
            .strides(stride)
            .padding(if same { "same" } else { "valid" })
            .use_bias(false);
        let model = Model::new(input, conv(input))?;
        let kernel: Vec<f32> = (0..kh * kw * c * f)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        set_weights(
            &*conv.layer()?,
            &[Tensor::from_vec(kernel.clone(), (kh, kw, c, f), &dev)?],
        )?;
        let x: Vec<f32> = (0..h * w * c)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) / 3.0)
            .collect();
        let (expected, oh, ow) = naive_conv(&x, (h, w, c), &kernel, (kh, kw, f), stride, same);
        let y = model
            .forward(&[Tensor::from_vec(x, (1, h, w, c), &dev)?])?
            .remove(0);
        assert_eq!(
            y.dims(),
            &[1, oh, ow, f],
            "kernel {kh}x{kw} stride {stride} same {same}"
        );
        assert_eq!(
            model.output_shapes()[0].to_string(),
            format!("(None, {oh}, {ow}, {f})")
        );
        for (a, b) in y.flatten_all()?.to_vec1::<f32>()?.iter().zip(&expected) {
            assert!(
                (a - b).abs() < 1e-4,
                "kernel {kh}x{kw} stride {stride} same {same}: {a} vs {b}"
            );
        }
    }
    Ok(())
}

#[test]
fn max_pooling_same_padding_on_odd_sizes_and_upsampling() -> rkeras::Result<()> {
    let input = Input::new(&[3, 3, 1]);
    let pooled = MaxPooling2D::new((2, 2)).padding("same")(input);
    let up = UpSampling2D::new((2, 2))(pooled);
    let model = Model::new(input, [pooled, up])?;
    assert_eq!(model.output_shapes()[0].to_string(), "(None, 2, 2, 1)");
    let x = Tensor::new(
        &[-1f32, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0],
        &Device::Cpu,
    )?
    .reshape((1, 3, 3, 1))?;
    let out = model.forward(&[x])?;
    // Windows {-1,-2,-4,-5}, {-3,-6}, {-7,-8}, {-9}: padded cells never win, even over negatives.
    assert_eq!(
        out[0].flatten_all()?.to_vec1::<f32>()?,
        vec![-1.0, -3.0, -7.0, -9.0]
    );
    assert_eq!(
        out[1].flatten_all()?.to_vec1::<f32>()?,
        vec![
            -1.0, -1.0, -3.0, -3.0, -1.0, -1.0, -3.0, -3.0, -7.0, -7.0, -9.0, -9.0, -7.0, -7.0,
            -9.0, -9.0
        ]
    );
    Ok(())
}

fn build_error(result: rkeras::layers::Result<Model>) -> String {
    match result {
        Ok(model) => panic!("model '{}' should not build", model.name()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_graphs_are_errors_naming_the_layer_and_shapes() {
    let input = Input::new(&[28, 28, 1]);
    let msg = build_error(Model::new(
        input,
        Reshape::new(&[27, 28, 1]).name("bad_reshape")(Flatten::new()(input)),
    ));
    assert!(
        msg.contains("bad_reshape") && msg.contains("(None, 784)") && msg.contains("[27, 28, 1]"),
        "{msg}"
    );

    let code = Input::new(&[49]);
    let decoder_dense = Dense::new(784).name("decoder_dense");
    let _ = decoder_dense(code);
    let msg = build_error(Model::new(input, decoder_dense(Flatten::new()(input))));
    assert!(
        msg.contains("decoder_dense") && msg.contains("49") && msg.contains("(None, 784)"),
        "{msg}"
    );

    let other = Input::named("other_input", &[3]);
    let msg = build_error(Model::new(input, Dense::new(2)(other)));
    assert!(msg.contains("other_input"), "{msg}");

    let msg = build_error(Model::new(
        input,
        Dense::new(2).activation("rleu").name("typo")(Flatten::new()(input)),
    ));
    assert!(msg.contains("typo") && msg.contains("rleu"), "{msg}");

    let msg = build_error(Model::new(
        input,
        Conv2D::new(4, 3).name("flat_conv")(Flatten::new()(input)),
    ));
    assert!(
        msg.contains("flat_conv") && msg.contains("(None, 784)"),
        "{msg}"
    );
}

#[test]
fn calling_a_model_on_the_wrong_shape_is_an_error_naming_it() -> rkeras::Result<()> {
    let ae = models::create_dense_ae()?;
    let wrong = Input::new(&[28, 27, 1]);
    let encoder = &ae.encoder;
    let msg = build_error(Model::new(wrong, encoder(wrong)));
    assert!(msg.contains("encoder"), "{msg}");
    let err = ae
        .autoencoder
        .forward(&[Tensor::zeros((2, 28, 27, 1), DType::F32, &Device::Cpu)?])
        .unwrap_err();
    assert!(err.to_string().contains("input_layer"), "{err}");
    Ok(())
}

#[test]
fn default_names_follow_keras_and_layers_are_found_by_name() -> rkeras::Result<()> {
    rkeras::utils::clear_session();
    let ae = models::create_dense_ae()?;
    let names: Vec<String> = ae
        .encoder
        .layers()
        .iter()
        .map(|l| l.name().to_string())
        .collect();
    assert_eq!(names, ["input_layer", "flatten", "dense"]);
    let names: Vec<String> = ae
        .decoder
        .layers()
        .iter()
        .map(|l| l.name().to_string())
        .collect();
    assert_eq!(names, ["input_layer_1", "dense_1", "reshape"]);
    assert_eq!(
        ae.autoencoder.get_layer("decoder").map(|l| l.class_name()),
        Some("Functional")
    );
    assert!(ae.autoencoder.get_layer("nope").is_none());
    assert!(
        Model::new(Input::new(&[1]), Dense::new(1)(Input::new(&[1]))).is_err(),
        "an output from another input is a disconnected graph"
    );
    Ok(())
}

#[test]
fn trainable_flags_mark_weights_per_layer_and_per_model() -> rkeras::Result<()> {
    let ae = models::create_dense_ae()?;
    ae.encoder.set_trainable(false);
    let trainable: Vec<String> = ae
        .autoencoder
        .trainable_weights()
        .into_iter()
        .map(|w| w.path)
        .collect();
    assert_eq!(
        trainable,
        ["decoder/dense_1/kernel", "decoder/dense_1/bias"]
    );
    assert_eq!(
        ae.autoencoder
            .non_trainable_weights()
            .iter()
            .map(Weight::count)
            .sum::<usize>(),
        38_465
    );
    ae.encoder.set_trainable(true);
    ae.decoder
        .get_layer("dense_1")
        .expect("dense_1")
        .set_trainable(false);
    assert_eq!(ae.autoencoder.trainable_weights().len(), 2);
    Ok(())
}

#[test]
fn lists_of_tensors_go_into_calls_and_come_out_of_them() -> rkeras::Result<()> {
    // A two-input, two-output model, called like a layer on a list, returns a list.
    let (a, b) = (Input::new(&[3]), Input::new(&[2]));
    let (ha, hb) = (Dense::new(4)(a), Dense::new(5)(b));
    let inner = Model::named("two_by_two", [a, b], [ha, hb])?;
    let (x, y) = (Input::new(&[3]), Input::new(&[2]));
    let outputs = inner([x, y].into());
    let [first, second] = outputs.unpack();
    assert_eq!(first.shape()?.to_string(), "(None, 4)");
    assert_eq!(second.shape()?.to_string(), "(None, 5)");
    assert_eq!(outputs.get(1).shape()?.to_string(), "(None, 5)");
    let err = outputs.shape().unwrap_err().to_string();
    assert!(err.contains("list of 2 tensors"), "{err}");
    let [one, two, three] = outputs.unpack();
    assert!(one.shape().is_err() && two.shape().is_err() && three.shape().is_err());
    // The list is the model's outputs as it is.
    let outer = Model::new([x, y], outputs)?;
    assert_eq!(outer.output_shapes().len(), 2);
    assert_eq!(outer.count_params(), 3 * 4 + 4 + 2 * 5 + 5);
    // A one-input layer on a list of two is an error naming it.
    let err = Dense::new(1).name("single")([x, y].into())
        .shape()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'single'") && err.contains("exactly one input"),
        "{err}"
    );
    Ok(())
}
