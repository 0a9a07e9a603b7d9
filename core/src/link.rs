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
//! | [`kind::MC`] | host → device | [`McRequest`]: passes (u16, 1..=[`MAX_MC_PASSES`]), input encoding (u8: 0 f32, 1 u8), reserved (u8, 0), seed (u64), then the inputs as in INFER or INFER_U8 |
//! | [`kind::PONG`] | device → host | the ping's payload |
//! | [`kind::INFO_REPLY`] | device → host | [`DeviceInfo`]: inputs, outputs, layers, MACs, flash and RAM bytes, peak stack and stack size (u32 each; devices before the stack fields send the first six) |
//! | [`kind::RESULT`] | device → host | predicted class (u16), reserved (u16), instructions spent (u64, 0 if not measured), then `outputs` f32 values |
//! | [`kind::MC_RESULT`] | device → host | [`McResult`]: class of the mean (u16), passes (u16), instructions spent (u64), predictive entropy (f32), expected entropy (f32), then `outputs` mean probabilities and `outputs` standard deviations (f32) |
//! | [`kind::ERROR`] | device → host | [`ErrorCode`] (u8), reserved (u8), detail (u16): e.g. the expected input count |
//!
//! `seq` is chosen by the host and copied into the answer, so a host can match replies to
//! requests and notice a lost one. A host should start every request with an extra `0x00`: it
//! ends whatever partial frame the device holds (line noise, a host that died mid-frame), so
//! the request itself is decoded cleanly (the stale bytes get their own error frame, with
//! sequence number 0).
//!
//! # Monte-Carlo dropout ([`kind::MC`])
//!
//! The device runs `passes` stochastic forward passes of its network on the inputs (after the
//! model's input transform), with dropout on at each layer's rate and the masks drawn from
//! [`crate::Rng::new`]`(seed)`, and answers the summary of [`crate::mc`]: mean probability and
//! standard deviation per class, the class of the mean, the predictive entropy `H[mean]` and
//! the expected entropy `E_k H[p_k]` (nats; their difference is the mutual information), and
//! the instructions spent on all of it. [`crate::ModelView::mc`] computes the same bits on the
//! host. A model whose last activation is neither softmax nor the identity (logits) is refused
//! with [`ErrorCode::Unsupported`]; `passes` outside `1..=MAX_MC_PASSES` with
//! [`ErrorCode::BadPasses`] (detail: the maximum).

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
    /// Host → device: Monte-Carlo dropout passes ([`McRequest`](super::McRequest)).
    pub const MC: u8 = 0x05;
    /// Device → host: echo reply.
    pub const PONG: u8 = 0x81;
    /// Device → host: model description.
    pub const INFO_REPLY: u8 = 0x82;
    /// Device → host: inference result.
    pub const RESULT: u8 = 0x83;
    /// Device → host: Monte-Carlo summary ([`McResult`](super::McResult)).
    pub const MC_RESULT: u8 = 0x84;
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
    /// A Monte-Carlo request for 0 passes or more than [`MAX_MC_PASSES`] (detail: the maximum).
    BadPasses = 9,
    /// The device cannot serve this request: Monte-Carlo passes on a model whose outputs are
    /// not class probabilities or logits, or a firmware without Monte-Carlo support.
    Unsupported = 10,
    /// A reserved field is not zero or a field has an unknown value (detail: its byte offset
    /// in the payload).
    BadField = 11,
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
            9 => ErrorCode::BadPasses,
            10 => ErrorCode::Unsupported,
            11 => ErrorCode::BadField,
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
            ErrorCode::BadPasses => "Monte-Carlo passes out of range",
            ErrorCode::Unsupported => "request not supported by this device or model",
            ErrorCode::BadField => "reserved or unknown field value",
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
    /// Deepest stack use since the device started, in bytes, measured (stack painting) when it
    /// answered this request: covers every request served before it (0 if not measured).
    pub stack_peak_bytes: u32,
    /// Bytes of RAM the stack may use (0 if unknown).
    pub stack_bytes: u32,
}

