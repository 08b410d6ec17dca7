"""Keras's own `summary()` text for everyday models, written to `tests/golden/<name>.txt` for
rkeras's summary tests to compare against, character for character.

    python3 -m venv /tmp/keras-venv
    /tmp/keras-venv/bin/pip install "tensorflow-cpu==2.21.*" "keras==3.15.1"
    /tmp/keras-venv/bin/python benches/keras_reference_models.py            # every model
    /tmp/keras-venv/bin/python benches/keras_reference_models.py lstm_rows  # some of them

The text is what Keras prints when its output is not a terminal (a log file, CI): no colours,
and the width of an 80-column terminal, which `COLUMNS=80` fixes whatever terminal this runs in
(Keras takes `min(88, columns - 4)` = 76 characters for a 3-column table, and the same 76 for a
4-column one), as in the tutorial goldens already there (`tests/golden/dense_encoder.txt`...).
Each model is built after `keras.backend.clear_session()`, so its layers get the default names
of a fresh session (`conv2d`, `max_pooling2d`, `dense`, `input_layer`...). Not run by CI; rkeras
does not need Python.
"""

import os
import pathlib
import sys

os.environ["COLUMNS"] = "80"  # read by both shutil.get_terminal_size (Keras) and rich
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402 (after the thread limits, which must precede any TensorFlow work)
from keras import layers, ops  # noqa: E402

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden"


def summary_text(model):
    """`model.summary()` as Keras prints it to a non-terminal, trailing newline included."""
    parts = []
    model.summary(print_fn=lambda text, **_: parts.append(text))
    return "".join(parts)


def mnist_convnet():
    """keras.io's "Simple MNIST convnet" (examples/vision/mnist_convnet.py), as written there."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


def sequential_mnist_convnet():
    return {"sequential_mnist_convnet": summary_text(mnist_convnet())}


def sequential_mnist_convnet_trained():
    """The same model once its optimizer is built: compiled as keras.io does (without the
    metric, which does not show in the summary), then one `train_on_batch` on a batch of two
    blank images labelled 0 and 1. Also returns the summary after `compile` alone (before the
    optimizer's variables exist) as `..._compiled`."""
    model = mnist_convnet()
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    compiled = summary_text(model)
    x = np.zeros((2, 28, 28, 1), "float32")
    y = keras.utils.to_categorical([0, 1], 10)
    model.train_on_batch(x, y)
    return {
        "sequential_mnist_convnet_compiled": compiled,
        "sequential_mnist_convnet_trained": summary_text(model),
    }


def two_input_concatenate():
    a = keras.Input((8,), name="a")
    b = keras.Input((4,), name="b")
    h = layers.Concatenate()(
        [layers.Dense(16, activation="relu")(a), layers.Dense(16, activation="relu")(b)]
    )
    out = layers.Dense(1, activation="sigmoid")(h)
    return {"two_input_concatenate": summary_text(keras.Model([a, b], out, name="two_inputs"))}


def batchnorm_convnet():
    image = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3)(image)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(10)(x)
    return {"batchnorm_convnet": summary_text(keras.Model(image, out))}


def mlp_classifier():
    image = keras.Input((28, 28))
    x = layers.Flatten()(image)
    x = layers.Dense(128, activation="relu")(x)
    out = layers.Dense(10, activation="softmax")(x)
    return {"mlp_classifier": summary_text(keras.Model(image, out))}


def lstm_rows():
    rows = keras.Input((28, 28))
    out = layers.Dense(10, activation="softmax")(layers.LSTM(128)(rows))
    return {"lstm_rows": summary_text(keras.Model(rows, out))}


def gru_rows():
    rows = keras.Input((28, 28))
    out = layers.Dense(10, activation="softmax")(layers.GRU(128)(rows))
    return {"gru_rows": summary_text(keras.Model(rows, out))}


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit.

    keras.io's VAE (examples/generative/vae.py, Keras 3 version), word for word."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def vae():
    """keras.io's VAE encoder then decoder, built one after the other in one session as the
    example does (so the decoder's input is `input_layer_1` and its Dense `dense_1`)."""
    latent_dim = 2

    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    return {"vae_encoder": summary_text(encoder), "vae_decoder": summary_text(decoder)}


MODELS = {
    "sequential_mnist_convnet": sequential_mnist_convnet,
    "sequential_mnist_convnet_trained": sequential_mnist_convnet_trained,
    "two_input_concatenate": two_input_concatenate,
    "batchnorm_convnet": batchnorm_convnet,
    "mlp_classifier": mlp_classifier,
    "lstm_rows": lstm_rows,
    "gru_rows": gru_rows,
    "vae": vae,
}


def main():
    names = sys.argv[1:] or list(MODELS)
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        sys.exit(f"unknown: {unknown}; choose among {' '.join(MODELS)}")
    for name in names:
        keras.backend.clear_session()
        for file, text in MODELS[name]().items():
            path = GOLDEN / f"{file}.txt"
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
