//! The `eval` program's loop, written once for every board: bytes in from any serial port that
//! implements `embedded_io::{Read, Write}` (the CMSDK and nRF51 UART drivers here, or a HAL's
//! serial port through [`crate::nb_serial`]), `microdnn::link` frames decoded, each answered by a
//! [`Responder`] (the program's network and instruction counter).
//!
//! At start it sends one unsolicited frame, [`kind::PONG`] with sequence number 0 and payload
//! [`HELLO`]: a host must wait for it before sending (QEMU's STM32 USART drops bytes that arrive
//! before the port is enabled), and may ignore it when it connects to a board already running.

use embedded_io::{Read, Write};
use microdnn::link::{self, kind, FrameDecoder, Responder};

/// Payload of the frame the device sends once it listens.
pub const HELLO: &[u8] = b"microdnn eval ready";

/// Working memory of [`serve`], sized by the caller for its model.
pub struct Buffers<'a, const N: usize> {
    /// Frame decoder holding one INFER frame (`link::decoder_capacity(inputs * 4)`).
    pub decoder: &'a mut FrameDecoder<N>,
    /// Decoded inputs (at least the model's input count).
    pub inputs: &'a mut [f32],
    /// Answer payload (at least `link::RESULT_HEADER_LEN` + 4 × outputs bytes).
    pub payload: &'a mut [u8],
    /// Encoded answer (`link::max_encoded_len` of `payload`).
    pub tx: &'a mut [u8],
    /// Receive chunk.
    pub rx: &'a mut [u8],
}

/// Sends the hello frame, then answers frames from `serial` forever. A read or write error
/// (an overrun: bytes were lost) is logged; the decoder resynchronises at the next frame.
pub fn serve<S: Read + Write, R: Responder, const N: usize>(
    serial: &mut S,
    device: &mut R,
    b: Buffers<'_, N>,
) -> ! {
    match link::encode_frame(kind::PONG, 0, HELLO, b.tx) {
        Ok(n) => {
            if serial.write_all(b.tx.get(..n).unwrap_or_default()).is_err() {
                defmt::warn!("eval: could not send the hello frame");
            }
        }
        Err(e) => defmt::warn!("eval: hello frame: {}", e),
    }
    loop {
        let n = match serial.read(b.rx) {
            Ok(n) => n,
            Err(_) => {
                defmt::warn!("eval: serial receive error (bytes lost)");
                continue;
            }
        };
        // `get`, not indexing: no panic path is linked into the program (a port that reported
        // more bytes than the buffer holds would be a driver bug; its bytes are dropped).
        for &byte in b.rx.get(..n).unwrap_or_default() {
            if let Some(received) = b.decoder.push(byte) {
                let len = link::respond(device, received, b.inputs, b.payload, b.tx);
                if serial
                    .write_all(b.tx.get(..len).unwrap_or_default())
                    .is_err()
                {
                    defmt::warn!("eval: serial write failed");
                }
            }
        }
    }
}
