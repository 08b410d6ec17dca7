"""Keras's side of the speed comparison: the tutorial's five models (the dense, deep, conv,
denoising and sparse autoencoders) trained by Keras 3 on TensorFlow (CPU, 2 threads), timed per
epoch with the validation pass included, as `../shared/reference/keras-anchor.md` measured them.

Keras's epoch time depends on the machine as much as rkeras's does, so compare the two on one
machine, alternating runs (see `benches/README.md`):

    python3 -m venv /tmp/keras-env
    /tmp/keras-env/bin/pip install "tensorflow-cpu==2.21.*" "keras==3.15.1"
    /tmp/keras-env/bin/python benches/keras_tutorial_speed.py deep 5
    cargo run --release --example deep_autoencoder -- --epochs 5

Arguments: the model (dense, deep, conv, denoise or sparse), the number of epochs, and optionally the directory
holding the four MNIST IDX files (default: `data/mnist` of this repository). Prints one line an
epoch: seconds, loss and val_loss. Not run by CI; rkeras does not need Python.
"""

import gzip
import pathlib
import sys
import time

import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)

import keras  # noqa: E402 (after the thread limits, which must precede any TensorFlow work)
from keras import Model, layers  # noqa: E402


def idx_images(path):
    """The images of a gzipped IDX file, as uint8 (N, 28, 28)."""
    with gzip.open(path) as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, 28, 28)


def unit_images(path):
    """The tutorial's input: float32 / 255, shaped (N, 28, 28, 1)."""
    return (idx_images(path).astype("float32") / 255.0).reshape(-1, 28, 28, 1)


def autoencoder(encoder_layers, code_shape, decoder_layers):
    """Model(input, decoder(encoder(input))) from the two halves' layers, as the tutorial builds it."""
    image = keras.Input((28, 28, 1))
    x = image
    for layer in encoder_layers:
        x = layer(x)
    code = keras.Input(code_shape)
    y = code
    for layer in decoder_layers:
        y = layer(y)
    encoder, decoder = Model(image, x), Model(code, y)
    return Model(image, decoder(encoder(image)))


def dense():
    return autoencoder(
        [layers.Flatten(), layers.Dense(49, activation="relu")],
        (49,),
        [layers.Dense(784, activation="sigmoid"), layers.Reshape((28, 28, 1))],
    )


def deep():
    return autoencoder(
        [
            layers.Flatten(),
            layers.Dense(147, activation="relu"),
            layers.Dense(98, activation="relu"),
            layers.Dense(49, activation="linear"),
        ],
        (49,),
        [
            layers.Dense(98, activation="relu"),
            layers.Dense(147, activation="relu"),
            layers.Dense(784, activation="sigmoid"),
            layers.Reshape((28, 28, 1)),
        ],
    )


def conv():
    return autoencoder(
        [
            layers.Conv2D(128, (7, 7), activation="relu", padding="same"),
            layers.MaxPooling2D((2, 2), padding="same"),
            layers.Conv2D(32, (2, 2), activation="relu", padding="same"),
            layers.MaxPooling2D((2, 2), padding="same"),
            layers.Conv2D(1, (7, 7), activation="relu", padding="same"),
        ],
        (7, 7, 1),
        [
            layers.Conv2D(32, (7, 7), activation="relu", padding="same"),
            layers.UpSampling2D((2, 2)),
            layers.Conv2D(128, (2, 2), activation="relu", padding="same"),
            layers.UpSampling2D((2, 2)),
            layers.Conv2D(1, (7, 7), activation="sigmoid", padding="same"),
        ],
    )


def denoise():
    """A fresh dense autoencoder behind a noiser (x + N(0.5, 0.5), clipped to [0, 1]) on batches
    of 16, as the tutorial's denoising model."""
    image = keras.Input(batch_shape=(16, 28, 28, 1))
    noised = layers.Lambda(
        lambda x: keras.ops.clip(
            x + keras.random.normal(keras.ops.shape(x), mean=0.5, stddev=0.5), 0.0, 1.0
        )
    )(image)
    return Model(image, dense()(noised))


def sparse():
    return autoencoder(
        [
            layers.Flatten(),
            layers.Dense(48, activation="relu"),
            layers.Dense(32, activation="relu"),
            layers.Dense(
                16,
                activation="linear",
                activity_regularizer=keras.regularizers.L1L2(l1=1e-5),
            ),
        ],
        (16,),
        [
            layers.Dense(32, activation="relu"),
            layers.Dense(48, activation="relu"),
            layers.Dense(784, activation="sigmoid"),
            layers.Reshape((28, 28, 1)),
        ],
    )


class EpochTimes(keras.callbacks.Callback):
    """Prints each epoch's wall time (validation included), loss and val_loss."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        print(
            f"epoch {epoch + 1}: {seconds:.3f} s, loss {logs['loss']:.4f}, "
            f"val_loss {logs['val_loss']:.4f}",
            flush=True,
        )


def main():
    # Each model and its batch size.
    models = {
        "dense": (dense, 256),
        "deep": (deep, 256),
        "conv": (conv, 256),
        "denoise": (denoise, 16),
        "sparse": (sparse, 256),
    }
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in models:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(models)} EPOCHS [MNIST_DIR]")
    default_dir = pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist"
    mnist = pathlib.Path(sys.argv[3]) if len(sys.argv) == 4 else default_dir
    x_train = unit_images(mnist / "train-images-idx3-ubyte.gz")
    x_test = unit_images(mnist / "t10k-images-idx3-ubyte.gz")
    keras.utils.set_random_seed(0)
    build, batch_size = models[sys.argv[1]]
    model = build()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(
        x_train,
        x_train,
        epochs=int(sys.argv[2]),
        batch_size=batch_size,
        shuffle=True,
        validation_data=(x_test, x_test),
        verbose=0,
        callbacks=[EpochTimes()],
    )


if __name__ == "__main__":
    main()
