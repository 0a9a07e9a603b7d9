//! The host ↔ device link: a small framed protocol over a byte stream (a UART, a TCP socket to
//! QEMU's emulated UART, a USB serial port).
//!
//! # Frames
//!
//! ```text
//! on the wire:  COBS( kind:u8  seq:u8  len:u16  payload[len]  crc32:u32 )  0x00
//!                     └──────────── CRC-32 (IEEE) over these ────────┘
//! ```
//!
//! All integers and floats are little-endian. COBS (consistent overhead byte stuffing) removes
//! every zero byte from the frame, so `0x00` always ends a frame: after garbage, a lost byte or a
//! reset, the receiver resynchronises at the next `0x00`. The CRC catches corrupted frames; `len`
//! catches truncated ones. A receiver's buffer has a fixed size ([`FrameDecoder<N>`]); an
//! over-long frame is discarded up to its delimiter and reported, never written past the buffer.
//!
//! # Messages
//!
//! | kind | direction | payload |
//! |---|---|---|
//! | [`kind::PING`] | host → device | any bytes, echoed back in [`kind::PONG`] |
//! | [`kind::INFO`] | host → device | empty; answered with [`kind::INFO_REPLY`] |
//! | [`kind::INFER`] | host → device | `inputs` f32 values (raw, before the model's input transform) |
//! | [`kind::INFER_U8`] | host → device | `inputs` bytes, each the raw input value 0..=255 (exact in f32): a quarter of the bytes for 8-bit sensors and images |
//! | [`kind::PONG`] | device → host | the ping's payload |
//! | [`kind::INFO_REPLY`] | device → host | [`DeviceInfo`]: inputs, outputs, layers, MACs, flash and RAM bytes (u32 each) |
//! | [`kind::RESULT`] | device → host | predicted class (u16), reserved (u16), instructions spent (u64, 0 if not measured), then `outputs` f32 values |
//! | [`kind::ERROR`] | device → host | [`ErrorCode`] (u8), reserved (u8), detail (u16): e.g. the expected input count |
//!
//! `seq` is chosen by the host and copied into the answer, so a host can match replies to
//! requests and notice a lost one.

// Everything here handles bytes from the wire: no unchecked arithmetic, truncating cast or
// indexing that could panic.
#![deny(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]

use crate::model::Crc32;

/// Message kinds.
pub mod kind {
    /// Host → device: echo request.
    pub const PING: u8 = 0x01;
    /// Host → device: describe the model.
    pub const INFO: u8 = 0x02;
    /// Host → device: run one inference.
    pub const INFER: u8 = 0x03;
    /// Host → device: run one inference on 8-bit raw inputs.
    pub const INFER_U8: u8 = 0x04;
    /// Device → host: echo reply.
    pub const PONG: u8 = 0x81;
    /// Device → host: model description.
    pub const INFO_REPLY: u8 = 0x82;
    /// Device → host: inference result.
    pub const RESULT: u8 = 0x83;
    /// Device → host: the request could not be served.
    pub const ERROR: u8 = 0xEE;
}

/// Bytes of frame header (kind, seq, len) before the payload.
pub const HEADER_LEN: usize = 4;
/// Bytes of CRC after the payload.
pub const CRC_LEN: usize = 4;

/// Largest encoded size (COBS overhead and delimiter included) of a frame with `payload` bytes.
/// Saturates at `usize::MAX` for payloads too large for any buffer (frames carry at most 65535
/// payload bytes anyway).
pub const fn max_encoded_len(payload: usize) -> usize {
    let raw = payload.saturating_add(HEADER_LEN + CRC_LEN);
    raw.saturating_add(raw / 254).saturating_add(2)
}

/// The [`FrameDecoder`] capacity that receives any frame with up to `payload` bytes of payload:
/// the encoded frame without its delimiter.
pub const fn decoder_capacity(payload: usize) -> usize {
    max_encoded_len(payload).saturating_sub(1)
}

