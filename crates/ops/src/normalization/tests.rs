//! The normalization kernels against naive f64 loops, and against candle's autograd over the
//! composed forms.

use candle_core::{DType, Device, Tensor, Var};

use super::*;
use crate::test_util::{assert_close, gradients_against, random_tensor, values, Lcg};

const EPSILON: f64 = 1e-3;

/// Shapes `(rows, cols)` from tiny to large enough to be split over threads.
const SHAPES: [(usize, usize); 6] = [(1, 1), (2, 3), (7, 5), (1000, 49), (3000, 32), (6272, 64)];

/// A `(rows, cols)` matrix of `rng`'s values, column `c` scaled by `1 + c % 3` and offset by
/// `c % 5 - 2`, so that columns differ in mean and spread.
fn matrix_data(rng: &mut Lcg, rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| {
            let c = i % cols;
            rng.next() * (1 + c % 3) as f32 + (c % 5) as f32 - 2.0
        })
        .collect()
}

fn tensor(data: &[f32], dims: &[usize]) -> Tensor {
    Tensor::from_slice(data, dims, &Device::Cpu).unwrap()
}

/// The mean and biased variance of each column, in f64.
fn naive_moments(x: &[f32], cols: usize) -> (Vec<f64>, Vec<f64>) {
    let rows = x.len() / cols;
    let column = |c: usize| (0..rows).map(move |r| x[r * cols + c] as f64);
    let mean: Vec<f64> = (0..cols)
        .map(|c| column(c).sum::<f64>() / rows as f64)
        .collect();
    let variance = (0..cols)
        .map(|c| column(c).map(|v| (v - mean[c]).powi(2)).sum::<f64>() / rows as f64)
        .collect();
    (mean, variance)
}

#[test]
fn batch_moments_match_naive_loops() -> candle_core::Result<()> {
    let mut rng = Lcg::new(1);
    for (rows, cols) in SHAPES {
        let data = matrix_data(&mut rng, rows, cols);
        let (mean, variance) = batch_moments(&tensor(&data, &[rows, cols]))?;
        let (want_mean, want_variance) = naive_moments(&data, cols);
        let what = format!("{rows}x{cols}");
        assert_close(&format!("{what} mean"), &values(&mean), &want_mean, 1e-6);
        assert_close(
            &format!("{what} variance"),
            &values(&variance),
            &want_variance,
            1e-5,
        );
    }
    Ok(())
}

#[test]
fn batch_moments_stay_accurate_far_from_zero() -> candle_core::Result<()> {
    // A column at 1000 ± 0.01: E[x²] - E[x]² in f32 would lose every digit of the variance.
    let mut rng = Lcg::new(2);
    let data: Vec<f32> = (0..50_000).map(|_| 1000.0 + 0.01 * rng.next()).collect();
    let (mean, variance) = batch_moments(&tensor(&data, &[50_000, 1]))?;
    let (want_mean, want_variance) = naive_moments(&data, 1);
    assert_close("mean", &values(&mean), &want_mean, 1e-6);
    let got = values(&variance)[0] as f64;
    assert!(
        (got - want_variance[0]).abs() < 1e-3 * want_variance[0],
        "{got} vs {want_variance:?}"
    );
    Ok(())
}

/// `y = x · scale + shift` and, for the gradient `dy`, the naive input gradient and column
/// sums of batch normalization with these statistics (`from_batch`: the batch's own).
fn naive_batch_backward(
    x: &[f32],
    dy: &[f32],
    (mean, inv_std, scale): (&[f64], &[f64], &[f64]),
    cols: usize,
    from_batch: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let rows = x.len() / cols;
    let n = rows as f64;
    let xhat = |i: usize| (x[i] as f64 - mean[i % cols]) * inv_std[i % cols];
    let (mut sum_dy, mut sum_dy_xhat) = (vec![0.0; cols], vec![0.0; cols]);
    for i in 0..x.len() {
        sum_dy[i % cols] += dy[i] as f64;
        sum_dy_xhat[i % cols] += dy[i] as f64 * xhat(i);
    }
    let dx = (0..x.len())
        .map(|i| {
            let c = i % cols;
            if from_batch {
                scale[c] * (dy[i] as f64 - sum_dy[c] / n - xhat(i) * sum_dy_xhat[c] / n)
            } else {
                scale[c] * dy[i] as f64
            }
        })
        .collect();
    (dx, sum_dy, sum_dy_xhat)
}

