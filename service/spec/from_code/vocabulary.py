"""What the code reader knows of Keras: its positional parameters, the arguments and callbacks
that change nothing trained, the names that run code or reach the system, the limits on a
value, and Keras's own spellings (`snake_case`, `float32_shortest`)."""

from __future__ import annotations

import math
import re

import numpy as np

from service.spec.layers import LAYER_TYPES
from service.spec.regularizers import KERAS_CONSTRAINT_NAMES

# Keras's positional parameters, in its order, for each class the spec knows (Keras 3's
# signatures); the exporter writes a prefix of these positionally.
POSITIONAL: dict[str, tuple[str, ...]] = {
    "Input": ("shape",),
    "InputLayer": ("shape",),
    "Flatten": ("data_format",),
    "Dense": ("units", "activation", "use_bias", "kernel_initializer"),
    "Activation": ("activation",),
    "LeakyReLU": ("negative_slope",),
    "PReLU": ("alpha_initializer", "alpha_regularizer", "alpha_constraint", "shared_axes"),
    "ELU": ("alpha",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "BatchNormalization": ("axis", "momentum", "epsilon"),
    "Dropout": ("rate",),
    "AlphaDropout": ("rate",),
    "Conv2D": ("filters", "kernel_size", "strides", "padding"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "Reshape": ("target_shape",),
    "SGD": ("learning_rate", "momentum", "nesterov"),
    "Adagrad": ("learning_rate", "initial_accumulator_value", "epsilon"),
    "RMSprop": ("learning_rate", "rho", "momentum", "epsilon", "centered"),
    "Adam": ("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"),
    "Adamax": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "Nadam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
    "ExponentialDecay": ("initial_learning_rate", "decay_steps", "decay_rate", "staircase"),
    "InverseTimeDecay": ("initial_learning_rate", "decay_steps", "decay_rate", "staircase"),
    "CosineDecay": ("initial_learning_rate", "decay_steps", "alpha"),
    "PiecewiseConstantDecay": ("boundaries", "values"),
    "EarlyStopping": ("monitor", "min_delta", "patience"),
    "ReduceLROnPlateau": ("monitor", "factor", "patience"),
    "l1": ("l1",),
    "l2": ("l2",),
    "l1_l2": ("l1", "l2"),
    "max_norm": ("max_value", "axis"),
    "unit_norm": ("axis",),
    "non_neg": (),
}
# Keras's arguments that change nothing the service trains: read, skipped and listed.
HARMLESS = {
    "name": "the service names layers itself",
    "verbose": "the service reports progress itself",
}
# Keras's default for each argument it would be harmless to leave out, when written anyway.
DEFAULTS_TAKEN = {
    "shuffle": True,
    "mode": "auto",
    "data_format": "channels_last",
    "dtype": "float32",
}
# Keras's class name -> the spec's regularizer or constraint type (its string identifier).
REGULARIZERS = {"l1": "l1", "l2": "l2", "l1_l2": "l1_l2", "L1": "l1", "L2": "l2", "L1L2": "l1_l2"}
CONSTRAINTS = KERAS_CONSTRAINT_NAMES
CALLBACKS = {"EarlyStopping": "early_stopping", "ReduceLROnPlateau": "reduce_lr_on_plateau"}
# Callbacks about files and logs, not about training: skipped and listed.
SIDE_CALLBACKS = ("ModelCheckpoint", "TensorBoard", "CSVLogger", "ProgbarLogger", "History")
SEQUENTIAL = ("keras.Sequential", "keras.models.Sequential")
FUNCTIONAL = ("keras.Model", "keras.models.Model")
SEEDS = ("keras.utils.set_random_seed", "tensorflow.random.set_seed")
# Functions and modules that run code or reach the system: refused wherever they are written.
RUNS_CODE = frozenset(
    {
        "__import__",
        "eval",
        "exec",
        "compile",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "__builtins__",
    }
)
SYSTEM_MODULES = frozenset(
    {
        "subprocess",
        "ctypes",
        "pickle",
        "marshal",
        "importlib",
        "builtins",
        "pty",
        "shutil",
        "socket",
        "multiprocessing",
        "runpy",
        "code",
    }
)
OS_CALLS = re.compile(r"^os\.(system|popen|exec\w*|spawn\w*|fork\w*|kill\w*|remove|unlink|rmdir)$")
MAX_DEPTH = 32
MAX_EXPONENT = 1000
# Beyond any setting, and short enough to print (Python refuses ints of over 4,300 digits).
MAX_INTEGER = 2**53
# The kinds of value a Keras call gives, for the messages that say what fits where.
LAYER_HINT = (
    "use one of Keras's layers the service builds: " + ", ".join(LAYER_TYPES) + " (as "
    'keras.layers.Dense(300, activation="relu"))'
)


def snake_case(name: str) -> str:
    """`HeNormal` as Keras's string identifier, `he_normal`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def float32_shortest(value: float) -> float:
    """A float32 read back as its shortest decimal: Keras's config stores 1e-3 as
    0.0010000000474974513; this gives 0.001 back."""
    if math.isfinite(value) and float(np.float32(value)) == value:
        return float(repr(np.float32(value)).removeprefix("np.float32(").removesuffix(")"))
    return value
