//! The training flag reaches the layers inside nested models from fit, evaluate and predict:
//! BatchNormalization normalises with the batch and updates its moving statistics in fit, and
//! uses them in predict; a frozen model runs it in inference mode, as Keras does; Dropout drops
//! only in fit.

use rkeras::prelude::*;

/// An outer model around an inner one whose only layer is a BatchNormalization (momentum 0, so
/// that one step sets the moving statistics to the batch's).
fn nested_batch_norm() -> rkeras::Result<(Model, Model)> {
    let input = Input::new(&[2]);
    let inner = Model::named(
        "inner",
        input,
        BatchNormalization::new().momentum(0.0)(input),
    )?;
    let outer_input = Input::new(&[2]);
    let outer = Model::named("outer", outer_input, inner(outer_input))?;
    Ok((outer, inner))
}

/// The moving mean and variance of the inner model's BatchNormalization.
fn moving_statistics(inner: &Model) -> rkeras::Result<(Vec<f32>, Vec<f32>)> {
    let weights = inner.get_weights()?;
    // Keras's order: gamma, beta, moving_mean, moving_variance.
    Ok((weights[2].to_vec1()?, weights[3].to_vec1()?))
}

#[test]
fn batch_normalization_in_a_nested_model_trains_on_the_batch_and_predicts_on_its_statistics(
) -> rkeras::Result<()> {
    let (outer, inner) = nested_batch_norm()?;
    let x = Tensor::new(
        &[[1f32, 2.0], [3.0, 2.0], [5.0, 2.0], [7.0, 2.0]],
        &Device::Cpu,
    )?;
    let target = Tensor::zeros((4, 2), DType::F32, &Device::Cpu)?;
    outer.compile(SGD::new().learning_rate(0.0), "mse")?;
    // Before training the statistics are Keras's initial ones.
    assert_eq!(moving_statistics(&inner)?, (vec![0.0, 0.0], vec![1.0, 1.0]));
    outer.fit(&x, &target, FitOptions::new().batch_size(4).verbose(0))?;
    // One step: the batch's mean and (biased) variance, by hand: channel 0 is 1, 3, 5, 7.
    assert_eq!(moving_statistics(&inner)?, (vec![4.0, 2.0], vec![5.0, 0.0]));
    // predict normalises with them: (x - 4) / sqrt(5 + 0.001) on channel 0.
    let y: Vec<Vec<f32>> = outer.predict(&x, None)?.to_vec2()?;
    for (row, expected) in y.iter().zip([-3.0f32, -1.0, 1.0, 3.0]) {
        assert!(
            (row[0] - expected / 5.001f32.sqrt()).abs() < 1e-5,
            "{row:?}"
        );
    }
    // evaluate does not train: the statistics stay.
    outer.evaluate(&(&x * 2.0)?, &target, None)?;
    assert_eq!(moving_statistics(&inner)?, (vec![4.0, 2.0], vec![5.0, 0.0]));
    // A frozen inner model runs its BatchNormalization in inference mode, even in fit.
    inner.set_trainable(false);
    outer.compile(SGD::new().learning_rate(0.0), "mse")?;
    outer.fit(
        &(&x * 3.0)?,
        &target,
        FitOptions::new().batch_size(4).verbose(0),
    )?;
    assert_eq!(moving_statistics(&inner)?, (vec![4.0, 2.0], vec![5.0, 0.0]));
    Ok(())
}

#[test]
fn dropout_in_a_nested_model_drops_in_fit_and_is_the_identity_in_evaluate_and_predict(
) -> rkeras::Result<()> {
    let input = Input::new(&[1000]);
    let inner = Model::named("inner", input, Dropout::new(0.5)(input))?;
    let outer_input = Input::new(&[1000]);
    let outer = Model::named("outer", outer_input, inner(outer_input))?;
    outer.compile(SGD::new().learning_rate(0.0), "mse")?;
    let x = Tensor::ones((4, 1000), DType::F32, &Device::Cpu)?;
    // The identity: y = x, so the mean squared error against x is 0.
    assert_eq!(
        outer.predict(&x, None)?.to_vec2::<f32>()?,
        x.to_vec2::<f32>()?
    );
    assert_eq!(outer.evaluate(&x, &x, None)?["loss"], 0.0);
    // In training every unit is dropped (0) or scaled by 1 / (1 - 0.5) (2): each error is 1.
    let logs = outer.train_on_batch(&x, &x)?;
    assert!((logs["loss"] - 1.0).abs() < 1e-6, "{logs:?}");
    let history = outer.fit(&x, &x, FitOptions::new().batch_size(4).verbose(0))?;
    assert!((history.loss()[0] - 1.0).abs() < 1e-6, "{history:?}");
    Ok(())
}