#[test]
fn scale_shift_and_the_backward_pass_match_naive_loops() -> candle_core::Result<()> {
    let mut rng = Lcg::new(3);
    for (rows, cols) in SHAPES {
        let data = matrix_data(&mut rng, rows, cols);
        let dy = rng.vec(rows * cols);
        let gamma: Vec<f64> = (0..cols).map(|_| rng.next() as f64 + 1.5).collect();
        let (mean, variance) = naive_moments(&data, cols);
        let inv_std: Vec<f64> = variance
            .iter()
            .map(|v| 1.0 / (v + EPSILON).sqrt())
            .collect();
        let scale: Vec<f64> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
        let shift: Vec<f64> = (0..cols).map(|c| 0.5 - mean[c] * scale[c]).collect();
        let as_tensor = |v: &[f64]| {
            let v: Vec<f32> = v.iter().map(|&v| v as f32).collect();
            tensor(&v, &[cols])
        };
        let x = tensor(&data, &[rows, cols]);
        let y = scale_shift(&x, &as_tensor(&scale), &as_tensor(&shift))?;
        let want_y: Vec<f64> = (0..rows * cols)
            .map(|i| data[i] as f64 * scale[i % cols] + shift[i % cols])
            .collect();
        let what = format!("{rows}x{cols}");
        assert_close(&format!("{what} y"), &values(&y), &want_y, 1e-5);
        for from_batch in [true, false] {
            let (mean_t, inv_t, scale_t) =
                (as_tensor(&mean), as_tensor(&inv_std), as_tensor(&scale));
            let stats = BatchNormStatistics {
                mean: &mean_t,
                inv_std: &inv_t,
                scale: &scale_t,
                from_batch,
                part: None,
            };
            let grads =
                batch_normalization_backward(&x, &tensor(&dy, &[rows, cols]), &stats, true)?;
            let (want_dx, want_sum, want_sum_xhat) =
                naive_batch_backward(&data, &dy, (&mean, &inv_std, &scale), cols, from_batch);
            let what = format!("{what} from_batch={from_batch}");
            assert_close(
                &format!("{what} dx"),
                &values(&grads.x.unwrap()),
                &want_dx,
                1e-4,
            );
            // Column sums of up to 6272 terms.
            let tolerance = 1e-6 * rows as f64;
            assert_close(
                &format!("{what} sum dy"),
                &values(&grads.sum_dy),
                &want_sum,
                tolerance,
            );
            assert_close(
                &format!("{what} sum dy·x̂"),
                &values(&grads.sum_dy_xhat),
                &want_sum_xhat,
                tolerance,
            );
            let sums_only =
                batch_normalization_backward(&x, &tensor(&dy, &[rows, cols]), &stats, false)?;
            assert!(sums_only.x.is_none());
            assert_eq!(values(&sums_only.sum_dy), values(&grads.sum_dy));
        }
    }
    Ok(())
}

#[test]
fn the_batch_backward_is_the_gradient_of_the_composed_form() -> candle_core::Result<()> {
    // candle's autograd through mean, variance and the affine map, against the kernel's formula.
    let mut rng = Lcg::new(4);
    let (rows, cols) = (40, 6);
    let x = Var::from_tensor(&tensor(&matrix_data(&mut rng, rows, cols), &[rows, cols]))?;
    let gamma = Var::from_tensor(&random_tensor(&mut rng, &[cols]))?;
    let upstream = random_tensor(&mut rng, &[rows, cols]);
    let (mean, variance) = batch_moments(x.as_tensor())?;
    let inv_std = (variance + EPSILON)?.sqrt()?.recip()?;
    let scale = (gamma.as_tensor() * &inv_std)?;
    let shift = (mean.neg()? * &scale)?;
    let y = scale_shift(x.as_tensor(), &scale, &shift)?;
    let grads = gradients_against(&y, &upstream);
    let detached = |t: &Tensor| t.detach();
    let (mean, inv_std, scale) = (detached(&mean), detached(&inv_std), detached(&scale));
    let stats = BatchNormStatistics {
        mean: &mean,
        inv_std: &inv_std,
        scale: &scale,
        from_batch: true,
        part: None,
    };
    let kernel = batch_normalization_backward(&x.as_tensor().detach(), &upstream, &stats, true)?;
    let want = |t: &Tensor| values(t).iter().map(|&v| v as f64).collect::<Vec<_>>();
    let autograd_x = grads.get(x.as_tensor()).expect("x gradient");
    assert_close("dx", &values(&kernel.x.unwrap()), &want(autograd_x), 1e-4);
    let autograd_gamma = grads.get(gamma.as_tensor()).expect("gamma gradient");
    assert_close(
        "dgamma",
        &values(&kernel.sum_dy_xhat),
        &want(autograd_gamma),
        1e-4,
    );
    Ok(())
}

