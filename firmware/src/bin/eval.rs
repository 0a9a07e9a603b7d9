//! Serves inference requests over the board's serial port (the host ↔ device link of
//! `microdnn::link`), on every board: the loop is `microdnn_firmware::server`, generic over
//! `embedded_io`; the board module brings up its port (`board::serial()`).
//!
//! Runs the model compiled in by `build.rs` (`MICRODNN_MODEL`, see
//! `microdnn_firmware::eval_model`), f32 or int8: each INFER frame's inputs go through the
//! model's input transform and the network (int8: quantized before, outputs dequantized after);
//! the answer carries the outputs, the predicted class and the instructions spent (exact under QEMU `-icount shift=3,sleep=off`). Garbage, truncated or
//! corrupted frames and wrong lengths get an error frame back; the program never stops serving.
//!
//! `microdnn eval --device qemu --target NAME` starts it with the serial port on a socket, waits
//! for its hello frame and streams a test set; on a real board, `--device /dev/ttyACM0`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use microdnn::link::{self, DeviceInfo, FrameDecoder, Responder};
use microdnn::ModelView;
use microdnn_firmware::eval_model::{Buffers, Model, INPUTS, MODEL, OUTPUTS, SOURCE};
use microdnn_firmware::icount::InstructionCounter;
use microdnn_firmware::{board, runtime, server};

/// Receive buffer: holds an encoded INFER frame with the model's inputs.
const MAX_FRAME: usize = link::decoder_capacity(INPUTS * 4);
/// Largest answer payload: a RESULT with the model's outputs.
const MAX_PAYLOAD: usize = link::RESULT_HEADER_LEN + OUTPUTS * 4 + 64;

struct Device<'a> {
    model: Model<'a>,
    bufs: &'a mut Buffers,
    x: &'a mut [f32; INPUTS],
    y: [f32; OUTPUTS],
    counter: InstructionCounter,
    info: DeviceInfo,
}

impl Responder for Device<'_> {
    fn info(&self) -> DeviceInfo {
        self.info
    }

    fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]) {
        self.x.iter_mut().zip(x).for_each(|(d, s)| *d = *s);
        let (model, bufs, xs, y) = (&self.model, &mut *self.bufs, &mut *self.x, &mut self.y);
        let (class, instructions) = self.counter.measure(|| model.infer(xs, bufs, y));
        (class as u16, instructions, &self.y)
    }
}

#[entry]
fn main() -> ! {
    static mut BUFFERS: Buffers = Buffers::new();
    static mut INPUT: [f32; INPUTS] = [0.0; INPUTS];
    static mut SCRATCH: [f32; INPUTS] = [0.0; INPUTS];
    static mut DECODER: FrameDecoder<MAX_FRAME> = FrameDecoder::new();
    static mut PAYLOAD: [u8; MAX_PAYLOAD] = [0; MAX_PAYLOAD];
    static mut TX: [u8; link::max_encoded_len(MAX_PAYLOAD)] =
        [0; link::max_encoded_len(MAX_PAYLOAD)];
    static mut RX: [u8; 64] = [0; 64];

    let view = match ModelView::new_checked(&MODEL.0) {
        Ok(v) => v,
        Err(e) => {
            defmt::error!("eval: the compiled-in model is invalid: {}", e);
            runtime::exit(false)
        }
    };
    let model = match Model::new(view) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("eval: the model does not fit the network type: {}", e);
            runtime::exit(false)
        }
    };
    let Some(p) = cortex_m::Peripherals::take() else {
        defmt::panic!("peripherals already taken")
    };
    let info = DeviceInfo {
        inputs: INPUTS as u32,
        outputs: OUTPUTS as u32,
        layers: Model::LAYERS as u32,
        macs: Model::MACS as u32,
        flash_bytes: 0,
        ram_bytes: Model::RAM_BYTES as u32,
    };
    defmt::println!(
        "eval on {=str}: model from {=str}: {=usize} layers, {=usize} MACs, {=usize} bytes of activation buffers; serving on the serial port",
        board::NAME,
        SOURCE,
        Model::LAYERS,
        Model::MACS,
        Model::RAM_BYTES
    );
    let mut device = Device {
        model,
        bufs: BUFFERS,
        x: INPUT,
        y: [0.0; OUTPUTS],
        counter: InstructionCounter::start(p.SYST),
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
