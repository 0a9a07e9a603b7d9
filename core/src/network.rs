//! Networks whose layer widths are checked at compile time.
//!
//! [`network!`](macro@crate::network) declares a network type from a list of dense layers. Each layer's
//! output buffer is passed to the next layer as a `&[f32; N]`, so a network whose widths do not
//! line up is a type error (E0308), not a run-time failure:
//!
//! ```
//! microdnn::network! {
//!     /// A small digits classifier.
//!     pub struct Digits(DigitsBuffers) {
//!         hidden: Dense<64, 32>,
//!         out: Dense<32, 10>,
//!     }
//! }
//! assert_eq!(Digits::MACS, 64 * 32 + 32 * 10);
//! assert_eq!(Digits::RAM_BYTES, (32 + 10) * 4);
//! ```
//!
//! ```compile_fail
//! microdnn::network! {
//!     pub struct Broken(BrokenBuffers) {
//!         hidden: Dense<64, 32>,
//!         out: Dense<31, 10>, // 32 outputs feed 31 inputs: does not compile
//!     }
//! }
//! ```
//!
//! The generated `*Buffers` struct holds one activation buffer per layer and nothing else: its
//! size, `RAM_BYTES`, is all the RAM a forward pass needs besides the caller's input, known at
//! compile time (place it in a `static` and the linker accounts for it).

use crate::{McDropout, Rng};

/// What every type declared with [`network!`](macro@crate::network) offers, for generic code such as
/// [`mc_predict`].
pub trait Network {
    /// Number of inputs.
    const INPUTS: usize;
    /// Number of outputs.
    const OUTPUTS: usize;
    /// Multiply-accumulates per forward pass.
    const MACS: usize;
    /// Parameters (weights and biases).
    const PARAMS: usize;
    /// Bytes of activation buffers (the network's `*Buffers` type).
    const RAM_BYTES: usize;
    /// The input vector, `[f32; INPUTS]`.
    type Input;
    /// The output vector, `[f32; OUTPUTS]`.
    type Output: AsRef<[f32]> + AsMut<[f32]>;
    /// The activation buffers.
    type Buffers;

    /// Runs the network; the returned output lives in `bufs`.
    fn forward<'b>(&self, x: &Self::Input, bufs: &'b mut Self::Buffers) -> &'b Self::Output;

    /// Runs the network with dropout on (each layer's `dropout_rate`), for Monte-Carlo passes.
    fn forward_mc<'b>(
        &self,
        x: &Self::Input,
        bufs: &'b mut Self::Buffers,
        rng: &mut Rng,
    ) -> &'b Self::Output;
}

impl<const I: usize, const O: usize> crate::Layer<'_, I, O> {
    /// [`Layer::forward`](crate::Layer::forward), then Monte-Carlo dropout on the output with
    /// this layer's `dropout_rate` (skipped if the rate is 0 or not in `[0, 1)`).
    #[inline]
    pub fn forward_mc(&self, x: &[f32; I], y: &mut [f32; O], rng: &mut Rng) {
        self.forward(x, y);
        if self.dropout_rate > 0.0 {
            if let Ok(d) = McDropout::new(self.dropout_rate) {
                d.apply(y, rng);
            }
        }
    }
}

/// Index of the largest element (the first one on ties; NaNs are never chosen unless every
/// element is NaN, then 0). 0 for an empty slice.
pub fn argmax(y: &[f32]) -> usize {
    let mut best = 0;
    let mut best_v = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in y.iter().enumerate() {
        if v > best_v || (!found && !v.is_nan()) {
            best = i;
            best_v = v;
            found = true;
        }
    }
    best
}

