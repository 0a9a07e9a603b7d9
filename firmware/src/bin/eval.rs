//! Serves inference requests over the board's serial port (the host ↔ device link of
//! `microdnn::link`), on every board: the loop is `microdnn_firmware::server`, generic over
//! `embedded_io`; the board module brings up its port (`board::serial()`).
//!
//! Runs the model compiled in by `build.rs` (`MICRODNN_MODEL`, see
//! `microdnn_firmware::eval_model`): each INFER frame's inputs go through the model's input
//! transform and the network; the answer carries the outputs, the predicted class and the
//! instructions spent (exact under QEMU `-icount shift=3,sleep=off`). An MC frame runs that many
//! Monte-Carlo dropout passes (`microdnn::mc::run`, the masks from the request's seed) and
//! answers their summary and the instructions spent on all of it. INFO answers the model's shape
//! and the deepest stack used since start-up (the stack is painted first thing,
//! `microdnn_firmware::stack`). Garbage, truncated or corrupted frames and wrong lengths get an
//! error frame back; the program never stops serving.
//!
//! Everything sized by the model is a static (activation buffers, inputs, outputs, the
//! Monte-Carlo vectors, the frame buffers): the stack holds only the call chain's frames.
//!
//! `microdnn eval --device qemu --target NAME` starts it with the serial port on a socket, waits
//! for its hello frame and streams a test set; on a real board, `--device /dev/ttyACM0`.
#![no_std]
#![no_main]

use core::num::NonZeroU16;

use cortex_m_rt::entry;
use microdnn::link::{self, DeviceInfo, ErrorCode, FrameDecoder, McAnswer, Responder};
use microdnn::mc::{self, McOutputs};
use microdnn::ModelView;
use microdnn_firmware::eval_model::{Net, NetBuffers, INPUTS, MODEL, OUTPUTS, SOURCE};
use microdnn_firmware::icount::InstructionCounter;
use microdnn_firmware::stack::StackMeter;
use microdnn_firmware::{board, runtime, server};

/// Receive buffer: holds the largest request, an MC frame with the model's inputs as f32.
const MAX_FRAME: usize = link::decoder_capacity(link::request_payload_capacity(INPUTS));
/// Largest answer payload: an MC_RESULT with the model's outputs (and room for short pings).
const MAX_PAYLOAD: usize = link::answer_payload_capacity(OUTPUTS) + 64;

/// The model-sized vectors of a request (statics: nothing model-sized on the stack): the
/// inputs (transformed in place), the outputs, and the Monte-Carlo summary's mean, standard
/// deviation and one pass's probabilities.
struct Vectors {
    x: [f32; INPUTS],
    y: [f32; OUTPUTS],
    mean: [f32; OUTPUTS],
    std: [f32; OUTPUTS],
    pass: [f32; OUTPUTS],
}

struct Device<'a> {
    net: Net<'a>,
    view: ModelView<'a>,
    bufs: &'a mut NetBuffers,
    v: &'a mut Vectors,
    /// How the network's outputs become class probabilities; `None`: MC refused.
    mc_outputs: Option<McOutputs>,
    counter: InstructionCounter,
    stack: StackMeter,
    info: DeviceInfo,
}