#[test]
fn parts_of_a_batch_meet_for_its_moments_and_its_input_gradient() -> candle_core::Result<()> {
    // 50 rows in parts of 30 and 20 on two threads, against the naive moments of all 50 rows
    // and the whole batch's backward. Each part's output gradient is its own loss's, the
    // batch's divided by the part's share, and so is the input gradient it returns.
    let mut rng = Lcg::new(9);
    let (rows, cols) = (50, 6);
    let data = matrix_data(&mut rng, rows, cols);
    let upstream = random_tensor(&mut rng, &[rows, cols]);
    let gamma = random_tensor(&mut rng, &[cols]);
    let (mean, variance) = naive_moments(&data, cols);
    let x = tensor(&data, &[rows, cols]);
    let ranges = [0..30, 30..50];
    let shares: Vec<f64> = ranges
        .iter()
        .map(|r| r.len() as f64 / rows as f64)
        .collect();
    let parts = ranges
        .iter()
        .cloned()
        .zip(BatchPart::all(&shares))
        .collect();
    let results = crate::on_own_threads(parts, |(range, part)| {
        let own = x.narrow(0, range.start, range.len())?;
        let (part_mean, part_variance) = batch_moments_across_parts(&own, &part)?;
        let inv_std = (&part_variance + EPSILON)?.sqrt()?.recip()?;
        let scale = (&gamma * &inv_std)?;
        let stats = BatchNormStatistics {
            mean: &part_mean,
            inv_std: &inv_std,
            scale: &scale,
            from_batch: true,
            part: Some(&part),
        };
        let dy = (upstream.narrow(0, range.start, range.len())? / part.share())?;
        let grads = batch_normalization_backward(&own, &dy, &stats, true)?;
        let dx = grads.x.expect("asked for") * part.share();
        Ok::<_, candle_core::Error>((part_mean, part_variance, dx?))
    });
    let narrow = |v: &[f64]| {
        Tensor::new(
            v.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            &Device::Cpu,
        )
    };
    let (m, v) = (narrow(&mean)?, narrow(&variance)?);
    let inv_std = (v + EPSILON)?.sqrt()?.recip()?;
    let scale = (&gamma * &inv_std)?;
    let stats = BatchNormStatistics {
        mean: &m,
        inv_std: &inv_std,
        scale: &scale,
        from_batch: true,
        part: None,
    };
    let whole = batch_normalization_backward(&x, &upstream, &stats, true)?;
    let whole_dx = values(&whole.x.expect("asked for"));
    let mut part_dx = Vec::new();
    for result in results {
        let (part_mean, part_variance, dx) = result?;
        assert_close("mean", &values(&part_mean), &mean, 1e-5);
        assert_close("variance", &values(&part_variance), &variance, 1e-5);
        part_dx.extend(values(&dx));
    }
    let want: Vec<f64> = whole_dx.iter().map(|&v| v as f64).collect();
    assert_close("dx", &part_dx, &want, 1e-4);
    Ok(())
}

/// Layer normalization of each row in f64: the output and each row's mean and inverse
/// deviation; `gamma`, `beta` empty for none.
fn naive_layer_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    cols: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut y, mut means, mut invs) = (Vec::new(), Vec::new(), Vec::new());
    for row in x.chunks(cols) {
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
        let variance = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cols as f64;
        let inv = 1.0 / (variance + EPSILON).sqrt();
        for (c, &v) in row.iter().enumerate() {
            let g = gamma.get(c).map_or(1.0, |&g| g as f64);
            let b = beta.get(c).map_or(0.0, |&b| b as f64);
            y.push((v as f64 - mean) * inv * g + b);
        }
        means.push(mean);
        invs.push(inv);
    }
    (y, means, invs)
}