impl DeviceInfo {
    /// Payload length.
    pub const LEN: usize = 32;
    /// Payload length of devices that predate the stack fields (they read as 0).
    pub const LEN_WITHOUT_STACK: usize = 24;

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
            self.stack_peak_bytes,
            self.stack_bytes,
        ];
        for (c, x) in b.chunks_exact_mut(4).zip(v) {
            c.copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Parses a payload; `None` unless it has [`DeviceInfo::LEN`] or
    /// [`DeviceInfo::LEN_WITHOUT_STACK`] bytes.
    pub fn from_bytes(p: &[u8]) -> Option<Self> {
        if p.len() != Self::LEN && p.len() != Self::LEN_WITHOUT_STACK {
            return None;
        }
        let mut v = [0u32; 8];
        for (x, c) in v.iter_mut().zip(p.as_chunks::<4>().0) {
            *x = u32::from_le_bytes(*c);
        }
        let [inputs, outputs, layers, macs, flash_bytes, ram_bytes, stack_peak_bytes, stack_bytes] =
            v;
        Some(DeviceInfo {
            inputs,
            outputs,
            layers,
            macs,
            flash_bytes,
            ram_bytes,
            stack_peak_bytes,
            stack_bytes,
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

/// Largest number of passes a [`kind::MC`] request may ask for.
pub const MAX_MC_PASSES: u16 = 1024;
/// Bytes before the inputs in a [`kind::MC`] payload.
pub const MC_REQUEST_HEADER_LEN: usize = 12;
/// Bytes before the means in a [`kind::MC_RESULT`] payload.
pub const MC_RESULT_HEADER_LEN: usize = 20;

/// How the inputs of a request are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum InputEncoding {
    /// Little-endian f32 values (as in [`kind::INFER`]).
    F32 = 0,
    /// One byte per value, 0..=255 (as in [`kind::INFER_U8`]).
    U8 = 1,
}

impl InputEncoding {
    /// Bytes per input value.
    pub const fn width(self) -> usize {
        match self {
            InputEncoding::F32 => 4,
            InputEncoding::U8 => 1,
        }
    }
}

/// A parsed [`kind::MC`] payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct McRequest<'a> {
    /// Stochastic passes to run, `1..=MAX_MC_PASSES`.
    pub passes: core::num::NonZeroU16,
    /// How `inputs` is written.
    pub encoding: InputEncoding,
    /// Seed of the dropout masks ([`crate::Rng::new`]).
    pub seed: u64,
    /// The raw inputs (before the model's input transform), `encoding`-encoded.
    pub inputs: &'a [u8],
}

impl<'a> McRequest<'a> {
    /// The payload header for `passes`, `encoding` and `seed`; the inputs follow it.
    pub fn header(passes: u16, encoding: InputEncoding, seed: u64) -> [u8; MC_REQUEST_HEADER_LEN] {
        let ([p0, p1], [s0, s1, s2, s3, s4, s5, s6, s7]) =
            (passes.to_le_bytes(), seed.to_le_bytes());
        [p0, p1, encoding as u8, 0, s0, s1, s2, s3, s4, s5, s6, s7]
    }

    /// Parses a payload; the error is the code and detail of the device's answer.
    pub fn parse(p: &'a [u8]) -> Result<Self, (ErrorCode, u16)> {
        let Some((&[p0, p1, enc, reserved, s0, s1, s2, s3, s4, s5, s6, s7], inputs)) =
            p.split_first_chunk::<MC_REQUEST_HEADER_LEN>()
        else {
            return Err((ErrorCode::BadLength, 0));
        };
        let encoding = match enc {
            0 => InputEncoding::F32,
            1 => InputEncoding::U8,
            _ => return Err((ErrorCode::BadField, 2)),
        };
        if reserved != 0 {
            return Err((ErrorCode::BadField, 3));
        }
        let passes = u16::from_le_bytes([p0, p1]);
        let passes = core::num::NonZeroU16::new(passes)
            .filter(|p| p.get() <= MAX_MC_PASSES)
            .ok_or((ErrorCode::BadPasses, MAX_MC_PASSES))?;
        Ok(McRequest {
            passes,
            encoding,
            seed: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            inputs,
        })
    }
}

/// What a device answers to a [`kind::MC`] request ([`Responder::mc`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct McAnswer<'a> {
    /// Class of the mean, passes and entropies.
    pub summary: crate::mc::McSummary,
    /// Instructions spent on the passes and the summary (0 if not measured).
    pub instructions: u64,
    /// Mean probability of each class.
    pub mean: &'a [f32],
    /// Standard deviation of each class's probability over the passes.
    pub std: &'a [f32],
}

/// Writes a [`kind::MC_RESULT`] payload into `out`; returns its length.
pub fn mc_result_payload(a: &McAnswer<'_>, out: &mut [u8]) -> Result<usize, ErrorCode> {
    let n = a
        .mean
        .len()
        .checked_add(a.std.len())
        .and_then(|v| v.checked_mul(4))
        .and_then(|b| b.checked_add(MC_RESULT_HEADER_LEN))
        .ok_or(ErrorCode::TooLong)?;
    let (head, rest) = out
        .get_mut(..n)
        .and_then(|o| o.split_first_chunk_mut::<MC_RESULT_HEADER_LEN>())
        .ok_or(ErrorCode::TooLong)?;
    let class = u16::try_from(a.summary.class).unwrap_or(u16::MAX);
    let passes = u16::try_from(a.summary.passes).unwrap_or(u16::MAX);
    let fields: [&[u8]; 5] = [
        &class.to_le_bytes(),
        &passes.to_le_bytes(),
        &a.instructions.to_le_bytes(),
        &a.summary.entropy.to_le_bytes(),
        &a.summary.expected_entropy.to_le_bytes(),
    ];
    for (b, v) in head.iter_mut().zip(fields.into_iter().flatten()) {
        *b = *v;
    }
    let (mean_bytes, std_bytes) = rest
        .split_at_mut_checked(a.mean.len().saturating_mul(4))
        .ok_or(ErrorCode::TooLong)?;
    write_f32s(a.mean, mean_bytes);
    write_f32s(a.std, std_bytes);
    Ok(n)
}

/// A parsed [`kind::MC_RESULT`] payload; the vectors stay as bytes (use [`read_f32s`]).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct McResult<'a> {
    /// The class of the mean probabilities.
    pub class: u16,
    /// Passes run.
    pub passes: u16,
    /// Instructions the device spent (0 if not measured).
    pub instructions: u64,
    /// Predictive entropy `H[mean]`, nats.
    pub entropy: f32,
    /// Mean of the passes' entropies, nats.
    pub expected_entropy: f32,
    /// Mean probability per class, little-endian f32s.
    pub mean: &'a [u8],
    /// Standard deviation per class, little-endian f32s.
    pub std: &'a [u8],
}