/// Monte-Carlo prediction: runs `passes` stochastic forward passes and writes the mean and the
/// (population) standard deviation of each output.
///
/// Uses Welford's update, so no pass is stored. Reproducible for a given `rng` state. For
/// class probabilities with entropies (softmax or logit outputs), drive [`crate::mc::McAccumulator`]
/// with [`Network::forward_mc`] instead.
///
/// ```
/// use core::num::NonZeroU32;
/// use microdnn::{kernel, mc_predict, Activation, Dense, Layer, Rng};
/// microdnn::network! { pub struct Tiny(TinyBuffers) { a: Dense<2, 8>, b: Dense<8, 2> } }
/// let (w1, b1, w2, b2) = ([[0.5f32; 2]; 8], [0.1f32; 8], [[0.25f32; 8]; 2], [0.0f32; 2]);
/// let net = Tiny {
///     a: Layer::new(Dense::new(&w1, &b1), Activation::Relu).with_dropout(0.5),
///     b: Layer::new(Dense::new(&w2, &b2), Activation::Softmax),
/// };
/// let (mut mean, mut std) = ([0.0; 2], [0.0; 2]);
/// let mut bufs = TinyBuffers::new();
/// let passes = NonZeroU32::new(16).unwrap();
/// mc_predict(&net, &[1.0, 2.0], &mut bufs, &mut Rng::new(9), passes, &mut mean, &mut std);
/// assert!((mean[0] + mean[1] - 1.0).abs() < 1e-5);
/// ```
pub fn mc_predict<N: Network>(
    net: &N,
    x: &N::Input,
    bufs: &mut N::Buffers,
    rng: &mut Rng,
    passes: core::num::NonZeroU32,
    mean: &mut N::Output,
    std: &mut N::Output,
) {
    let (mean, std) = (mean.as_mut(), std.as_mut());
    mean.iter_mut().for_each(|v| *v = 0.0);
    std.iter_mut().for_each(|v| *v = 0.0); // holds M2 (sum of squared deviations) until the end
    for k in 1..=passes.get() {
        let y = net.forward_mc(x, bufs, rng).as_ref();
        crate::mc::welford(mean, std, y, k);
    }
    let n = passes.get() as f32;
    std.iter_mut().for_each(|m2| *m2 = libm::sqrtf(*m2 / n));
}