/// The gradients of `Σ layer_normalization(x) · dy` in f64: input, gamma, beta.
fn naive_layer_backward(
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    cols: usize,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (_, means, invs) = naive_layer_forward(x, &[], &[], cols);
    let n = cols as f64;
    let (mut dx, mut dgamma, mut dbeta) = (Vec::new(), vec![0.0; cols], vec![0.0; cols]);
    for (r, (row, dy_row)) in x.chunks(cols).zip(dy.chunks(cols)).enumerate() {
        let xhat: Vec<f64> = row
            .iter()
            .map(|&v| (v as f64 - means[r]) * invs[r])
            .collect();
        let g: Vec<f64> = (0..cols)
            .map(|c| dy_row[c] as f64 * gamma.get(c).map_or(1.0, |&g| g as f64))
            .collect();
        let mean_g = g.iter().sum::<f64>() / n;
        let mean_g_xhat = g.iter().zip(&xhat).map(|(g, h)| g * h).sum::<f64>() / n;
        for c in 0..cols {
            dx.push(invs[r] * (g[c] - mean_g - xhat[c] * mean_g_xhat));
            dgamma[c] += dy_row[c] as f64 * xhat[c];
            dbeta[c] += dy_row[c] as f64;
        }
    }
    (dx, dgamma, dbeta)
}

#[test]
fn layer_normalization_matches_naive_loops() -> candle_core::Result<()> {
    let mut rng = Lcg::new(5);
    for (rows, cols) in SHAPES.iter().map(|&(r, c)| (c, r)).chain(SHAPES) {
        let data = matrix_data(&mut rng, rows, cols);
        let (gamma, beta) = (rng.vec(cols), rng.vec(cols));
        let dy = rng.vec(rows * cols);
        let x = tensor(&data, &[rows, cols]);
        for with_affine in [true, false] {
            let (g, b) = if with_affine {
                (&gamma[..], &beta[..])
            } else {
                (&[][..], &[][..])
            };
            let (g_t, b_t) = (
                with_affine.then(|| tensor(g, &[cols])),
                with_affine.then(|| tensor(b, &[cols])),
            );
            let out = layer_normalization(&x, g_t.as_ref(), b_t.as_ref(), EPSILON)?;
            let (want_y, want_mean, want_inv) = naive_layer_forward(&data, g, b, cols);
            let what = format!("{rows}x{cols} affine={with_affine}");
            assert_close(&format!("{what} y"), &values(&out.y), &want_y, 1e-4);
            assert_close(
                &format!("{what} mean"),
                &values(&out.mean),
                &want_mean,
                1e-5,
            );
            assert_close(
                &format!("{what} inv_std"),
                &values(&out.inv_std),
                &want_inv,
                1e-4,
            );
            let grads = layer_normalization_backward(
                &x,
                &tensor(&dy, &[rows, cols]),
                (&out.mean, &out.inv_std),
                g_t.as_ref(),
                true,
            )?;
            let (want_dx, want_dgamma, want_dbeta) = naive_layer_backward(&data, &dy, g, cols);
            assert_close(
                &format!("{what} dx"),
                &values(&grads.x.unwrap()),
                &want_dx,
                1e-4,
            );
            let tolerance = 1e-6 * rows as f64;
            assert_close(
                &format!("{what} dgamma"),
                &values(&grads.gamma),
                &want_dgamma,
                tolerance,
            );
            assert_close(
                &format!("{what} dbeta"),
                &values(&grads.beta),
                &want_dbeta,
                tolerance,
            );
            let sums_only = layer_normalization_backward(
                &x,
                &tensor(&dy, &[rows, cols]),
                (&out.mean, &out.inv_std),
                g_t.as_ref(),
                false,
            )?;
            assert!(sums_only.x.is_none());
            assert_close(
                &format!("{what} dbeta alone"),
                &values(&sums_only.beta),
                &want_dbeta,
                tolerance,
            );
        }
    }
    Ok(())
}

#[test]
fn tracked_arguments_take_the_composed_form_for_autograd() -> candle_core::Result<()> {
    let mut rng = Lcg::new(6);
    let (rows, cols) = (5, 7);
    let data = matrix_data(&mut rng, rows, cols);
    let x = Var::from_tensor(&tensor(&data, &[rows, cols]))?;
    let gamma = Var::from_tensor(&random_tensor(&mut rng, &[cols]))?;
    let beta = Var::from_tensor(&random_tensor(&mut rng, &[cols]))?;
    let upstream = random_tensor(&mut rng, &[rows, cols]);
    let out = layer_normalization(
        x.as_tensor(),
        Some(gamma.as_tensor()),
        Some(beta.as_tensor()),
        EPSILON,
    )?;
    let grads = gradients_against(&out.y, &upstream);
    let (want_dx, want_dgamma, want_dbeta) =
        naive_layer_backward(&data, &values(&upstream), &values(gamma.as_tensor()), cols);
    assert_close(
        "dx",
        &values(grads.get(x.as_tensor()).unwrap()),
        &want_dx,
        1e-4,
    );
    assert_close(
        "dgamma",
        &values(grads.get(gamma.as_tensor()).unwrap()),
        &want_dgamma,
        1e-4,
    );
    assert_close(
        "dbeta",
        &values(grads.get(beta.as_tensor()).unwrap()),
        &want_dbeta,
        1e-4,
    );
    Ok(())
}