impl<'a> McResult<'a> {
    /// Parses a payload; `None` if it is too short or its vectors are not two equal runs of
    /// f32s.
    pub fn parse(p: &'a [u8]) -> Option<Self> {
        let (&[c0, c1, p0, p1, i0, i1, i2, i3, i4, i5, i6, i7, e0, e1, e2, e3, x0, x1, x2, x3], v) =
            p.split_first_chunk::<MC_RESULT_HEADER_LEN>()?;
        if !v.len().is_multiple_of(8) {
            return None;
        }
        let (mean, std) = v.split_at_checked(v.len() / 2)?;
        Some(McResult {
            class: u16::from_le_bytes([c0, c1]),
            passes: u16::from_le_bytes([p0, p1]),
            instructions: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            entropy: f32::from_le_bytes([e0, e1, e2, e3]),
            expected_entropy: f32::from_le_bytes([x0, x1, x2, x3]),
            mean,
            std,
        })
    }
}

/// Payload bytes of the largest request a device with `inputs` inputs accepts (a [`kind::MC`]
/// request with f32 inputs): size a [`FrameDecoder`] with
/// [`decoder_capacity`]`(request_payload_capacity(inputs))`. Saturates.
pub const fn request_payload_capacity(inputs: usize) -> usize {
    inputs
        .saturating_mul(4)
        .saturating_add(MC_REQUEST_HEADER_LEN)
}