/// Why a frame was rejected (also the code carried by an error frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ErrorCode {
    /// The frame's COBS encoding is invalid.
    BadEncoding = 1,
    /// Shorter than a header and CRC, or shorter than its declared length.
    Truncated = 2,
    /// The CRC does not match.
    BadCrc = 3,
    /// The frame did not fit the receiver's buffer (discarded up to its delimiter).
    TooLong = 4,
    /// An unknown message kind.
    UnknownKind = 5,
    /// A payload of the wrong length (for INFER: not `inputs` f32 values).
    BadLength = 6,
    /// The inputs contain NaN or infinity.
    NonFiniteInput = 7,
    /// Longer than its declared length.
    TrailingBytes = 8,
}

impl ErrorCode {
    /// The code for a byte, if known.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => ErrorCode::BadEncoding,
            2 => ErrorCode::Truncated,
            3 => ErrorCode::BadCrc,
            4 => ErrorCode::TooLong,
            5 => ErrorCode::UnknownKind,
            6 => ErrorCode::BadLength,
            7 => ErrorCode::NonFiniteInput,
            8 => ErrorCode::TrailingBytes,
            _ => return None,
        })
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ErrorCode::BadEncoding => "invalid COBS encoding",
            ErrorCode::Truncated => "truncated frame",
            ErrorCode::BadCrc => "CRC mismatch",
            ErrorCode::TooLong => "frame longer than the receive buffer",
            ErrorCode::UnknownKind => "unknown message kind",
            ErrorCode::BadLength => "payload of the wrong length",
            ErrorCode::NonFiniteInput => "input contains NaN or infinity",
            ErrorCode::TrailingBytes => "frame longer than its declared length",
        })
    }
}

impl core::error::Error for ErrorCode {}

/// A received, checked frame; the payload borrows the decoder's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Frame<'a> {
    /// Message kind ([`kind`]).
    pub kind: u8,
    /// Sequence number, echoed in replies.
    pub seq: u8,
    /// The payload.
    pub payload: &'a [u8],
}

/// Reassembles frames from a byte stream into a fixed buffer of `N` bytes (no heap).
///
/// Feed bytes with [`FrameDecoder::push`]; at each `0x00` it returns the frame or why it was
/// rejected. Frames are decoded in place, so `N` must hold the largest *encoded* frame expected:
/// use [`decoder_capacity`]`(largest payload)`.
///
/// ```
/// use microdnn::link::{self, FrameDecoder};
/// let mut wire = [0u8; 64];
/// let n = link::encode_frame(link::kind::PING, 7, b"hi\0there", &mut wire).unwrap();
/// let mut dec = FrameDecoder::<64>::new();
/// let mut got = None;
/// for &b in &wire[..n] {
///     if let Some(r) = dec.push(b) {
///         let f = r.unwrap();
///         got = Some((f.kind, f.seq, f.payload.to_vec()));
///     }
/// }
/// assert_eq!(got, Some((link::kind::PING, 7, b"hi\0there".to_vec())));
/// ```
#[derive(Debug)]
pub struct FrameDecoder<const N: usize> {
    buf: heapless::Vec<u8, N>,
    overflow: bool,
    /// The buffer holds a returned frame: clear it before the next byte.
    complete: bool,
}

impl<const N: usize> Default for FrameDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameDecoder<N> {
    /// An empty decoder.
    pub const fn new() -> Self {
        FrameDecoder {
            buf: heapless::Vec::new(),
            overflow: false,
            complete: false,
        }
    }

    /// Feeds one byte. Returns `Some` at each frame delimiter (`0x00`) that ends a non-empty
    /// frame: the checked frame, or the reason it was rejected. Empty frames (repeated
    /// delimiters) are skipped silently.
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame<'_>, ErrorCode>> {
        if self.complete {
            self.buf.clear();
            self.complete = false;
        }
        if byte != 0 {
            if self.buf.push(byte).is_err() {
                self.overflow = true;
            }
            return None;
        }
        if self.overflow {
            self.overflow = false;
            self.buf.clear();
            return Some(Err(ErrorCode::TooLong));
        }
        if self.buf.is_empty() {
            return None;
        }
        self.complete = true;
        match cobs_decode_in_place(&mut self.buf) {
            Some(len) => {
                self.buf.truncate(len);
                Some(check_frame(&self.buf))
            }
            None => Some(Err(ErrorCode::BadEncoding)),
        }
    }

    /// Discards the bytes of a partial frame.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overflow = false;
        self.complete = false;
    }
}

