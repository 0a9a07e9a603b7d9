// The demo networks' definitions, shared word for word by `build.rs` (on the host, where it
// computes the expected outputs with microdnn's own `forward`) and `src/model.rs` (on the device,
// which picks one by the board's flash: see `build.rs`).

microdnn::network! {
    /// The demo network: 784-128-64-10 (an MNIST-sized classifier), ReLU, ReLU, softmax.
    pub struct Mnist(MnistBuffers) {
        fc1: Dense<784, 128>,
        fc2: Dense<128, 64>,
        fc3: Dense<64, 10>,
    }
}

microdnn::network! {
    /// The demo network of boards with less than 512 KiB of flash: 64-32-16-10 (a digits-sized
    /// classifier), ReLU, ReLU, softmax.
    pub struct Small(SmallBuffers) {
        fc1: Dense<64, 32>,
        fc2: Dense<32, 16>,
        fc3: Dense<16, 10>,
    }
}

/// Activations of `fc1`, `fc2`, `fc3`.
pub const ACTIVATIONS: [microdnn::Activation; 3] = [
    microdnn::Activation::Relu,
    microdnn::Activation::Relu,
    microdnn::Activation::Softmax,
];

/// `(inputs, outputs)` of `fc1`, `fc2`, `fc3` of [`Mnist`].
pub const MNIST_SHAPES: [(usize, usize); 3] = [(784, 128), (128, 64), (64, 10)];

/// `(inputs, outputs)` of `fc1`, `fc2`, `fc3` of [`Small`].
pub const SMALL_SHAPES: [(usize, usize); 3] = [(64, 32), (32, 16), (16, 10)];

/// Seed of the deterministic weights and input (`microdnn::Rng`).
pub const SEED: u64 = 0x6d69_6372_6f64_6e6e; // "microdnn"

/// Dropout rate on `fc1` and `fc2` outputs for the Monte-Carlo check of the self-test.
pub const MC_DROPOUT_RATE: f32 = 0.2;

/// Seed of the Monte-Carlo dropout masks of the self-test's check.
pub const MC_SEED: u64 = 7;

microdnn::qnetwork! {
    /// The int8 twin of [`Mnist`] (784-128-64-10): ReLU fused into `fc1` and `fc2`, softmax
    /// after `fc3`; TFLite Micro's arithmetic.
    pub struct QMnist(QMnistBuffers) {
        fc1: QDense<784, 128>,
        fc2: QDense<128, 64>,
        fc3: QDense<64, 10>,
    }
}

microdnn::qnetwork! {
    /// The int8 twin of [`Small`] (64-32-16-10).
    pub struct QSmall(QSmallBuffers) {
        fc1: QDense<64, 32>,
        fc2: QDense<32, 16>,
        fc3: QDense<16, 10>,
    }
}

/// Seed of the int8 demo network's weights and input (`microdnn::Rng`).
pub const Q_SEED: u64 = 0x0069_6e74_385f_6e6e; // "int8_nn"
