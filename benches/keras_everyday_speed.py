"""Keras's numbers for everyday MNIST classifiers, for rkeras's README and tests to compare
against: epoch seconds (validation included), losses and accuracies, and the test accuracy, of
Keras 3 on TensorFlow (CPU, 2 threads), with the settings of keras.io and of Keras's defaults:

- `mlp`: Input((28, 28)) -> Flatten -> Dense(128, relu) -> Dense(10, softmax); sparse
  categorical cross-entropy, Adam, accuracy; batch 32 (Keras's default); validation on the
  10 000 test images.
- `convnet`: keras.io's "Simple MNIST convnet" (examples/vision/mnist_convnet.py): categorical
  cross-entropy on `to_categorical` labels, Adam, accuracy, batch 128, `validation_split=0.1`
  (keras.io: 15 epochs, test accuracy 0.9922).
- `lstm`: Input((28, 28)) -> LSTM(128) -> Dense(10, softmax), reading an image a row at a time;
  sparse categorical cross-entropy, Adam, accuracy, batch 128; validation on the test images.

    python3 -m venv /tmp/keras-venv
    /tmp/keras-venv/bin/pip install "tensorflow-cpu==2.21.*" "keras==3.15.1"
    /tmp/keras-venv/bin/python benches/keras_everyday_speed.py mlp 3
    /tmp/keras-venv/bin/python benches/keras_everyday_speed.py convnet 15 /path/to/mnist

Arguments: the model (mlp, convnet or lstm), the number of epochs, and optionally the directory
holding the four MNIST IDX files (default: `data/mnist` of this repository). Prints one line an
epoch (seconds, the 1-minute load average at its end, loss, accuracy, val_loss, val_accuracy),
then the test set's loss and accuracy from `evaluate` (batch 32, Keras's default). The load
average says how busy the machine was: timings from a shared machine are noisy, the losses and
accuracies are not (`keras.utils.set_random_seed(0)`). Not run by CI; rkeras does not need
Python.
"""

import gzip
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402 (after the thread limits, which must precede any TensorFlow work)
from keras import layers  # noqa: E402


def idx_images(path):
    """The images of a gzipped IDX file, as uint8 (N, 28, 28)."""
    with gzip.open(path) as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, 28, 28)


def idx_labels(path):
    """The labels of a gzipped IDX file, as uint8 (N,)."""
    with gzip.open(path) as f:
        data = f.read()
    count = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, offset=8, count=count)


def mlp(batch_norm=False):
    image = keras.Input((28, 28))
    x = layers.Flatten()(image)
    x = layers.Dense(128, activation="relu")(x)
    if batch_norm:
        x = layers.BatchNormalization()(x)
    return keras.Model(image, layers.Dense(10, activation="softmax")(x))


def convnet(dropout=True, batch_norm=False):
    model = keras.Sequential([keras.Input(shape=(28, 28, 1))])
    for filters in (32, 64):
        model.add(layers.Conv2D(filters, kernel_size=(3, 3), activation="relu"))
        model.add(layers.MaxPooling2D(pool_size=(2, 2)))
        if batch_norm:
            model.add(layers.BatchNormalization())
    model.add(layers.Flatten())
    if dropout:
        model.add(layers.Dropout(0.5))
    model.add(layers.Dense(10, activation="softmax"))
    return model


def lstm():
    rows = keras.Input((28, 28))
    return keras.Model(rows, layers.Dense(10, activation="softmax")(layers.LSTM(128)(rows)))


class EpochTimes(keras.callbacks.Callback):
    """Prints each epoch's wall time (validation included), the load average and the logs;
    also the time `fit` took before its first epoch began (`fit_start`: the moment `fit` was
    called) and after its last one ended, so that the epochs' sum can be checked against the
    whole `fit`."""

    def __init__(self, fit_start):
        super().__init__()
        self.fit_start = fit_start

    def on_train_begin(self, logs=None):
        self.train_begin = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        if epoch == 0:
            print(
                f"before epoch 1: {self.start - self.fit_start:.2f} s "
                f"({self.train_begin - self.fit_start:.2f} s before on_train_begin)",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        self.end = time.perf_counter()
        seconds = self.end - self.start
        print(
            f"epoch {epoch + 1}: {seconds:.2f} s, load {os.getloadavg()[0]:.2f}, "
            f"loss {logs['loss']:.4f}, accuracy {logs['accuracy']:.4f}, "
            f"val_loss {logs['val_loss']:.4f}, val_accuracy {logs['val_accuracy']:.4f}",
            flush=True,
        )

    def on_train_end(self, logs=None):
        print(
            f"after the last epoch: {time.perf_counter() - self.end:.2f} s to on_train_end",
            flush=True,
        )


def main():
    # Each model: its builder, its batch size, whether its labels are one-hot (categorical
    # cross-entropy) or integers (sparse), whether its images carry a channel axis, and its
    # validation (the test set, or a fraction of the training set as keras.io's convnet).
    models = {
        "mlp": (mlp, 32, False, False, "test"),
        "mlp-bn": (lambda: mlp(batch_norm=True), 32, False, False, "test"),
        "convnet": (convnet, 128, True, True, 0.1),
        "convnet-no-dropout": (lambda: convnet(dropout=False), 128, True, True, 0.1),
        "convnet-bn": (lambda: convnet(batch_norm=True), 128, True, True, 0.1),
        "lstm": (lstm, 128, False, False, "test"),
    }
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in models:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(models)} EPOCHS [MNIST_DIR]")
    default_dir = pathlib.Path(__file__).resolve().parent.parent / "data" / "mnist"
    mnist = pathlib.Path(sys.argv[3]) if len(sys.argv) == 4 else default_dir
    build, batch_size, one_hot, channel, validation = models[sys.argv[1]]
    epochs = int(sys.argv[2])

    x_train = idx_images(mnist / "train-images-idx3-ubyte.gz").astype("float32") / 255
    x_test = idx_images(mnist / "t10k-images-idx3-ubyte.gz").astype("float32") / 255
    y_train = idx_labels(mnist / "train-labels-idx1-ubyte.gz")
    y_test = idx_labels(mnist / "t10k-labels-idx1-ubyte.gz")
    if channel:
        x_train, x_test = np.expand_dims(x_train, -1), np.expand_dims(x_test, -1)
    if one_hot:
        y_train = keras.utils.to_categorical(y_train, 10)
        y_test = keras.utils.to_categorical(y_test, 10)
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"

    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, numpy {np.__version__}, "
        f"python {platform.python_version()}, {os.cpu_count()} CPUs, TensorFlow threads 2/1",
        flush=True,
    )
    print(
        f"{sys.argv[1]}: {epochs} epochs, batch {batch_size}, {loss}, adam, "
        f"validation {'on the test set' if validation == 'test' else f'split {validation}'}, "
        f"load {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
    if validation == "test":
        validation_args = {"validation_data": (x_test, y_test)}
    else:
        validation_args = {"validation_split": validation}
    start = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[EpochTimes(start)],
        **validation_args,
    )
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(
        f"fit {fit_seconds:.1f} s; test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f} "
        f"(evaluate {time.perf_counter() - start:.2f} s, load {os.getloadavg()[0]:.2f})",
        flush=True,
    )


if __name__ == "__main__":
    main()