fn check_frame(b: &[u8]) -> Result<Frame<'_>, ErrorCode> {
    let (body, crc) = b
        .split_last_chunk::<CRC_LEN>()
        .ok_or(ErrorCode::Truncated)?;
    let (&[kind, seq, len0, len1], payload) = body
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(ErrorCode::Truncated)?;
    let mut c = Crc32::new();
    c.update(body);
    if c.finish() != u32::from_le_bytes(*crc) {
        return Err(ErrorCode::BadCrc);
    }
    let len = usize::from(u16::from_le_bytes([len0, len1]));
    if payload.len() < len {
        return Err(ErrorCode::Truncated);
    }
    if payload.len() > len {
        return Err(ErrorCode::TrailingBytes);
    }
    Ok(Frame { kind, seq, payload })
}

/// Decodes COBS in place; returns the decoded length, or `None` if the encoding is invalid.
fn cobs_decode_in_place(buf: &mut [u8]) -> Option<usize> {
    let n = buf.len();
    let (mut read, mut write) = (0usize, 0usize);
    while read < n {
        // A block: a code byte, `code - 1` non-zero data bytes, then an implied zero unless the
        // block is full (code 0xFF) or the last one.
        let code = usize::from(*buf.get(read)?);
        let end = read.checked_add(code).filter(|&e| code != 0 && e <= n)?;
        // `write <= read` throughout (a decoded block is never longer than its encoding): the
        // copy stays inside the buffer and never overwrites bytes still to be read. Byte by
        // byte: `copy_within` would link a 1.5 KiB `memmove` into the firmware.
        for r in read.checked_add(1)?..end {
            let b = *buf.get(r)?;
            if b == 0 {
                return None;
            }
            *buf.get_mut(write)? = b;
            write = write.checked_add(1)?;
        }
        read = end;
        if code != 0xFF && read < n {
            *buf.get_mut(write)? = 0;
            write = write.checked_add(1)?;
        }
    }
    Some(write)
}

/// Encodes one frame (kind, seq, payload) into `out`, COBS-stuffed and terminated by `0x00`.
/// Returns the number of bytes written, or [`ErrorCode::TooLong`] if `out` is too small or the
/// payload exceeds 65535 bytes.
pub fn encode_frame(kind: u8, seq: u8, payload: &[u8], out: &mut [u8]) -> Result<usize, ErrorCode> {
    let len = u16::try_from(payload.len()).map_err(|_| ErrorCode::TooLong)?;
    let header = [kind, seq, len.to_le_bytes()[0], len.to_le_bytes()[1]];
    let mut c = Crc32::new();
    c.update(&header);
    c.update(payload);
    let crc = c.finish().to_le_bytes();
    let raw = header.iter().chain(payload).chain(crc.iter()).copied();
    let mut enc = CobsWriter::new(out);
    for b in raw {
        enc.push(b)?;
    }
    enc.finish()
}

/// Incremental COBS encoder into a fixed buffer.
struct CobsWriter<'a> {
    out: &'a mut [u8],
    code_at: usize,
    at: usize,
    code: u8,
}