/// Declares a network type: a sequence of dense layers (each with its activation) whose widths
/// are checked at compile time. See the [module docs](macro@crate::network) for an example.
///
/// `network! { pub struct Name(NameBuffers) { a: Dense<I, H>, b: Dense<H, O>, ... } }` generates
/// - `Name<'a>` with one public [`Layer<'a, I, O>`](crate::Layer) field per layer,
/// - `NameBuffers`, one `[f32; N]` activation buffer per layer (`NameBuffers::new()` is `const`),
/// - the constants `INPUTS`, `OUTPUTS`, `MACS`, `PARAMS`, `RAM_BYTES` and `FLASH_BYTES` (bytes of
///   f32 parameters), and methods `forward`, `forward_mc` and `predict`,
/// - an implementation of [`Network`](crate::Network).
///
/// Widths are tokens: literals (`784`) or constant names (`HIDDEN`), or `{ expressions }`.
#[macro_export]
macro_rules! network {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $bufs:ident ) {
            $first:ident : Dense<$fi:tt, $fo:tt>
            $(, $rest:ident : Dense<$ri:tt, $ro:tt> )* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug)]
        $vis struct $name<'a> {
            #[doc = concat!("Layer `", stringify!($first), "`: ", stringify!($fi), " -> ", stringify!($fo), ".")]
            pub $first: $crate::Layer<'a, $fi, $fo>,
            $(
                #[doc = concat!("Layer `", stringify!($rest), "`: ", stringify!($ri), " -> ", stringify!($ro), ".")]
                pub $rest: $crate::Layer<'a, $ri, $ro>,
            )*
        }

        #[doc = concat!("Activation buffers of [`", stringify!($name), "`]: one per layer output, \
                         all the RAM a forward pass needs besides the input.")]
        #[derive(Clone, Debug, PartialEq)]
        $vis struct $bufs {
            #[doc = concat!("Output of `", stringify!($first), "`.")]
            pub $first: [f32; $fo],
            $(
                #[doc = concat!("Output of `", stringify!($rest), "`.")]
                pub $rest: [f32; $ro],
            )*
        }

        #[allow(dead_code)]
        impl $bufs {
            /// Width of the network's output.
            #[allow(unused_assignments, unused_mut)]
            pub const OUTPUTS: usize = {
                let mut o = $fo;
                $( o = $ro; )*
                o
            };

            /// Zeroed buffers (`const`, so they can live in a `static`).
            pub const fn new() -> Self {
                $bufs { $first: [0.0; $fo], $( $rest: [0.0; $ro], )* }
            }
        }

        impl ::core::default::Default for $bufs {
            fn default() -> Self {
                Self::new()
            }
        }

        #[allow(dead_code)]
        impl<'a> $name<'a> {
            /// Number of inputs.
            pub const INPUTS: usize = $fi;
            /// Number of outputs.
            pub const OUTPUTS: usize = $bufs::OUTPUTS;
            /// Multiply-accumulates per forward pass.
            pub const MACS: usize = $fi * $fo $( + $ri * $ro )*;
            /// Parameters (weights and biases).
            pub const PARAMS: usize = ($fi + 1) * $fo $( + ($ri + 1) * $ro )*;
            /// Bytes of activation buffers: the RAM a forward pass needs besides the input.
            pub const RAM_BYTES: usize = ::core::mem::size_of::<$bufs>();
            /// Bytes of f32 parameters (what the weights occupy in flash).
            pub const FLASH_BYTES: usize = Self::PARAMS * 4;

            /// Runs the network on `x`; the output lives in `bufs`.
            #[inline]
            pub fn forward<'b>(&self, x: &[f32; $fi], bufs: &'b mut $bufs) -> &'b [f32; $bufs::OUTPUTS] {
                self.$first.forward(x, &mut bufs.$first);
                let h = &bufs.$first;
                $(
                    self.$rest.forward(h, &mut bufs.$rest);
                    let h = &bufs.$rest;
                )*
                h
            }

            /// Runs the network with Monte-Carlo dropout (see [`microdnn::mc_predict`]).
            pub fn forward_mc<'b>(
                &self,
                x: &[f32; $fi],
                bufs: &'b mut $bufs,
                rng: &mut $crate::Rng,
            ) -> &'b [f32; $bufs::OUTPUTS] {
                self.$first.forward_mc(x, &mut bufs.$first, rng);
                let h = &bufs.$first;
                $(
                    self.$rest.forward_mc(h, &mut bufs.$rest, rng);
                    let h = &bufs.$rest;
                )*
                h
            }

            /// Number of layers.
            pub const LAYERS: usize = [stringify!($first) $(, stringify!($rest))*].len();

            /// Builds the network from a validated model file, reading weights in place.
            ///
            /// Fails with [`ModelError::LayerCount`]($crate::ModelError::LayerCount) or
            /// [`ModelError::LayerShape`]($crate::ModelError::LayerShape) (naming the layer and
            /// the dimension) unless every layer of the file has this type's widths, and with
            /// [`ModelError::WeightType`]($crate::ModelError::WeightType) for an int8 file
            /// (`qnetwork!` reads those).
            pub fn from_model(model: &$crate::ModelView<'a>) -> Result<Self, $crate::ModelError> {
                model.expect_layers(Self::LAYERS)?;
                let mut index = 0;
                let $first = model.dense_layer::<$fi, $fo>(index)?;
                $(
                    index += 1;
                    let $rest = model.dense_layer::<$ri, $ro>(index)?;
                )*
                let _ = index;
                Ok($name { $first $(, $rest)* })
            }

            /// The index of the largest output (the predicted class).
            pub fn predict(&self, x: &[f32; $fi], bufs: &mut $bufs) -> usize {
                $crate::argmax(self.forward(x, bufs))
            }
        }

        impl<'a> $crate::Network for $name<'a> {
            const INPUTS: usize = $fi;
            const OUTPUTS: usize = $bufs::OUTPUTS;
            const MACS: usize = Self::MACS;
            const PARAMS: usize = Self::PARAMS;
            const RAM_BYTES: usize = Self::RAM_BYTES;
            type Input = [f32; $fi];
            type Output = [f32; $bufs::OUTPUTS];
            type Buffers = $bufs;

            fn forward<'b>(&self, x: &Self::Input, bufs: &'b mut $bufs) -> &'b Self::Output {
                $name::forward(self, x, bufs)
            }

            fn forward_mc<'b>(
                &self,
                x: &Self::Input,
                bufs: &'b mut $bufs,
                rng: &mut $crate::Rng,
            ) -> &'b Self::Output {
                $name::forward_mc(self, x, bufs, rng)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    extern crate std;
    use crate::{kernel, Activation, Dense, Layer, Rng};
    use core::num::NonZeroU32;
    use std::vec::Vec;

    crate::network! {
        /// Test network.
        pub struct Mlp(MlpBuffers) {
            a: Dense<5, 7>,
            b: Dense<7, 3>,
            c: Dense<3, 4>,
        }
    }

    fn params(rng: &mut Rng, i: usize, o: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let rows: Vec<f32> = (0..i * o).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut packed = std::vec![0.0; i * o];
        kernel::pack(&rows, i, o, &mut packed).unwrap();
        let bias = (0..o).map(|_| rng.uniform(-0.5, 0.5)).collect();
        (rows, packed, bias)
    }

    #[test]
    fn forward_equals_layer_by_layer_and_constants_are_right() {
        let mut rng = Rng::new(1);
        let (_, wa, ba) = params(&mut rng, 5, 7);
        let (_, wb, bb) = params(&mut rng, 7, 3);
        let (_, wc, bc) = params(&mut rng, 3, 4);
        let net = Mlp {
            a: Layer::new(Dense::from_slices(&wa, &ba).unwrap(), Activation::Relu),
            b: Layer::new(Dense::from_slices(&wb, &bb).unwrap(), Activation::Tanh),
            c: Layer::new(Dense::from_slices(&wc, &bc).unwrap(), Activation::Softmax),
        };
        assert_eq!(Mlp::INPUTS, 5);
        assert_eq!(Mlp::OUTPUTS, 4);
        assert_eq!(Mlp::MACS, 35 + 21 + 12);
        assert_eq!(Mlp::PARAMS, 42 + 24 + 16);
        assert_eq!(Mlp::RAM_BYTES, (7 + 3 + 4) * 4);
        let x = [0.5, -1.0, 2.0, 0.0, 1.5];
        let mut bufs = MlpBuffers::new();
        let y = *net.forward(&x, &mut bufs);

        let (mut h1, mut h2, mut h3) = ([0.0; 7], [0.0; 3], [0.0; 4]);
        kernel::dense(&wa, &ba, &x, &mut h1).unwrap();
        Activation::Relu.apply(&mut h1);
        kernel::dense(&wb, &bb, &h1, &mut h2).unwrap();
        Activation::Tanh.apply(&mut h2);
        kernel::dense(&wc, &bc, &h2, &mut h3).unwrap();
        Activation::Softmax.apply(&mut h3);
        assert_eq!(y, h3);
        assert_eq!(net.predict(&x, &mut bufs), crate::argmax(&h3));
    }

    #[test]
    fn mc_dropout_is_reproducible_and_off_by_default() {
        let mut rng = Rng::new(2);
        let (_, wa, ba) = params(&mut rng, 5, 7);
        let (_, wb, bb) = params(&mut rng, 7, 3);
        let (_, wc, bc) = params(&mut rng, 3, 4);
        let mut net = Mlp {
            a: Layer::new(Dense::from_slices(&wa, &ba).unwrap(), Activation::Relu),
            b: Layer::new(Dense::from_slices(&wb, &bb).unwrap(), Activation::Relu),
            c: Layer::new(Dense::from_slices(&wc, &bc).unwrap(), Activation::Softmax),
        };
        let x = [1.0, 1.0, -1.0, 0.5, 2.0];
        let mut bufs = MlpBuffers::new();
        let det = *net.forward(&x, &mut bufs);
        let passes = NonZeroU32::new(8).unwrap();
        let (mut m, mut s) = ([0.0; 4], [0.0; 4]);
        crate::mc_predict(
            &net,
            &x,
            &mut bufs,
            &mut Rng::new(3),
            passes,
            &mut m,
            &mut s,
        );
        assert_eq!(s, [0.0; 4], "no dropout: every pass is the same");
        for (a, b) in m.iter().zip(det.iter()) {
            assert!((a - b).abs() <= 1e-6);
        }
        net.a.dropout_rate = 0.5;
        let (mut m1, mut s1, mut m2, mut s2) = ([0.0; 4], [0.0; 4], [0.0; 4], [0.0; 4]);
        crate::mc_predict(
            &net,
            &x,
            &mut bufs,
            &mut Rng::new(3),
            passes,
            &mut m1,
            &mut s1,
        );
        crate::mc_predict(
            &net,
            &x,
            &mut bufs,
            &mut Rng::new(3),
            passes,
            &mut m2,
            &mut s2,
        );
        assert_eq!((m1, s1), (m2, s2), "same seed, same result");
        assert!(s1.iter().any(|&v| v > 0.0), "dropout makes passes differ");
        assert!((m1.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        // Welford against a direct two-pass computation.
        let mut rng = Rng::new(3);
        let runs: Vec<[f32; 4]> = (0..8)
            .map(|_| *net.forward_mc(&x, &mut bufs, &mut rng))
            .collect();
        for j in 0..4 {
            let mean = runs.iter().map(|r| r[j] as f64).sum::<f64>() / 8.0;
            let var = runs
                .iter()
                .map(|r| (r[j] as f64 - mean).powi(2))
                .sum::<f64>()
                / 8.0;
            assert!((m1[j] as f64 - mean).abs() < 1e-5);
            assert!((s1[j] as f64 - var.sqrt()).abs() < 1e-4);
        }
    }

    #[test]
    fn argmax_rules() {
        assert_eq!(crate::argmax(&[]), 0);
        assert_eq!(crate::argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(crate::argmax(&[f32::NAN, -1.0, -2.0]), 1);
        assert_eq!(crate::argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(crate::argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
    }
}