/// Payload bytes of the largest answer of a device with `outputs` outputs (a
/// [`kind::MC_RESULT`], at least a [`DeviceInfo`]): the `payload` scratch of [`respond`].
/// Saturates.
pub const fn answer_payload_capacity(outputs: usize) -> usize {
    let mc = outputs
        .saturating_mul(8)
        .saturating_add(MC_RESULT_HEADER_LEN);
    if mc > DeviceInfo::LEN {
        mc
    } else {
        DeviceInfo::LEN
    }
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
    /// The model description sent in [`kind::INFO_REPLY`] (asked once per INFO request; it may
    /// measure something, such as the peak stack).
    fn info(&self) -> DeviceInfo;
    /// The number of inputs a request must carry (asked for every INFER and MC request; the
    /// default asks [`Responder::info`]).
    fn inputs(&self) -> u32 {
        self.info().inputs
    }
    /// Runs one inference on raw (untransformed) inputs `x` (exactly `info().inputs` finite
    /// values); returns the predicted class, the instructions spent (0 if not measured) and the
    /// outputs.
    fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]);
    /// Runs `passes` Monte-Carlo dropout passes on raw inputs `x` (exactly `info().inputs`
    /// finite values) with masks from `Rng::new(seed)` ([`crate::mc::run`]). The default
    /// refuses with [`ErrorCode::Unsupported`]; so should a device whose model's outputs are
    /// not class probabilities or logits.
    fn mc(
        &mut self,
        x: &[f32],
        passes: core::num::NonZeroU16,
        seed: u64,
    ) -> Result<McAnswer<'_>, ErrorCode> {
        let _ = (x, passes, seed);
        Err(ErrorCode::Unsupported)
    }
}

/// Decodes `bytes` (`encoding`-encoded raw inputs) into the first `claimed` values of
/// `inputs`; the error is the code and detail of the answer.
fn decode_inputs<'i>(
    bytes: &[u8],
    encoding: InputEncoding,
    claimed: u32,
    inputs: &'i mut [f32],
) -> Result<&'i [f32], (ErrorCode, u16)> {
    let detail = u16::try_from(claimed).unwrap_or(u16::MAX);
    // In u64: on a 32-bit target `inputs * 4` may not fit in usize (here it cannot saturate:
    // u32 x 4).
    let expected = u64::from(claimed).saturating_mul(encoding.width() as u64);
    let x = usize::try_from(claimed)
        .ok()
        .filter(|_| bytes.len() as u64 == expected)
        .and_then(|n| inputs.get_mut(..n))
        .ok_or((ErrorCode::BadLength, detail))?;
    match encoding {
        InputEncoding::F32 => {
            read_f32s(bytes, x);
        }
        InputEncoding::U8 => x
            .iter_mut()
            .zip(bytes)
            .for_each(|(v, b)| *v = f32::from(*b)),
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err((
            ErrorCode::NonFiniteInput,
            u16::try_from(i).unwrap_or(u16::MAX),
        ));
    }
    Ok(x)
}

