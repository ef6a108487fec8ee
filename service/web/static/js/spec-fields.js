// What the form offers for each layer type and optimiser: Keras's names and defaults, as the
// service accepts them (README "The spec"). Arguments not listed here are kept untouched.
// Kind "json" is a small text field for an object (a regularizer, a constraint, a learning-rate
// schedule, a callback) or a number, written as Keras's config would be; empty leaves it out.

export const ACTIVATIONS = ["relu", "elu", "selu", "tanh", "sigmoid", "softmax", "leaky_relu", "linear", "gelu",
  "swish", "silu", "softplus", "softsign", "hard_sigmoid", "exponential", "relu6"];
export const INITIALIZERS = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
  "random_normal", "random_uniform", "truncated_normal", "orthogonal", "zeros", "ones"];

const activation = { name: "activation", kind: "choice", options: ["", ...ACTIVATIONS], empty: "none" };
const initializer = { name: "kernel_initializer", kind: "choice", options: INITIALIZERS, default: "glorot_uniform" };
const useBias = { name: "use_bias", kind: "bool", default: true };
const padding = { name: "padding", kind: "choice", options: ["valid", "same"], default: "valid" };
const regularizer = { name: "kernel_regularizer", kind: "json", placeholder: '{"type": "l2", "l2": 0.01}' };
const constraint = { name: "kernel_constraint", kind: "json", placeholder: '{"type": "max_norm", "max_value": 2}' };
const rate = { name: "rate", kind: "float", default: 0.2, step: 0.05, min: 0, max: 0.99 };

export const LAYERS = {
  Flatten: [],
  Dense: [{ name: "units", kind: "int", default: 100, min: 1 }, activation, initializer, useBias, regularizer, constraint],
  Activation: [{ ...activation, options: ACTIVATIONS, default: "relu" }],
  LeakyReLU: [{ name: "negative_slope", kind: "float", default: 0.3, step: 0.01 }],
  PReLU: [{ ...initializer, name: "alpha_initializer", default: "zeros" }],
  ELU: [{ name: "alpha", kind: "float", default: 1.0, step: 0.1, min: 0 }],
  ReLU: [{ name: "max_value", kind: "float", default: null, step: 1, min: 0, empty: "none" },
    { name: "negative_slope", kind: "float", default: 0, step: 0.01, min: 0, max: 1 }, { name: "threshold", kind: "float", default: 0, step: 0.1 }],
  BatchNormalization: [{ name: "momentum", kind: "float", default: 0.99, step: 0.01 }, { name: "epsilon", kind: "float", default: 0.001, step: 0.001 }],
  Dropout: [rate],
  AlphaDropout: [rate],
  Conv2D: [{ name: "filters", kind: "int", default: 32, min: 1 }, { name: "kernel_size", kind: "int", default: 3, min: 1 },
    { name: "strides", kind: "int", default: 1, min: 1 }, padding, activation, initializer, useBias, regularizer, constraint],
  MaxPooling2D: [{ name: "pool_size", kind: "int", default: 2, min: 1 }, padding],
  Reshape: [{ name: "target_shape", kind: "shape", default: [28, 28, 1] }],
};

// A number, or a schedule: {"type": "ExponentialDecay", "initial_learning_rate": 0.01, ...}.
const lr = (value) => ({ name: "learning_rate", kind: "json", default: value, size: 12,
  placeholder: '0.001 or {"type": "ExponentialDecay", …}' });
const clipping = ["clipnorm", "clipvalue", "global_clipnorm"].map((name) => ({ name, kind: "float", default: null, step: 0.1, min: 0, empty: "none" }));
const betas = [{ name: "beta_1", kind: "float", default: 0.9, step: 0.01 }, { name: "beta_2", kind: "float", default: 0.999, step: 0.001 }];
export const OPTIMIZERS = {
  SGD: [lr(0.01), { name: "momentum", kind: "float", default: 0, step: 0.1 }, { name: "nesterov", kind: "bool", default: false }, ...clipping],
  Adagrad: [lr(0.001), ...clipping],
  RMSprop: [lr(0.001), { name: "rho", kind: "float", default: 0.9, step: 0.01 }, ...clipping],
  Adam: [lr(0.001), ...betas, ...clipping],
  Adamax: [lr(0.001), ...betas, ...clipping],
  Nadam: [lr(0.001), ...betas, ...clipping],
};

export const FIT = [
  { name: "epochs", kind: "int", default: 10, min: 1 },
  { name: "batch_size", kind: "int", default: 32, min: 1 },
  { name: "validation_size", kind: "int", default: 5000, min: 0 },
  { name: "train_size", kind: "int", default: null, min: 1, empty: "all" },
  { name: "seed", kind: "int", default: 42, min: 0 },
  { name: "validation_split", kind: "float", default: null, step: 0.05, min: 0, max: 0.99, empty: "none" },
  { name: "layer_health", kind: "bool", default: true },
  { name: "early_stopping", kind: "json", placeholder: '{"monitor": "val_loss", "patience": 2}' },
  { name: "reduce_lr_on_plateau", kind: "json", placeholder: '{"factor": 0.5, "patience": 2}' },
];