impl Responder for Device<'_> {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            stack_peak_bytes: u32::try_from(self.stack.peak_bytes()).unwrap_or(u32::MAX),
            ..self.info
        }
    }

    fn inputs(&self) -> u32 {
        self.info.inputs
    }

    fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]) {
        let v = &mut *self.v;
        v.x.iter_mut().zip(x).for_each(|(d, s)| *d = *s);
        let (net, view, bufs, xs) = (&self.net, &self.view, &mut *self.bufs, &mut v.x);
        let (out, instructions) = self.counter.measure(|| {
            view.transform_input(xs);
            net.forward(xs, bufs)
        });
        v.y.iter_mut().zip(out).for_each(|(d, s)| *d = *s);
        (microdnn::argmax(&v.y) as u16, instructions, &v.y)
    }

    fn mc(
        &mut self,
        x: &[f32],
        passes: NonZeroU16,
        seed: u64,
    ) -> Result<McAnswer<'_>, ErrorCode> {
        let outputs = self.mc_outputs.ok_or(ErrorCode::Unsupported)?;
        let v = &mut *self.v;
        v.x.iter_mut().zip(x).for_each(|(d, s)| *d = *s);
        let (net, view, bufs) = (&self.net, &self.view, &mut *self.bufs);
        let Vectors {
            x: xs,
            mean,
            std,
            pass,
            ..
        } = v;
        let (summary, instructions) = self.counter.measure(|| {
            view.transform_input(xs);
            mc::run::<core::convert::Infallible>(
                outputs,
                passes.into(),
                seed,
                mean,
                std,
                pass,
                |rng, out| {
                    let y = net.forward_mc(xs, bufs, rng);
                    out.iter_mut().zip(y).for_each(|(d, s)| *d = *s);
                    Ok(())
                },
            )
        });
        let Ok(summary) = summary;
        Ok(McAnswer {
            summary,
            instructions,
            mean: &self.v.mean,
            std: &self.v.std,
        })
    }
}

#[entry]
fn main() -> ! {
    static mut BUFFERS: NetBuffers = NetBuffers::new();
    static mut VECTORS: Vectors = Vectors {
        x: [0.0; INPUTS],
        y: [0.0; OUTPUTS],
        mean: [0.0; OUTPUTS],
        std: [0.0; OUTPUTS],
        pass: [0.0; OUTPUTS],
    };
    static mut SCRATCH: [f32; INPUTS] = [0.0; INPUTS];
    static mut DECODER: FrameDecoder<MAX_FRAME> = FrameDecoder::new();
    static mut PAYLOAD: [u8; MAX_PAYLOAD] = [0; MAX_PAYLOAD];
    static mut TX: [u8; link::max_encoded_len(MAX_PAYLOAD)] =
        [0; link::max_encoded_len(MAX_PAYLOAD)];
    static mut RX: [u8; 64] = [0; 64];

    // First: every later stack frame (start-up, the serving loop, each request) is measured.
    let stack = StackMeter::paint();
    let view = match ModelView::new_checked(&MODEL.0) {
        Ok(v) => v,
        Err(e) => {
            defmt::error!("eval: the compiled-in model is invalid: {}", e);
            runtime::exit(false)
        }
    };
    let net = match Net::from_model(&view) {
        Ok(n) => n,
        Err(e) => {
            defmt::error!("eval: the model does not fit the network type: {}", e);
            runtime::exit(false)
        }
    };
    let p = runtime::take_peripherals();
    let mc_outputs = view
        .layer(Net::LAYERS - 1)
        .and_then(|l| McOutputs::for_activation(l.activation));
    let info = DeviceInfo {
        inputs: INPUTS as u32,
        outputs: OUTPUTS as u32,
        layers: Net::LAYERS as u32,
        macs: Net::MACS as u32,
        flash_bytes: 0,
        ram_bytes: Net::RAM_BYTES as u32,
        stack_peak_bytes: 0,
        stack_bytes: u32::try_from(StackMeter::capacity_bytes()).unwrap_or(u32::MAX),
    };
    defmt::println!(
        "eval on {=str}: model from {=str}: {=usize} layers, {=usize} MACs, {=usize} bytes of activation buffers, Monte-Carlo {=str}; serving on the serial port",
        board::NAME,
        SOURCE,
        Net::LAYERS,
        Net::MACS,
        Net::RAM_BYTES,
        match mc_outputs {
            Some(McOutputs::Probabilities) => "on softmax outputs",
            Some(McOutputs::Logits) => "on logits (softmax per pass)",
            None => "refused (outputs are not class probabilities)",
        }
    );
    let mut device = Device {
        net,
        view,
        bufs: BUFFERS,
        v: VECTORS,
        mc_outputs,
        counter: InstructionCounter::start(p.SYST),
        stack,
        info,
    };
    let mut serial = board::serial();
    server::serve(
        &mut serial,
        &mut device,
        server::Buffers {
            decoder: DECODER,
            inputs: SCRATCH,
            payload: PAYLOAD,
            tx: TX,
            rx: RX,
        },
    )
}
