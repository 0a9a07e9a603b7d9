//! int8 networks whose layer widths are checked at compile time: [`qnetwork!`](crate::qnetwork).
//!
//! The int8 twin of [`network!`](macro@crate::network): each layer's `[i8; N]` output buffer is passed
//! to the next layer as a `&[i8; N]`, so widths that do not line up are a type error (E0308).
//!
//! ```
//! microdnn::qnetwork! {
//!     /// A small int8 digits classifier.
//!     pub struct QDigits(QDigitsBuffers) {
//!         hidden: QDense<64, 32>,
//!         out: QDense<32, 10>,
//!     }
//! }
//! assert_eq!(QDigits::MACS, 64 * 32 + 32 * 10);
//! assert_eq!(QDigits::RAM_BYTES, 32 + 10);
//! ```
//!
//! ```compile_fail
//! microdnn::qnetwork! {
//!     pub struct Broken(BrokenBuffers) {
//!         hidden: QDense<64, 32>,
//!         out: QDense<31, 10>, // 32 outputs feed 31 inputs: does not compile
//!     }
//! }
//! ```

/// Index of the largest element (the first one on ties); 0 for an empty slice. The class an
/// int8 classifier predicts: quantization is monotonic, so the largest byte is the largest real
/// value.
pub fn argmax(y: &[i8]) -> usize {
    let mut best = 0;
    for (i, &v) in y.iter().enumerate() {
        if y.get(best).is_some_and(|&b| v > b) {
            best = i;
        }
    }
    best
}

/// Declares an int8 network type: a sequence of [`QDense`](crate::quant::QDense) layers, each
/// with its [`QActivation`](crate::quant::QActivation), whose widths are checked at compile
/// time. See the [module docs](crate::quant::network) for an example.
///
/// `qnetwork! { pub struct Name(NameBuffers) { a: QDense<I, H>, b: QDense<H, O>, ... } }`
/// generates
/// - `Name<'a>` with one public [`QLayer<'a, I, O>`](crate::quant::QLayer) field per layer,
/// - `NameBuffers`, one `[i8; N]` buffer per layer (`NameBuffers::new()` is `const`),
/// - the constants `INPUTS`, `OUTPUTS`, `MACS`, `PARAMS`, `RAM_BYTES`, `LAYERS`, and methods
///   `forward`, `predict`, `flash_bytes` (weights, biases, kernel biases, multipliers) and
///   `from_model` (from a validated int8 model file, read in place).
///
/// Widths are tokens: literals (`784`) or constant names (`HIDDEN`), or `{ expressions }`.
#[macro_export]
macro_rules! qnetwork {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $bufs:ident ) {
            $first:ident : QDense<$fi:tt, $fo:tt>
            $(, $rest:ident : QDense<$ri:tt, $ro:tt> )* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug)]
        $vis struct $name<'a> {
            #[doc = concat!("Layer `", stringify!($first), "`: ", stringify!($fi), " -> ", stringify!($fo), ".")]
            pub $first: $crate::quant::QLayer<'a, $fi, $fo>,
            $(
                #[doc = concat!("Layer `", stringify!($rest), "`: ", stringify!($ri), " -> ", stringify!($ro), ".")]
                pub $rest: $crate::quant::QLayer<'a, $ri, $ro>,
            )*
        }

        #[doc = concat!("int8 activation buffers of [`", stringify!($name), "`]: one per layer \
                         output, all the RAM a forward pass needs besides the input.")]
        #[derive(Clone, Debug, PartialEq)]
        $vis struct $bufs {
            #[doc = concat!("Output of `", stringify!($first), "`.")]
            pub $first: [i8; $fo],
            $(
                #[doc = concat!("Output of `", stringify!($rest), "`.")]
                pub $rest: [i8; $ro],
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
                $bufs { $first: [0; $fo], $( $rest: [0; $ro], )* }
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
            /// Weights and biases.
            pub const PARAMS: usize = ($fi + 1) * $fo $( + ($ri + 1) * $ro )*;
            /// Bytes of activation buffers: the RAM a forward pass needs besides the input.
            pub const RAM_BYTES: usize = ::core::mem::size_of::<$bufs>();
            /// Number of layers.
            pub const LAYERS: usize = [stringify!($first) $(, stringify!($rest))*].len();

            /// Runs the network on the int8 input `x`; the int8 output lives in `bufs`.
            #[inline]
            pub fn forward<'b>(&self, x: &[i8; $fi], bufs: &'b mut $bufs) -> &'b [i8; $bufs::OUTPUTS] {
                self.$first.forward(x, &mut bufs.$first);
                let h = &bufs.$first;
                $(
                    self.$rest.forward(h, &mut bufs.$rest);
                    let h = &bufs.$rest;
                )*
                h
            }

            /// Builds the network from a validated int8 model file
            /// ([`ModelView::new_checked`]($crate::ModelView::new_checked)), reading weights,
            /// biases and multipliers in place. The file's input transform and input and
            /// output quantization are the caller's to apply
            /// ([`ModelView::transform_input`]($crate::ModelView::transform_input),
            /// [`ModelView::input_quantization`]($crate::ModelView::input_quantization)).
            ///
            /// Fails with [`ModelError::LayerCount`]($crate::ModelError::LayerCount) or
            /// [`ModelError::LayerShape`]($crate::ModelError::LayerShape) (naming the layer and
            /// the dimension) unless every layer of the file has this type's widths, and with
            /// [`ModelError::WeightType`]($crate::ModelError::WeightType) for an f32 file.
            pub fn from_model(model: &$crate::ModelView<'a>) -> Result<Self, $crate::ModelError> {
                model.expect_layers(Self::LAYERS)?;
                let mut index = 0;
                let $first = model.qlayer::<$fi, $fo>(index)?;
                $(
                    index += 1;
                    let $rest = model.qlayer::<$ri, $ro>(index)?;
                )*
                let _ = index;
                Ok($name { $first $(, $rest)* })
            }

            /// The index of the largest output (the predicted class).
            pub fn predict(&self, x: &[i8; $fi], bufs: &mut $bufs) -> usize {
                $crate::quant::network::argmax(self.forward(x, bufs))
            }

            /// Bytes of parameters in flash (weights, biases, kernel biases, multipliers and
            /// shifts; per-tensor layers store one multiplier).
            pub fn flash_bytes(&self) -> usize {
                self.$first.dense.flash_bytes() $( + self.$rest.dense.flash_bytes() )*
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(super::argmax(&[]), 0);
        assert_eq!(super::argmax(&[-128]), 0);
        assert_eq!(super::argmax(&[-5, 7, 7, -128]), 1);
        assert_eq!(super::argmax(&[-128, -128, -127]), 2);
    }
}