impl<'a> CobsWriter<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        CobsWriter {
            out,
            code_at: 0,
            at: 1,
            code: 1,
        }
    }

    fn put(&mut self, at: usize, b: u8) -> Result<(), ErrorCode> {
        *self.out.get_mut(at).ok_or(ErrorCode::TooLong)? = b;
        Ok(())
    }

    fn push(&mut self, b: u8) -> Result<(), ErrorCode> {
        if b == 0 {
            self.close_block()?;
        } else {
            self.put(self.at, b)?;
            // `at` stays within one past `out` (every write is bounds-checked first) and `code`
            // below 0xFF: neither saturates.
            self.at = self.at.saturating_add(1);
            self.code = self.code.saturating_add(1);
            if self.code == 0xFF {
                self.close_block()?;
            }
        }
        Ok(())
    }

    fn close_block(&mut self) -> Result<(), ErrorCode> {
        self.put(self.code_at, self.code)?;
        self.code_at = self.at;
        self.at = self.at.saturating_add(1);
        self.code = 1;
        Ok(())
    }

    fn finish(mut self) -> Result<usize, ErrorCode> {
        self.put(self.code_at, self.code)?;
        self.put(self.at, 0)?;
        Ok(self.at.saturating_add(1))
    }
}

/// What a device reports about the model it runs ([`kind::INFO_REPLY`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeviceInfo {
    /// Network inputs.
    pub inputs: u32,
    /// Network outputs.
    pub outputs: u32,
    /// Layers.
    pub layers: u32,
    /// Multiply-accumulates per inference.
    pub macs: u32,
    /// Flash bytes of the firmware (0 if unknown).
    pub flash_bytes: u32,
    /// Static RAM bytes of the firmware (0 if unknown).
    pub ram_bytes: u32,
}

impl DeviceInfo {
    /// Payload length.
    pub const LEN: usize = 24;

    /// Serialises into a payload.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        let v = [
            self.inputs,
            self.outputs,
            self.layers,
            self.macs,
            self.flash_bytes,
            self.ram_bytes,
        ];
        for (c, x) in b.chunks_exact_mut(4).zip(v) {
            c.copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Parses a payload; `None` unless it has exactly [`DeviceInfo::LEN`] bytes.
    pub fn from_bytes(p: &[u8]) -> Option<Self> {
        if p.len() != Self::LEN {
            return None;
        }
        let mut v = [0u32; 6];
        for (x, c) in v.iter_mut().zip(p.as_chunks::<4>().0) {
            *x = u32::from_le_bytes(*c);
        }
        Some(DeviceInfo {
            inputs: v[0],
            outputs: v[1],
            layers: v[2],
            macs: v[3],
            flash_bytes: v[4],
            ram_bytes: v[5],
        })
    }
}

/// Bytes before the outputs in a [`kind::RESULT`] payload.
pub const RESULT_HEADER_LEN: usize = 12;

/// Writes a [`kind::RESULT`] payload into `out`; returns its length.
pub fn result_payload(
    class: u16,
    instructions: u64,
    outputs: &[f32],
    out: &mut [u8],
) -> Result<usize, ErrorCode> {
    let n = outputs
        .len()
        .checked_mul(4)
        .and_then(|b| b.checked_add(RESULT_HEADER_LEN))
        .ok_or(ErrorCode::TooLong)?;
    let (head, rest) = out
        .get_mut(..n)
        .and_then(|o| o.split_first_chunk_mut::<RESULT_HEADER_LEN>())
        .ok_or(ErrorCode::TooLong)?;
    let ([c0, c1], [i0, i1, i2, i3, i4, i5, i6, i7]) =
        (class.to_le_bytes(), instructions.to_le_bytes());
    *head = [c0, c1, 0, 0, i0, i1, i2, i3, i4, i5, i6, i7];
    write_f32s(outputs, rest);
    Ok(n)
}

/// A parsed [`kind::RESULT`] payload; outputs stay as bytes (use [`read_f32s`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InferResult<'a> {
    /// The predicted class.
    pub class: u16,
    /// Instructions the device spent on the inference (0 if not measured).
    pub instructions: u64,
    /// The outputs, little-endian f32s.
    pub outputs: &'a [u8],
}

impl<'a> InferResult<'a> {
    /// Parses a payload; `None` if it is too short or not a whole number of f32s.
    pub fn parse(p: &'a [u8]) -> Option<Self> {
        let (&[c0, c1, _, _, i0, i1, i2, i3, i4, i5, i6, i7], outputs) =
            p.split_first_chunk::<RESULT_HEADER_LEN>()?;
        if !outputs.len().is_multiple_of(4) {
            return None;
        }
        Some(InferResult {
            class: u16::from_le_bytes([c0, c1]),
            instructions: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            outputs,
        })
    }
}

