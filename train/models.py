"""Keras models on the clip feature matrix, int8-friendly (builtin TFLite ops only).

Every model takes the raw ``clip_features`` matrix, shape ``params.input_shape``,
and starts with a ``Normalization`` layer holding the global per-coefficient
mean and variance fitted on the training split, so the device feeds the
runtime's matrix unchanged. Layers used: Normalization (a subtract and a
multiply), Reshape, Flatten, Conv2D, DepthwiseConv2D, BatchNormalization
(folded into the convolutions on conversion), ReLU, Add, pooling, Dense, Dropout
(training only) and Softmax.
"""

from __future__ import annotations

import numpy as np

ARCHS = ("ann", "cnn", "dscnn", "tcresnet")


def _normalization(x_train: np.ndarray):
    import keras

    flat = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64)
    mean, var = flat.mean(axis=0), flat.var(axis=0)
    return keras.layers.Normalization(axis=-1, mean=mean.astype(np.float32),
                                      variance=np.maximum(var, 1e-6).astype(np.float32),
                                      name="standardise")


def build_ann(input_shape, x_train, hidden=(256, 128, 64), dropout=0.3, n_classes=10):
    """The seed project's network: 3 hidden Dense ReLU layers and a softmax output."""
    import keras

    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = _normalization(x_train)(inputs)
    x = keras.layers.Flatten()(x)
    for units in hidden:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="ann")


def _conv_bn(x, filters, kernel, strides=(1, 1)):
    import keras

    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


def _select_columns(x, input_shape, columns):
    """Layers keeping input columns ``start:stop`` of a (frames, n) input, shape (frames, stop - start)."""
    import keras

    frames, n = input_shape
    start, stop = columns
    x = keras.layers.Reshape((frames, n, 1))(x)
    x = keras.layers.Cropping2D(((0, 0), (start, n - stop)))(x)
    return keras.layers.Reshape((frames, stop - start))(x)


def build_cnn(input_shape, x_train, width=32, dropout=0.3, n_classes=10, pooling="segments", channels=1,
              columns=None):
    """A small 2-D CNN over (time, coefficient): 3 conv blocks, pooling, dense head.

    ``pooling``: "segments" averages the last block into 4 time segments in order (where in the
    window a sound is matters); "attention" weighs its frames by a learned score and adds their
    maximum (where it is does not matter). ``channels``: the input's columns are that many blocks
    of equal width (normalised and raw MFCCs: 2), stacked as channels of one coefficient axis, so
    only the first convolution grows. ``columns``: (start, stop), the network reads only these input
    columns (an ensemble member given part of the input, e.g. the normalised MFCCs of a matrix that
    also holds raw ones); None reads them all."""
    import keras

    frames, n = input_shape
    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = inputs
    if columns is not None:
        start, stop = columns
        if not 0 <= start < stop <= n:
            raise ValueError(f"columns {list(columns)} are not a range within the input's {n}")
        x, x_train, n = _select_columns(x, input_shape, columns), x_train[..., start:stop], stop - start
    if channels < 1 or n % channels:
        raise ValueError(f"{n} input columns do not split into {channels} channels")
    x = _normalization(x_train)(x)
    if channels == 1:
        x = keras.layers.Reshape((frames, n, 1))(x)
    else:
        x = keras.layers.Reshape((frames, channels, n // channels))(x)
        x = keras.layers.Permute((1, 3, 2))(x)  # (frames, coefficient, channel)
    x = _conv_bn(x, width // 2, (5, 3), strides=(2, 1))
    x = keras.layers.MaxPooling2D((2, 2))(x)
    x = _conv_bn(x, width, (3, 3))
    x = keras.layers.MaxPooling2D((2, 1))(x)
    x = _conv_bn(x, width * 2, (3, 3))
    t, f = x.shape[1], x.shape[2]
    if pooling == "segments":
        x = keras.layers.AveragePooling2D((max(1, t // 4), f))(x)
        x = keras.layers.Flatten()(x)
    elif pooling == "attention":
        frames = keras.layers.Reshape((t, width * 2))(keras.layers.AveragePooling2D((1, f))(x))
        weights = keras.layers.Softmax(axis=1)(keras.layers.Dense(1)(frames))
        attended = keras.layers.Flatten()(keras.layers.Dot(axes=1)([weights, frames]))
        x = keras.layers.Concatenate()([attended, keras.layers.GlobalMaxPooling1D()(frames)])
    else:
        raise ValueError(f"unknown pooling {pooling!r} (segments or attention)")
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_dscnn(input_shape, x_train, width=64, blocks=4, dropout=0.3, n_classes=10):
    """Depthwise-separable CNN in the style of "Hello Edge" (Zhang et al. 2017)."""
    import keras

    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = _normalization(x_train)(inputs)
    x = keras.layers.Reshape((*input_shape, 1))(x)
    x = _conv_bn(x, width, (10, 4), strides=(3, 2))
    for _ in range(blocks):
        x = keras.layers.DepthwiseConv2D((3, 3), padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = _conv_bn(x, width, (1, 1))
    t, f = x.shape[1], x.shape[2]
    x = keras.layers.AveragePooling2D((max(1, t // 4), f))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="dscnn")


def _temporal_block(x, filters, kernel, stride):
    """A residual block of two (kernel x 1) convolutions over time; a 1 x 1 projection when shapes change."""
    import keras

    y = keras.layers.Conv2D(filters, (kernel, 1), strides=(stride, 1), padding="same", use_bias=False)(x)
    y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
    y = keras.layers.Conv2D(filters, (kernel, 1), padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    if stride != 1 or x.shape[-1] != filters:
        x = _conv_bn(x, filters, (1, 1), strides=(stride, 1))
    return keras.layers.ReLU()(keras.layers.Add()([x, y]))


def build_tcresnet(input_shape, x_train, width=16, dropout=0.3, n_classes=10):
    """Temporal-convolution ResNet in the style of TC-ResNet8 (Choi et al. 2019): the coefficients are the
    channels of a 1-D signal over time, 3 residual blocks of width 1.5, 2 and 3 x ``width``, each halving
    time, then the time average and a softmax."""
    import keras

    frames, coefficients = input_shape
    inputs = keras.Input(shape=input_shape, name="mfcc")
    x = _normalization(x_train)(inputs)
    x = keras.layers.Reshape((frames, 1, coefficients))(x)
    x = _conv_bn(x, width, (3, 1))
    for factor in (1.5, 2, 3):
        x = _temporal_block(x, int(width * factor), 9, 2)
    x = keras.layers.AveragePooling2D((x.shape[1], 1))(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="digit")(x)
    return keras.Model(inputs, outputs, name="tcresnet")


def average(members, input_shape):
    """One model whose output is the mean of the ``members``' probabilities, all fed the same input:
    an ensemble the device runs as one TFLite model."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="mfcc")
    outputs = [keras.Model(m.input, m.output, name=f"member{i}")(inputs) for i, m in enumerate(members)]
    return keras.Model(inputs, keras.layers.Average(name="digit")(outputs), name="ensemble")


def build(arch: str, input_shape, x_train, **kwargs):
    builders = {"ann": build_ann, "cnn": build_cnn, "dscnn": build_dscnn, "tcresnet": build_tcresnet}
    if arch == "ensemble":
        raise ValueError("an ensemble's members are trained one by one (fit.train_model), not built at once")
    if arch not in builders:
        raise ValueError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    return builders[arch](tuple(input_shape), x_train, **kwargs)
