//! The model compiled into the `eval` program.
//!
//! `build.rs` reads the model file named by `MICRODNN_MODEL` (or encodes the demo network when it
//! is unset), validates it, and generates a network type `Net` with the file's layer widths and
//! weight type (`network!` for f32, `qnetwork!` for int8, with cfg `microdnn_eval_int8`), plus
//! the file itself in flash ([`MODEL`], 16-byte aligned). At start-up the program validates the
//! bytes again and builds the [`Model`]: weights are read in place.
//!
//! [`Model::infer`] is what the device computes for one input, exactly as the host's
//! `ModelView::run` computes it for the same file: the input transform (f32), then for an f32
//! model the network; for an int8 model the input quantized with the file's input quantization
//! (TFLite's `QUANTIZE`), the int8 network (TFLite Micro's arithmetic, the DSP kernel where the
//! core has one), and the int8 outputs dequantized (TFLite's `DEQUANTIZE`), so outputs travel
//! the link as f32 and compare bit for bit with the host's.

use microdnn::mc::{McOutputs, McSummary};
use microdnn::{ModelError, ModelView};

use crate::model::Aligned;

include!(concat!(env!("OUT_DIR"), "/eval_model.rs"));

/// The buffers of one inference: one per layer output and, for an int8 model, the quantized
/// input. All the RAM the network needs besides the f32 input.
pub struct Buffers {
    net: NetBuffers,
    #[cfg(microdnn_eval_int8)]
    input: [i8; INPUTS],
}

impl Buffers {
    /// Zeroed buffers (`const`, so they can live in a `static`).
    pub const fn new() -> Self {
        Buffers {
            net: NetBuffers::new(),
            #[cfg(microdnn_eval_int8)]
            input: [0; INPUTS],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The compiled-in network over a validated model file.
pub struct Model<'a> {
    net: Net<'a>,
    view: ModelView<'a>,
    #[cfg(microdnn_eval_int8)]
    quantization: (microdnn::quant::QuantParams, microdnn::quant::QuantParams),
}

impl<'a> Model<'a> {
    /// Layers.
    pub const LAYERS: usize = Net::LAYERS;
    /// Multiply-accumulates per inference.
    pub const MACS: usize = Net::MACS;
    /// Bytes of [`Buffers`].
    pub const RAM_BYTES: usize = core::mem::size_of::<Buffers>();
    /// Whether the compiled-in network is int8.
    pub const INT8: bool = cfg!(microdnn_eval_int8);

    /// The network of `view` (validated), or the error naming the layer whose shape or weight
    /// type differs from the compiled-in type's.
    pub fn new(view: ModelView<'a>) -> Result<Self, ModelError> {
        Ok(Model {
            net: Net::from_model(&view)?,
            #[cfg(microdnn_eval_int8)]
            quantization: match (view.input_quantization(), view.output_quantization()) {
                (Some(i), Some(o)) => (i, o),
                _ => {
                    return Err(ModelError::WeightType {
                        layer: 0,
                        expected: "int8",
                        found: "f32",
                    })
                }
            },
            view,
        })
    }

    /// One inference: transforms `x` in place, writes the outputs to `y` (int8: dequantized)
    /// and returns the predicted class.
    #[inline(always)]
    pub fn infer(&self, x: &mut [f32; INPUTS], b: &mut Buffers, y: &mut [f32; OUTPUTS]) -> usize {
        self.view.transform_input(x);
        #[cfg(not(microdnn_eval_int8))]
        {
            *y = *self.net.forward(x, &mut b.net);
            microdnn::argmax(y)
        }
        #[cfg(microdnn_eval_int8)]
        {
            let (input, output) = self.quantization;
            for (q, v) in b.input.iter_mut().zip(x.iter()) {
                *q = input.quantize(*v);
            }
            let out = self.net.forward(&b.input, &mut b.net);
            for (y, q) in y.iter_mut().zip(out) {
                *y = output.dequantize(*q);
            }
            // Dequantization is increasing: the largest byte is the largest output.
            microdnn::quant::network::argmax(out)
        }
    }

    /// How the outputs become class probabilities for Monte-Carlo dropout
    /// ([`McOutputs::for_activation`] of the last layer), or `None` if the model cannot serve
    /// it: outputs that are not probabilities or logits, or an int8 model (export drops
    /// dropout and the int8 path has none).
    pub fn mc_outputs(&self) -> Option<McOutputs> {
        if Self::INT8 {
            return None;
        }
        self.view
            .layer(Self::LAYERS - 1)
            .and_then(|l| McOutputs::for_activation(l.activation))
    }

    /// `passes` Monte-Carlo dropout passes on `x` (transformed in place) from `seed`
    /// ([`microdnn::mc::run`] over the network's `forward_mc`), the summary in `mean` and `std`
    /// (`pass`: one pass's probabilities, scratch). `None` for an int8 model.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn mc(
        &self,
        outputs: McOutputs,
        x: &mut [f32; INPUTS],
        b: &mut Buffers,
        passes: core::num::NonZeroU32,
        seed: u64,
        mean: &mut [f32; OUTPUTS],
        std: &mut [f32; OUTPUTS],
        pass: &mut [f32; OUTPUTS],
    ) -> Option<McSummary> {
        #[cfg(not(microdnn_eval_int8))]
        {
            self.view.transform_input(x);
            let net = &self.net;
            let r = microdnn::mc::run::<core::convert::Infallible>(
                outputs,
                passes,
                seed,
                mean,
                std,
                pass,
                |rng, out| {
                    let y = net.forward_mc(x, &mut b.net, rng);
                    out.iter_mut().zip(y).for_each(|(d, s)| *d = *s);
                    Ok(())
                },
            );
            let Ok(summary) = r;
            Some(summary)
        }
        #[cfg(microdnn_eval_int8)]
        {
            let _ = (outputs, x, b, passes, seed, mean, std, pass);
            None
        }
    }
}