/// Writes f32s little-endian into `out` (stops at the shorter of the two).
pub fn write_f32s(v: &[f32], out: &mut [u8]) {
    for (c, x) in out.as_chunks_mut::<4>().0.iter_mut().zip(v) {
        *c = x.to_le_bytes();
    }
}

/// Reads little-endian f32s from `p` into `out`; returns how many were read.
pub fn read_f32s(p: &[u8], out: &mut [f32]) -> usize {
    let (chunks, _) = p.as_chunks::<4>();
    for (x, c) in out.iter_mut().zip(chunks) {
        *x = f32::from_le_bytes(*c);
    }
    out.len().min(chunks.len())
}

/// An [`kind::ERROR`] payload.
pub fn error_payload(code: ErrorCode, detail: u16) -> [u8; 4] {
    let d = detail.to_le_bytes();
    [code as u8, 0, d[0], d[1]]
}

/// Logs how many bytes of a frame are buffered.
#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for FrameDecoder<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "FrameDecoder<{=usize}> {{ {=usize} bytes buffered, overflow {=bool} }}",
            N,
            self.buf.len(),
            self.overflow
        )
    }
}

/// What a device does with requests: implemented by the firmware around its network.
pub trait Responder {
    /// The model description sent in [`kind::INFO_REPLY`].
    fn info(&self) -> DeviceInfo;
    /// Runs one inference on raw (untransformed) inputs `x` (exactly `info().inputs` finite
    /// values); returns the predicted class, the instructions spent (0 if not measured) and the
    /// outputs.
    fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]);
}