#[test]
fn the_composed_forms_agree_with_the_kernels() -> candle_core::Result<()> {
    let mut rng = Lcg::new(7);
    let (rows, cols) = (300, 24);
    let x = tensor(&matrix_data(&mut rng, rows, cols), &[rows, cols]);
    let (gamma, beta) = (
        random_tensor(&mut rng, &[cols]),
        random_tensor(&mut rng, &[cols]),
    );
    let as_f64 = |t: &Tensor| values(t).iter().map(|&v| v as f64).collect::<Vec<_>>();
    let kernel = (
        batch_moments(&x)?,
        scale_shift(&x, &gamma, &beta)?,
        layer_normalization(&x, Some(&gamma), Some(&beta), EPSILON)?,
    );
    let composed = crate::with_composed_ops(|| {
        Ok::<_, candle_core::Error>((
            batch_moments(&x)?,
            scale_shift(&x, &gamma, &beta)?,
            layer_normalization(&x, Some(&gamma), Some(&beta), EPSILON)?,
        ))
    })?;
    assert_close("mean", &values(&kernel.0 .0), &as_f64(&composed.0 .0), 1e-5);
    assert_close(
        "variance",
        &values(&kernel.0 .1),
        &as_f64(&composed.0 .1),
        1e-5,
    );
    assert_close(
        "scale_shift",
        &values(&kernel.1),
        &as_f64(&composed.1),
        1e-6,
    );
    assert_close(
        "layer y",
        &values(&kernel.2.y),
        &as_f64(&composed.2.y),
        1e-5,
    );
    assert_close(
        "layer mean",
        &values(&kernel.2.mean),
        &as_f64(&composed.2.mean),
        1e-5,
    );
    assert_close(
        "layer inv_std",
        &values(&kernel.2.inv_std),
        &as_f64(&composed.2.inv_std),
        1e-5,
    );
    Ok(())
}

#[test]
fn arguments_are_checked() {
    let zeros = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
    let message = |r: candle_core::Result<Tensor>| r.unwrap_err().to_string();
    let x = zeros(&[4, 3]);
    let m = message(scale_shift(&x, &zeros(&[2]), &zeros(&[3])));
    assert!(
        m.contains("one value per column") && m.contains("[2]"),
        "{m}"
    );
    let m = message(batch_moments(&zeros(&[0, 3])).map(|(mean, _)| mean));
    assert!(m.contains("at least one row"), "{m}");
    let m = message(batch_moments(&zeros(&[3, 0])).map(|(mean, _)| mean));
    assert!(m.contains("no column"), "{m}");
    let m = message(layer_normalization(&zeros(&[12]), None, None, EPSILON).map(|o| o.y));
    assert!(m.contains("rank 2"), "{m}");
    let ints = Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap();
    let m = message(layer_normalization(&ints, None, None, EPSILON).map(|o| o.y));
    assert!(m.contains("f32"), "{m}");
    let (mean, inv) = (zeros(&[3]), zeros(&[4]));
    let m =
        message(layer_normalization_backward(&x, &x, (&mean, &inv), None, true).map(|g| g.beta));
    assert!(m.contains("one value per row"), "{m}");
    let stats = BatchNormStatistics {
        mean: &mean,
        inv_std: &mean,
        scale: &mean,
        from_batch: true,
        part: None,
    };
    let m =
        message(batch_normalization_backward(&x, &zeros(&[4, 2]), &stats, true).map(|g| g.sum_dy));
    assert!(m.contains("grad_y"), "{m}");
    // An empty batch normalizes to nothing.
    let empty = layer_normalization(&zeros(&[0, 3]), None, None, EPSILON).unwrap();
    assert_eq!(empty.y.dims(), &[0, 3]);
}
