// What the form offers for each layer type and optimiser: Keras's names and defaults, as the
// service accepts them (README "The spec"). Arguments not listed here are kept untouched.

export const ACTIVATIONS = ["relu", "elu", "selu", "tanh", "sigmoid", "softmax", "leaky_relu", "linear", "gelu",
  "swish", "silu", "softplus", "softsign", "hard_sigmoid", "exponential", "relu6"];
export const INITIALIZERS = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
  "random_normal", "random_uniform", "truncated_normal", "orthogonal", "zeros", "ones"];

const activation = { name: "activation", kind: "choice", options: ["", ...ACTIVATIONS], empty: "none" };
const initializer = { name: "kernel_initializer", kind: "choice", options: INITIALIZERS, default: "glorot_uniform" };
const useBias = { name: "use_bias", kind: "bool", default: true };
const padding = { name: "padding", kind: "choice", options: ["valid", "same"], default: "valid" };

export const LAYERS = {
  Flatten: [],
  Dense: [{ name: "units", kind: "int", default: 100, min: 1 }, activation, initializer, useBias],
  Activation: [{ ...activation, options: ACTIVATIONS, default: "relu" }],
  LeakyReLU: [{ name: "negative_slope", kind: "float", default: 0.3, step: 0.01 }],
  BatchNormalization: [{ name: "momentum", kind: "float", default: 0.99, step: 0.01 }, { name: "epsilon", kind: "float", default: 0.001, step: 0.001 }],
  Dropout: [{ name: "rate", kind: "float", default: 0.2, step: 0.05, min: 0, max: 0.99 }],
  Conv2D: [{ name: "filters", kind: "int", default: 32, min: 1 }, { name: "kernel_size", kind: "int", default: 3, min: 1 },
    { name: "strides", kind: "int", default: 1, min: 1 }, padding, activation, initializer, useBias],
  MaxPooling2D: [{ name: "pool_size", kind: "int", default: 2, min: 1 }, padding],
  Reshape: [{ name: "target_shape", kind: "shape", default: [28, 28, 1] }],
};

const lr = (value) => ({ name: "learning_rate", kind: "float", default: value, step: 0.0001 });
const betas = [{ name: "beta_1", kind: "float", default: 0.9, step: 0.01 }, { name: "beta_2", kind: "float", default: 0.999, step: 0.001 }];
export const OPTIMIZERS = {
  SGD: [lr(0.01), { name: "momentum", kind: "float", default: 0, step: 0.1 }, { name: "nesterov", kind: "bool", default: false }],
  Adagrad: [lr(0.001)],
  RMSprop: [lr(0.001), { name: "rho", kind: "float", default: 0.9, step: 0.01 }],
  Adam: [lr(0.001), ...betas],
  Adamax: [lr(0.001), ...betas],
  Nadam: [lr(0.001), ...betas],
};

export const FIT = [
  { name: "epochs", kind: "int", default: 10, min: 1 },
  { name: "batch_size", kind: "int", default: 32, min: 1 },
  { name: "validation_size", kind: "int", default: 5000, min: 0 },
  { name: "train_size", kind: "int", default: null, min: 1, empty: "all" },
  { name: "seed", kind: "int", default: 42, min: 0 },
];