/// Builds the answer to one received frame (or to a reception error) into `tx` and returns its
/// length (0: nothing to send). `inputs` is scratch for the decoded inputs (at least
/// `info().inputs` values) and `payload` scratch for the answer's payload (at least
/// [`RESULT_HEADER_LEN`] + 4 × outputs bytes).
///
/// Every request gets exactly one answer: the reply, or an [`kind::ERROR`] frame saying what was
/// wrong (bad encoding, CRC, length, unknown kind, non-finite input). Nothing here can panic or
/// block, whatever the bytes.
pub fn respond<R: Responder>(
    device: &mut R,
    received: Result<Frame<'_>, ErrorCode>,
    inputs: &mut [f32],
    payload: &mut [u8],
    tx: &mut [u8],
) -> usize {
    let error = |code: ErrorCode, seq: u8, detail: u16, tx: &mut [u8]| {
        encode_frame(kind::ERROR, seq, &error_payload(code, detail), tx).unwrap_or(0)
    };
    let frame = match received {
        Ok(f) => f,
        // A corrupted frame's sequence number cannot be trusted: answer with 0.
        Err(code) => return error(code, 0, 0, tx),
    };
    let seq = frame.seq;
    match frame.kind {
        kind::PING => encode_frame(kind::PONG, seq, frame.payload, tx)
            .unwrap_or_else(|e| error(e, seq, 0, tx)),
        kind::INFO => encode_frame(kind::INFO_REPLY, seq, &device.info().to_bytes(), tx)
            .unwrap_or_else(|e| error(e, seq, 0, tx)),
        kind::INFER | kind::INFER_U8 => {
            let claimed = device.info().inputs;
            let detail = u16::try_from(claimed).unwrap_or(u16::MAX);
            let width = if frame.kind == kind::INFER { 4 } else { 1 };
            // In u64: on a 32-bit target `inputs * 4` may not fit in usize (here it cannot
            // saturate: u32 x 4).
            let expected = u64::from(claimed).saturating_mul(width);
            let Some(x) = usize::try_from(claimed)
                .ok()
                .filter(|_| frame.payload.len() as u64 == expected)
                .and_then(|n| inputs.get_mut(..n))
            else {
                return error(ErrorCode::BadLength, seq, detail, tx);
            };
            if frame.kind == kind::INFER {
                read_f32s(frame.payload, x);
            } else {
                x.iter_mut()
                    .zip(frame.payload)
                    .for_each(|(v, b)| *v = f32::from(*b));
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return error(
                    ErrorCode::NonFiniteInput,
                    seq,
                    u16::try_from(i).unwrap_or(u16::MAX),
                    tx,
                );
            }
            let (class, instructions, y) = device.infer(x);
            match result_payload(class, instructions, y, payload) {
                Ok(len) => encode_frame(kind::RESULT, seq, payload.get(..len).unwrap_or(&[]), tx)
                    .unwrap_or_else(|e| error(e, seq, 0, tx)),
                Err(e) => error(e, seq, 0, tx),
            }
        }
        other => error(ErrorCode::UnknownKind, seq, other as u16, tx),
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    type Decoded = Result<(u8, u8, Vec<u8>), ErrorCode>;

    fn decode_all<const N: usize>(wire: &[u8]) -> Vec<Decoded> {
        let mut d = FrameDecoder::<N>::new();
        let mut out = Vec::new();
        for &b in wire {
            if let Some(r) = d.push(b) {
                out.push(r.map(|f| (f.kind, f.seq, f.payload.to_vec())));
            }
        }
        out
    }

    #[test]
    fn cobs_round_trips_including_long_runs_and_zeros() {
        for payload in [
            Vec::new(),
            std::vec![0u8; 10],
            (0..=255u8).collect::<Vec<_>>(),
            std::vec![7u8; 600],
            (0..1000).map(|i| (i % 3) as u8).collect(),
        ] {
            let mut wire = std::vec![0u8; max_encoded_len(payload.len())];
            let n = encode_frame(kind::INFER, 3, &payload, &mut wire).unwrap();
            assert!(
                wire[..n - 1].iter().all(|&b| b != 0),
                "no zero inside a frame"
            );
            assert_eq!(wire[n - 1], 0);
            let got = decode_all::<2048>(&wire[..n]);
            assert_eq!(got, std::vec![Ok((kind::INFER, 3, payload.clone()))]);
        }
    }

    #[test]
    fn known_cobs_encoding() {
        // Wikipedia's example: 11 22 00 33 -> 03 11 22 02 33 00 (here wrapped in a frame, so
        // check the decoder on the raw example instead).
        let mut b = [0x03, 0x11, 0x22, 0x02, 0x33];
        let n = cobs_decode_in_place(&mut b).unwrap();
        assert_eq!(&b[..n], &[0x11, 0x22, 0x00, 0x33]);
    }

    /// COBS decoding byte by byte, straight from the definition (Cheshire and Baker, 1999):
    /// the reference for the in-place decoder.
    fn cobs_decode_reference(enc: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < enc.len() {
            let code = enc[i] as usize;
            if code == 0 || i + code > enc.len() {
                return None;
            }
            for &b in &enc[i + 1..i + code] {
                if b == 0 {
                    return None;
                }
                out.push(b);
            }
            i += code;
            if code != 0xFF && i < enc.len() {
                out.push(0);
            }
        }
        Some(out)
    }

    #[test]
    fn in_place_cobs_decoder_matches_the_reference() {
        let mut rng = crate::Rng::new(17);
        for case in 0..20_000 {
            let len = rng.next_u32() as usize % 600;
            // Small codes, long blocks, stray zeros: valid and invalid encodings.
            let enc: Vec<u8> = (0..len)
                .map(|_| match rng.next_u32() % 16 {
                    0 => 0,
                    1 => 0xFF,
                    2..=5 => 1 + rng.next_u32() as u8 % 8,
                    _ => rng.next_u32() as u8,
                })
                .collect();
            let mut buf = enc.clone();
            let got = cobs_decode_in_place(&mut buf).map(|n| buf[..n].to_vec());
            assert_eq!(got, cobs_decode_reference(&enc), "case {case}: {enc:?}");
        }
    }

    #[test]
    fn corrupted_truncated_and_oversized_frames_are_reported_and_resynchronised() {
        let mut wire = [0u8; 64];
        let n = encode_frame(kind::PING, 1, b"abc", &mut wire).unwrap();
        // A flipped bit: CRC error, then the next good frame still decodes.
        let mut bad = wire[..n].to_vec();
        bad[3] ^= 0x10;
        let mut stream = bad.clone();
        stream.extend_from_slice(&wire[..n]);
        let got = decode_all::<64>(&stream);
        assert_eq!(got[0], Err(ErrorCode::BadCrc));
        assert_eq!(got[1], Ok((kind::PING, 1, b"abc".to_vec())));
        // Garbage then a frame.
        let mut stream = std::vec![0x55, 0x12, 0x00];
        stream.extend_from_slice(&wire[..n]);
        let got = decode_all::<64>(&stream);
        assert!(got[0].is_err());
        assert_eq!(got[1], Ok((kind::PING, 1, b"abc".to_vec())));
        // Too long for the buffer.
        let mut big = std::vec![0u8; max_encoded_len(100)];
        let m = encode_frame(kind::INFER, 2, &[1u8; 100], &mut big).unwrap();
        let got = decode_all::<32>(&big[..m]);
        assert_eq!(got, std::vec![Err(ErrorCode::TooLong)]);
        // Shorter than a header.
        assert_eq!(
            decode_all::<32>(&[0x02, 0x01, 0x00]),
            std::vec![Err(ErrorCode::Truncated)]
        );
    }

    #[test]
    fn length_field_is_checked() {
        // Hand-build a frame whose len says 5 but carries 3 bytes (with a valid CRC).
        let body = [kind::INFER, 0, 5, 0, 1, 2, 3];
        let mut c = Crc32::new();
        c.update(&body);
        let mut raw = body.to_vec();
        raw.extend_from_slice(&c.finish().to_le_bytes());
        assert_eq!(check_frame(&raw), Err(ErrorCode::Truncated));
        let body = [kind::INFER, 0, 1, 0, 1, 2, 3];
        let mut c = Crc32::new();
        c.update(&body);
        let mut raw = body.to_vec();
        raw.extend_from_slice(&c.finish().to_le_bytes());
        assert_eq!(check_frame(&raw), Err(ErrorCode::TrailingBytes));
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = crate::Rng::new(99);
        let mut d = FrameDecoder::<128>::new();
        for _ in 0..200_000 {
            let b = if rng.next_u32().is_multiple_of(16) {
                0
            } else {
                rng.next_u32() as u8
            };
            let _ = d.push(b);
        }
    }

    /// A device that sums its inputs.
    struct Summer {
        y: [f32; 2],
    }

    impl Responder for Summer {
        fn info(&self) -> DeviceInfo {
            DeviceInfo {
                inputs: 3,
                outputs: 2,
                layers: 1,
                macs: 6,
                ..Default::default()
            }
        }
        fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]) {
            let s: f32 = x.iter().sum();
            self.y = [s, -s];
            (u16::from(s < 0.0), 99, &self.y)
        }
    }

    /// Sends `wire` to a `Summer` through a decoder and `respond`; returns the decoded answers.
    fn serve(wire: &[u8]) -> Vec<Decoded> {
        let mut dev = Summer { y: [0.0; 2] };
        let mut dec = FrameDecoder::<64>::new();
        let (mut inputs, mut payload, mut tx) = ([0.0f32; 3], [0u8; 64], [0u8; 128]);
        let mut replies = Vec::new();
        for &b in wire {
            if let Some(r) = dec.push(b) {
                let n = respond(&mut dev, r, &mut inputs, &mut payload, &mut tx);
                replies.extend_from_slice(&tx[..n]);
            }
        }
        decode_all::<128>(&replies)
    }

    fn frame(kind: u8, seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut w = std::vec![0u8; max_encoded_len(payload.len())];
        let n = encode_frame(kind, seq, payload, &mut w).unwrap();
        w.truncate(n);
        w
    }

    #[test]
    fn responder_answers_every_request_once() {
        let mut x = [0u8; 12];
        write_f32s(&[1.0, 2.0, -4.5], &mut x);
        let mut wire = frame(kind::PING, 1, b"p\0ng");
        wire.extend(frame(kind::INFO, 2, &[]));
        wire.extend(frame(kind::INFER, 3, &x));
        wire.extend(frame(kind::INFER_U8, 8, &[1, 2, 200]));
        wire.extend(frame(kind::INFER, 4, &x[..8])); // too short
        let mut nan = x;
        nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        wire.extend(frame(kind::INFER, 5, &nan));
        wire.extend(frame(0x42, 6, &[]));
        wire.extend([0x07, 0xFF, 0x00]); // garbage
        wire.extend(frame(kind::PING, 7, b"still alive"));
        let r = serve(&wire);
        assert_eq!(r.len(), 9, "{r:?}");
        let (k, s, p) = r[3].clone().unwrap();
        let res = InferResult::parse(&p).unwrap();
        let mut y = [0.0; 2];
        read_f32s(res.outputs, &mut y);
        assert_eq!((k, s, y), (kind::RESULT, 8, [203.0, -203.0]));
        let r: Vec<Decoded> = r[..3].iter().chain(&r[4..]).cloned().collect();
        assert_eq!(r[0], Ok((kind::PONG, 1, b"p\0ng".to_vec())));
        let (k, s, p) = r[1].clone().unwrap();
        assert_eq!(
            (k, s, DeviceInfo::from_bytes(&p).unwrap().inputs),
            (kind::INFO_REPLY, 2, 3)
        );
        let (k, s, p) = r[2].clone().unwrap();
        let res = InferResult::parse(&p).unwrap();
        let mut y = [0.0; 2];
        read_f32s(res.outputs, &mut y);
        assert_eq!(
            (k, s, res.class, res.instructions, y),
            (kind::RESULT, 3, 1, 99, [-1.5, 1.5])
        );
        let err = |i: usize| {
            let (k, s, p) = r[i].clone().unwrap();
            assert_eq!(k, kind::ERROR);
            (
                s,
                ErrorCode::from_u8(p[0]).unwrap(),
                u16::from_le_bytes([p[2], p[3]]),
            )
        };
        assert_eq!(err(3), (4, ErrorCode::BadLength, 3));
        assert_eq!(err(4), (5, ErrorCode::NonFiniteInput, 1));
        assert_eq!(err(5), (6, ErrorCode::UnknownKind, 0x42));
        assert_eq!(err(6).0, 0);
        assert_eq!(r[7], Ok((kind::PONG, 7, b"still alive".to_vec())));
    }

    #[test]
    fn responder_survives_random_bytes() {
        let mut rng = crate::Rng::new(5);
        let wire: Vec<u8> = (0..100_000)
            .map(|_| {
                if rng.next_u32().is_multiple_of(10) {
                    0
                } else {
                    rng.next_u32() as u8
                }
            })
            .collect();
        // Every reply is a well-formed frame (mostly errors), and nothing panics.
        for r in serve(&wire) {
            assert!(r.is_ok(), "{r:?}");
        }
    }

    #[test]
    fn payload_helpers_round_trip() {
        let info = DeviceInfo {
            inputs: 64,
            outputs: 10,
            layers: 3,
            macs: 4416,
            flash_bytes: 30000,
            ram_bytes: 1234,
        };
        assert_eq!(DeviceInfo::from_bytes(&info.to_bytes()), Some(info));
        assert_eq!(DeviceInfo::from_bytes(&[0; 23]), None);
        let mut p = [0u8; 64];
        let n = result_payload(7, 123_456, &[0.5, -1.0, 3.25], &mut p).unwrap();
        let r = InferResult::parse(&p[..n]).unwrap();
        assert_eq!((r.class, r.instructions), (7, 123_456));
        let mut ys = [0.0; 3];
        assert_eq!(read_f32s(r.outputs, &mut ys), 3);
        assert_eq!(ys, [0.5, -1.0, 3.25]);
        assert_eq!(
            ErrorCode::from_u8(error_payload(ErrorCode::BadLength, 64)[0]),
            Some(ErrorCode::BadLength)
        );
    }
}