/// Builds the answer to one received frame (or to a reception error) into `tx` and returns its
/// length (0: nothing to send). `inputs` is scratch for the decoded inputs (at least
/// `info().inputs` values) and `payload` scratch for the answer's payload (at least
/// [`answer_payload_capacity`]`(outputs)` bytes).
///
/// Every request gets exactly one answer: the reply, or an [`kind::ERROR`] frame saying what was
/// wrong (bad encoding, CRC, length, unknown kind, non-finite input, passes out of range,
/// unsupported). Nothing here can panic or block, whatever the bytes.
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
            let encoding = if frame.kind == kind::INFER {
                InputEncoding::F32
            } else {
                InputEncoding::U8
            };
            let claimed = device.inputs();
            let x = match decode_inputs(frame.payload, encoding, claimed, inputs) {
                Ok(x) => x,
                Err((code, detail)) => return error(code, seq, detail, tx),
            };
            let (class, instructions, y) = device.infer(x);
            match result_payload(class, instructions, y, payload) {
                Ok(len) => encode_frame(kind::RESULT, seq, payload.get(..len).unwrap_or(&[]), tx)
                    .unwrap_or_else(|e| error(e, seq, 0, tx)),
                Err(e) => error(e, seq, 0, tx),
            }
        }
        kind::MC => {
            let request = match McRequest::parse(frame.payload) {
                Ok(r) => r,
                Err((code, detail)) => return error(code, seq, detail, tx),
            };
            let claimed = device.inputs();
            let x = match decode_inputs(request.inputs, request.encoding, claimed, inputs) {
                Ok(x) => x,
                Err((code, detail)) => return error(code, seq, detail, tx),
            };
            let written = match device.mc(x, request.passes, request.seed) {
                Ok(answer) => mc_result_payload(&answer, payload),
                Err(code) => return error(code, seq, 0, tx),
            };
            match written {
                Ok(len) => {
                    encode_frame(kind::MC_RESULT, seq, payload.get(..len).unwrap_or(&[]), tx)
                        .unwrap_or_else(|e| error(e, seq, 0, tx))
                }
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

    /// A device that sums its inputs; its Monte-Carlo "network" outputs `[u, 1 - u]` with `u`
    /// uniform from the masks' generator, scaled by the sign of the sum.
    struct Summer {
        y: [f32; 2],
        mean: [f32; 2],
        std: [f32; 2],
        pass: [f32; 2],
    }

    impl Summer {
        fn new() -> Self {
            Summer {
                y: [0.0; 2],
                mean: [0.0; 2],
                std: [0.0; 2],
                pass: [0.0; 2],
            }
        }
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
        fn mc(
            &mut self,
            x: &[f32],
            passes: core::num::NonZeroU16,
            seed: u64,
        ) -> Result<McAnswer<'_>, ErrorCode> {
            let flip = x.iter().sum::<f32>() < 0.0;
            let summary = crate::mc::run::<ErrorCode>(
                crate::mc::McOutputs::Probabilities,
                passes.into(),
                seed,
                &mut self.mean,
                &mut self.std,
                &mut self.pass,
                |rng, out| {
                    let u = rng.next_f32();
                    out.copy_from_slice(&if flip { [1.0 - u, u] } else { [u, 1.0 - u] });
                    Ok(())
                },
            )?;
            Ok(McAnswer {
                summary,
                instructions: 1000 * u64::from(passes.get()),
                mean: &self.mean,
                std: &self.std,
            })
        }
    }

    /// A device without Monte-Carlo support (the trait's default).
    struct NoMc;

    impl Responder for NoMc {
        fn info(&self) -> DeviceInfo {
            DeviceInfo {
                inputs: 1,
                outputs: 1,
                ..Default::default()
            }
        }
        fn infer(&mut self, _: &[f32]) -> (u16, u64, &[f32]) {
            (0, 0, &[])
        }
    }

    /// Sends `wire` to a `Summer` through a decoder and `respond`; returns the decoded answers.
    fn serve(wire: &[u8]) -> Vec<Decoded> {
        serve_with(&mut Summer::new(), wire)
    }

    fn serve_with<R: Responder>(dev: &mut R, wire: &[u8]) -> Vec<Decoded> {
        const RX: usize = decoder_capacity(request_payload_capacity(3));
        const PAYLOAD: usize = answer_payload_capacity(2);
        let mut dec = FrameDecoder::<RX>::new();
        let (mut inputs, mut payload, mut tx) = ([0.0f32; 3], [0u8; PAYLOAD], [0u8; 128]);
        let mut replies = Vec::new();
        for &b in wire {
            if let Some(r) = dec.push(b) {
                let n = respond(dev, r, &mut inputs, &mut payload, &mut tx);
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

    fn mc_frame(seq: u8, passes: u16, encoding: InputEncoding, seed: u64, x: &[u8]) -> Vec<u8> {
        let mut p = McRequest::header(passes, encoding, seed).to_vec();
        p.extend_from_slice(x);
        frame(kind::MC, seq, &p)
    }

    #[test]
    fn monte_carlo_requests_are_answered_or_refused_with_a_reason() {
        let mut x = [0u8; 12];
        write_f32s(&[1.0, 2.0, -4.5], &mut x);
        let mut wire = mc_frame(1, 50, InputEncoding::F32, 77, &x);
        wire.extend(mc_frame(2, 3, InputEncoding::U8, 5, &[1, 2, 3]));
        wire.extend(mc_frame(3, 0, InputEncoding::F32, 0, &x)); // no pass
        wire.extend(mc_frame(4, MAX_MC_PASSES + 1, InputEncoding::F32, 0, &x));
        wire.extend(mc_frame(5, 2, InputEncoding::F32, 0, &x[..8])); // 2 inputs of 3
        let mut bad = McRequest::header(2, InputEncoding::U8, 0);
        bad[2] = 7; // unknown encoding
        wire.extend(frame(kind::MC, 6, &[&bad[..], &[1, 2, 3]].concat()));
        bad[2] = 1;
        bad[3] = 1; // reserved
        wire.extend(frame(kind::MC, 7, &[&bad[..], &[1, 2, 3]].concat()));
        wire.extend(frame(kind::MC, 8, &[1, 2, 3])); // shorter than the header
        let mut nan = x;
        nan[8..12].copy_from_slice(&f32::INFINITY.to_le_bytes());
        wire.extend(mc_frame(9, 2, InputEncoding::F32, 0, &nan));
        wire.extend(frame(kind::PING, 10, b"after"));
        let r = serve(&wire);
        assert_eq!(r.len(), 10, "{r:?}");

        // 50 passes of [u, 1 - u] from Rng::new(77) (the sum is negative: flipped).
        let (k, s, p) = r[0].clone().unwrap();
        assert_eq!((k, s), (kind::MC_RESULT, 1));
        let m = McResult::parse(&p).unwrap();
        let (mut mean, mut std) = ([0.0f32; 2], [0.0f32; 2]);
        assert_eq!(read_f32s(m.mean, &mut mean), 2);
        assert_eq!(read_f32s(m.std, &mut std), 2);
        let mut rng = crate::Rng::new(77);
        let u: Vec<f64> = (0..50).map(|_| rng.next_f32() as f64).collect();
        let mu = u.iter().sum::<f64>() / 50.0;
        let sd = (u.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / 50.0).sqrt();
        assert!((mean[1] as f64 - mu).abs() < 1e-6 && (mean[0] as f64 - (1.0 - mu)).abs() < 1e-6);
        assert!((std[0] as f64 - sd).abs() < 1e-5 && (std[1] as f64 - sd).abs() < 1e-5);
        let h = |p: f64| -(p * p.ln() + (1.0 - p) * (1.0 - p).ln());
        assert!((m.entropy as f64 - h(mu)).abs() < 1e-5);
        let eh = u.iter().map(|&v| h(v)).sum::<f64>() / 50.0;
        assert!((m.expected_entropy as f64 - eh).abs() < 1e-5);
        assert_eq!((m.passes, m.instructions), (50, 50_000));
        assert_eq!(m.class as usize, crate::argmax(&mean));

        let (k, s, p) = r[1].clone().unwrap();
        let m = McResult::parse(&p).unwrap();
        assert_eq!(
            (k, s, m.passes, m.instructions),
            (kind::MC_RESULT, 2, 3, 3000)
        );

        let err = |i: usize| {
            let (k, s, p) = r[i].clone().unwrap();
            assert_eq!(k, kind::ERROR, "{i}");
            (
                s,
                ErrorCode::from_u8(p[0]).unwrap(),
                u16::from_le_bytes([p[2], p[3]]),
            )
        };
        assert_eq!(err(2), (3, ErrorCode::BadPasses, MAX_MC_PASSES));
        assert_eq!(err(3), (4, ErrorCode::BadPasses, MAX_MC_PASSES));
        assert_eq!(err(4), (5, ErrorCode::BadLength, 3));
        assert_eq!(err(5), (6, ErrorCode::BadField, 2));
        assert_eq!(err(6), (7, ErrorCode::BadField, 3));
        assert_eq!(err(7), (8, ErrorCode::BadLength, 0));
        assert_eq!(err(8), (9, ErrorCode::NonFiniteInput, 2));
        assert_eq!(r[9], Ok((kind::PONG, 10, b"after".to_vec())));
    }

    #[test]
    fn a_device_without_monte_carlo_says_so() {
        let r = serve_with(&mut NoMc, &mc_frame(4, 2, InputEncoding::U8, 0, &[9]));
        let (k, s, p) = r[0].clone().unwrap();
        assert_eq!(
            (k, s, ErrorCode::from_u8(p[0])),
            (kind::ERROR, 4, Some(ErrorCode::Unsupported))
        );
    }

    #[test]
    fn mc_payloads_round_trip_and_reject_odd_lengths() {
        let summary = crate::mc::McSummary {
            passes: 20,
            class: 3,
            entropy: 0.75,
            expected_entropy: 0.5,
        };
        let (mean, std) = ([0.1f32, 0.2, 0.3, 0.4], [0.01f32, 0.02, 0.03, 0.04]);
        let a = McAnswer {
            summary,
            instructions: 123_456_789_012,
            mean: &mean,
            std: &std,
        };
        let mut p = [0u8; answer_payload_capacity(4)];
        let n = mc_result_payload(&a, &mut p).unwrap();
        assert_eq!(n, MC_RESULT_HEADER_LEN + 32);
        let r = McResult::parse(&p[..n]).unwrap();
        assert_eq!(
            (
                r.class,
                r.passes,
                r.instructions,
                r.entropy,
                r.expected_entropy
            ),
            (3, 20, 123_456_789_012, 0.75, 0.5)
        );
        let (mut m, mut s) = ([0.0; 4], [0.0; 4]);
        read_f32s(r.mean, &mut m);
        read_f32s(r.std, &mut s);
        assert_eq!((m, s), (mean, std));
        assert_eq!(McResult::parse(&p[..n - 4]), None);
        assert_eq!(McResult::parse(&p[..10]), None);
        assert_eq!(
            mc_result_payload(&a, &mut p[..n - 1]),
            Err(ErrorCode::TooLong)
        );
        let header = McRequest::header(9, InputEncoding::F32, u64::MAX);
        let req = McRequest::parse(&header).unwrap();
        assert_eq!(
            (req.passes.get(), req.encoding, req.seed, req.inputs.len()),
            (9, InputEncoding::F32, u64::MAX, 0)
        );
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
            stack_peak_bytes: 1500,
            stack_bytes: 8192,
        };
        assert_eq!(DeviceInfo::from_bytes(&info.to_bytes()), Some(info));
        assert_eq!(DeviceInfo::from_bytes(&[0; 23]), None);
        assert_eq!(DeviceInfo::from_bytes(&[0; 31]), None);
        // A device from before the stack fields: they read as 0.
        let old = DeviceInfo::from_bytes(&info.to_bytes()[..DeviceInfo::LEN_WITHOUT_STACK]);
        assert_eq!(
            old,
            Some(DeviceInfo {
                stack_peak_bytes: 0,
                stack_bytes: 0,
                ..info
            })
        );
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
