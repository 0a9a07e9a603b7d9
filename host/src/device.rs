//! Talking to a device over the link of [`microdnn::link`]: a real board's serial port, or the
//! emulated serial port of any board of `microdnn_targets::TARGETS` in QEMU, and comparing its
//! answers with the host's.
//!
//! "The host's outputs" are those of the core crate running the same model file on the host
//! ([`microdnn::ModelView::run`]): the same arithmetic the device runs, so outputs are expected to
//! be bit-identical. Bit-for-bit comparisons canonicalise NaNs first ([`same_bits`]): x86-64 and
//! ARM produce different default NaNs (0xffc0_0000 and 0x7fc0_0000) for the same invalid
//! operation, and either way the output is "not a number".
//!
//! # A link that survives its line
//!
//! [`Link`] never waits without a deadline: every request, and the wait for the device's hello,
//! ends with its answer or [`DeviceError::Timeout`] within the answer timeout (twice it when the
//! request is retried). Every request starts with a frame delimiter (`0x00`), which ends any
//! partial frame the device holds (a stale byte on a real port, a host killed mid-frame); the
//! device answers those stale bytes with an error frame of sequence number 0, which the host
//! skips, as it skips the device's hello and late answers to earlier requests. When no answer
//! comes, or it comes corrupted, or the device says it received a corrupted frame and no answer
//! follows, the request is sent once more (with a new sequence number); [`Link::retries`]
//! counts those.
//!
//! [`mc`] asks the device for Monte-Carlo dropout passes and compares them with the core
//! running the same passes on the host.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use microdnn::link::{self, kind, DeviceInfo, ErrorCode, FrameDecoder};
use microdnn::ModelView;
use microdnn_targets::Target;
use serde::Serialize;

/// Payload of the frame the `eval` firmware sends once it listens (`kind::PONG`, sequence 0;
/// `firmware/src/server.rs`).
pub const HELLO: &[u8] = b"microdnn eval ready";

/// The canonical quiet NaN every NaN is compared as (ARM's default NaN).
pub const CANONICAL_NAN: u32 = 0x7fc0_0000;

/// The bits of `v`, with every NaN replaced by [`CANONICAL_NAN`].
pub fn canonical_bits(v: f32) -> u32 {
    if v.is_nan() {
        CANONICAL_NAN
    } else {
        v.to_bits()
    }
}

/// Whether two floats are the same bit for bit, NaNs canonicalised (any NaN equals any NaN;
/// `+0.0` and `-0.0` differ).
pub fn same_bits(a: f32, b: f32) -> bool {
    canonical_bits(a) == canonical_bits(b)
}

pub mod mc;

/// Largest decoded frame the host accepts (a RESULT with 4096 outputs, an MC_RESULT with 2048).
const MAX_FRAME: usize = link::decoder_capacity(16 * 1024 + 64);

/// After the device reported a frame it could not decode (sequence number 0), how long the host
/// still waits for the answer to its request before sending it again: the bad frame may have
/// been stale bytes before the request (the answer follows) or the request itself (no answer
/// will come).
const GARBLED_GRACE: Duration = Duration::from_secs(2);

/// Errors talking to a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Reading or writing the byte stream.
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    /// No complete answer before the deadline.
    #[error("no answer from the device within {0:?}")]
    Timeout(Duration),
    /// A frame from the device failed its checks (COBS, CRC, length).
    #[error("undecodable frame from the device: {0}")]
    Undecodable(ErrorCode),
    /// The other end closed the byte stream (the emulator exited, the port went away).
    #[error("the device closed the link")]
    Closed,
    /// The device answered with an error frame.
    #[error("the device rejected the request: {code} (detail {detail})")]
    Rejected {
        /// The device's error code.
        code: ErrorCode,
        /// Code-specific detail (e.g. the input count it expects).
        detail: u16,
    },
    /// A frame from the device was corrupted or unexpected.
    #[error("bad answer from the device: {0}")]
    Protocol(String),
    /// Starting the emulator.
    #[error("starting QEMU: {0}")]
    Qemu(String),
}

/// An inference answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// Predicted class.
    pub class: u16,
    /// Instructions the device spent (0 if not measured).
    pub instructions: u64,
    /// Outputs.
    pub outputs: Vec<f32>,
}

/// A request/response client over any byte stream (see the [module docs](self) for how it
/// resynchronises).
pub struct Link<T: Read + Write> {
    io: T,
    seq: u8,
    decoder: Box<FrameDecoder<MAX_FRAME>>,
    timeout: Duration,
    tx: Vec<u8>,
    rx: Vec<u8>,
    pending: std::collections::VecDeque<u8>,
    retries: u64,
}

/// Why one attempt at a request failed in a way that sending it again may fix.
enum Attempt {
    /// The answer.
    Answer(u8, Vec<u8>),
    /// No answer before the deadline; `garbled`: the last corrupted frame seen meanwhile.
    NoAnswer { garbled: Option<Garbled> },
}

/// A frame that went wrong while the host waited for an answer.
#[derive(Clone, Copy, Debug)]
enum Garbled {
    /// The device answered a frame it could not decode (sequence number 0) with this code and
    /// detail.
    Device(ErrorCode, u16),
    /// The host could not decode a frame from the device.
    Host(ErrorCode),
}

impl<T: Read + Write> Link<T> {
    /// A client over `io`; each request waits at most `timeout` for its answer (and, when it is
    /// sent a second time, as long again). `io` should return from `read` periodically (a read
    /// timeout), so the deadline can be enforced.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            seq: 0,
            decoder: Box::new(FrameDecoder::new()),
            timeout,
            tx: vec![0; link::max_encoded_len(16 * 1024 + 64)],
            rx: vec![0; 4096],
            pending: std::collections::VecDeque::new(),
            retries: 0,
        }
    }

    /// The answer timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the answer timeout (e.g. for Monte-Carlo requests of many passes).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Requests sent a second time because the first attempt got no usable answer.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Sends raw bytes (tests use it to send garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), DeviceError> {
        self.io.write_all(bytes)?;
        self.io.flush()?;
        Ok(())
    }

    /// The next sequence number: 1 to 255 (0 marks the hello and answers to corrupted frames).
    fn next_seq(&mut self) -> u8 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Sends one frame, after a frame delimiter that ends whatever partial frame the device
    /// holds, and returns the sequence number used.
    pub fn send(&mut self, kind: u8, payload: &[u8]) -> Result<u8, DeviceError> {
        let seq = self.next_seq();
        self.tx[0] = 0;
        let n = link::encode_frame(kind, seq, payload, &mut self.tx[1..])
            .map_err(|e| DeviceError::Protocol(e.to_string()))?;
        self.io.write_all(&self.tx[..n + 1])?;
        self.io.flush()?;
        Ok(seq)
    }

    /// Waits for the next frame: `(kind, seq, payload)`, at most the answer timeout. Frames the
    /// host cannot decode are reported as [`DeviceError::Undecodable`]; bytes after a frame are
    /// kept for the next call.
    pub fn receive(&mut self) -> Result<(u8, u8, Vec<u8>), DeviceError> {
        self.receive_until(Instant::now() + self.timeout)
    }

    /// [`Link::receive`] with a deadline ([`DeviceError::Timeout`] after it).
    fn receive_until(&mut self, deadline: Instant) -> Result<(u8, u8, Vec<u8>), DeviceError> {
        loop {
            while let Some(b) = self.pending.pop_front() {
                if let Some(r) = self.decoder.push(b) {
                    return r
                        .map(|f| (f.kind, f.seq, f.payload.to_vec()))
                        .map_err(DeviceError::Undecodable);
                }
            }
            if Instant::now() > deadline {
                return Err(DeviceError::Timeout(self.timeout));
            }
            match self.io.read(&mut self.rx) {
                Ok(0) => return Err(DeviceError::Closed),
                Ok(n) => self.pending.extend(&self.rx[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends a request and waits for the answer with its sequence number; sends it once more if
    /// no usable answer came (see the [module docs](self)). An error frame answering it is
    /// [`DeviceError::Rejected`].
    fn request(&mut self, kind: u8, payload: &[u8]) -> Result<(u8, Vec<u8>), DeviceError> {
        let (k, p) = match self.attempt(kind, payload)? {
            Attempt::Answer(k, p) => (k, p),
            Attempt::NoAnswer { .. } => {
                self.retries += 1;
                match self.attempt(kind, payload)? {
                    Attempt::Answer(k, p) => (k, p),
                    Attempt::NoAnswer { garbled: None } => {
                        return Err(DeviceError::Timeout(self.timeout))
                    }
                    // Twice, the device could not decode a frame and the answer never came: the
                    // request itself is what it rejects (too long for its buffer, or corrupted
                    // on the way: a wrong baud rate).
                    Attempt::NoAnswer {
                        garbled: Some(Garbled::Device(code, detail)),
                    } => return Err(DeviceError::Rejected { code, detail }),
                    Attempt::NoAnswer {
                        garbled: Some(Garbled::Host(code)),
                    } => {
                        return Err(DeviceError::Protocol(format!(
                            "the device's answers arrived corrupted twice ({code}): is the baud \
                             rate right?"
                        )))
                    }
                }
            }
        };
        if k == kind::ERROR {
            let code = p.first().and_then(|&c| ErrorCode::from_u8(c));
            let detail = p
                .get(2..4)
                .map(|d| u16::from_le_bytes([d[0], d[1]]))
                .unwrap_or(0);
            return match code {
                Some(code) => Err(DeviceError::Rejected { code, detail }),
                None => Err(DeviceError::Protocol(format!(
                    "error frame with payload {p:?}"
                ))),
            };
        }
        Ok((k, p))
    }

    /// One attempt: send, then wait for the frame with this sequence number, skipping the
    /// device's hello, late answers to earlier requests and error frames for stale bytes.
    fn attempt(&mut self, kind: u8, payload: &[u8]) -> Result<Attempt, DeviceError> {
        let seq = self.send(kind, payload)?;
        let end = Instant::now() + self.timeout;
        let mut deadline = end;
        let mut garbled = None;
        loop {
            match self.receive_until(deadline) {
                Ok((k, s, p)) if s == seq => return Ok(Attempt::Answer(k, p)),
                // The device could not decode a frame: stale bytes (the answer follows) or this
                // request (it will not): wait a little longer, then send it again. Each such
                // frame shows the device is still working through bytes: the wait restarts.
                Ok((kind::ERROR, 0, p)) => {
                    let code = p.first().and_then(|&c| ErrorCode::from_u8(c));
                    let detail = p.get(2..4).map_or(0, |d| u16::from_le_bytes([d[0], d[1]]));
                    garbled = code.map(|c| Garbled::Device(c, detail)).or(garbled);
                    deadline = end.min(Instant::now() + GARBLED_GRACE);
                }
                Err(DeviceError::Undecodable(code)) => {
                    garbled = Some(Garbled::Host(code));
                    deadline = end.min(Instant::now() + GARBLED_GRACE);
                }
                // The hello of a board that restarted, or a late answer to an earlier request.
                Ok(_) => {}
                Err(DeviceError::Timeout(_)) => return Ok(Attempt::NoAnswer { garbled }),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for the device's hello frame (sent once when it starts listening), ignoring
    /// anything before it; [`DeviceError::Timeout`] after the answer timeout.
    pub fn wait_for_hello(&mut self) -> Result<(), DeviceError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.receive_until(deadline) {
                Ok((kind::PONG, 0, p)) if p == HELLO => return Ok(()),
                // Boot noise: another frame, or bytes that do not decode.
                Ok(_) => continue,
                Err(DeviceError::Undecodable(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Echo test.
    pub fn ping(&mut self, payload: &[u8]) -> Result<Vec<u8>, DeviceError> {
        let (k, p) = self.request(kind::PING, payload)?;
        if k != kind::PONG {
            return Err(DeviceError::Protocol(format!(
                "expected PONG, got kind {k:#04x}"
            )));
        }
        Ok(p)
    }

    /// The model the device runs.
    pub fn info(&mut self) -> Result<DeviceInfo, DeviceError> {
        let (k, p) = self.request(kind::INFO, &[])?;
        if k != kind::INFO_REPLY {
            return Err(DeviceError::Protocol(format!(
                "expected INFO_REPLY, got kind {k:#04x}"
            )));
        }
        DeviceInfo::from_bytes(&p)
            .ok_or_else(|| DeviceError::Protocol(format!("INFO_REPLY of {} bytes", p.len())))
    }

    /// Runs one inference on raw (untransformed) inputs.
    pub fn infer(&mut self, x: &[f32]) -> Result<Answer, DeviceError> {
        let mut payload = vec![0u8; x.len() * 4];
        link::write_f32s(x, &mut payload);
        self.infer_payload(kind::INFER, &payload)
    }

    /// Runs one inference on 8-bit raw inputs (a quarter of the bytes on the wire; the device
    /// converts each byte to f32 exactly).
    pub fn infer_u8(&mut self, x: &[u8]) -> Result<Answer, DeviceError> {
        self.infer_payload(kind::INFER_U8, x)
    }

    fn infer_payload(&mut self, kind_: u8, payload: &[u8]) -> Result<Answer, DeviceError> {
        let (k, p) = self.request(kind_, payload)?;
        if k != kind::RESULT {
            return Err(DeviceError::Protocol(format!(
                "expected RESULT, got kind {k:#04x}"
            )));
        }
        let r = link::InferResult::parse(&p)
            .ok_or_else(|| DeviceError::Protocol(format!("RESULT of {} bytes", p.len())))?;
        let mut outputs = vec![0.0; r.outputs.len() / 4];
        link::read_f32s(r.outputs, &mut outputs);
        Ok(Answer {
            class: r.class,
            instructions: r.instructions,
            outputs,
        })
    }
}

/// A firmware running in QEMU (any emulated board of `microdnn_targets`), its serial port
/// connected to a Unix socket.
///
/// The emulator never outlives its use: it is killed when this is dropped, when `max_seconds`
/// have passed (a watchdog thread), and, through `PR_SET_PDEATHSIG`, when the thread that
/// started it dies without dropping it (a crash or a killed test).
pub struct Qemu {
    child: Child,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    socket: PathBuf,
    _dir: tempfile::TempDir,
    /// The link to the firmware.
    pub link: Link<std::os::unix::net::UnixStream>,
}

impl Qemu {
    /// Starts `elf` on `target`'s QEMU machine with `-icount shift=3,sleep=off` (so instruction
    /// counts are exact), connects to its serial port and waits for the firmware's hello frame
    /// (QEMU's STM32 USART drops bytes sent before the firmware enables it). `max_seconds`
    /// bounds the whole run.
    pub fn start(
        target: &Target,
        elf: &Path,
        max_seconds: u64,
        answer_timeout: Duration,
    ) -> Result<Self, DeviceError> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("uart.sock");
        let options = microdnn_targets::qemu::Options {
            icount: true,
            serial: microdnn_targets::qemu::Serial::UnixSocket(socket.clone()),
        };
        let mut cmd = microdnn_targets::qemu::command(target, elf, &options).ok_or_else(|| {
            DeviceError::Qemu(format!(
                "target `{}` runs on hardware only: use --device /dev/ttyACM0 (or your board's port)",
                target.name
            ))
        })?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: runs in the child between fork and exec; prctl(PR_SET_PDEATHSIG) is
        // async-signal-safe, touches no memory of the parent and only sets a property of the
        // child (SIGKILL when the spawning thread exits).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            DeviceError::Qemu(format!(
                "cannot run qemu-system-arm ({e}); `cargo xtask demo` installs it"
            ))
        })?;
        // QEMU creates the socket and waits for us before starting the guest.
        let start = Instant::now();
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(20) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        let mut err = String::new();
                        if let Some(mut e) = child.stderr.take() {
                            let _ = e.read_to_string(&mut err);
                        }
                        return Err(DeviceError::Qemu(format!(
                            "exited with {status}: {}",
                            err.trim()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    let _ = child.kill();
                    return Err(DeviceError::Qemu(format!(
                        "cannot connect to its UART socket: {e}"
                    )));
                }
            }
        };
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        // The watchdog: kill the emulator after `max_seconds` unless it was dropped before.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, pid) = (done.clone(), child.id() as libc::pid_t);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(max_seconds);
            while Instant::now() < deadline {
                if flag.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            if !flag.load(std::sync::atomic::Ordering::Acquire) {
                // SAFETY: plain syscall; `pid` is our child, not yet reaped (Drop sets `flag`
                // before it waits), so the number cannot have been reused.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        });
        let mut q = Self {
            child,
            done,
            socket,
            _dir: dir,
            link: Link::new(stream, answer_timeout),
        };
        q.link.wait_for_hello()?;
        Ok(q)
    }

    /// The socket the UART is connected to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The emulator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a real board's serial port (for example `/dev/ttyACM0`) at `baud`.
pub fn open_serial(
    path: &str,
    baud: u32,
    answer_timeout: Duration,
) -> Result<Link<Box<dyn serialport::SerialPort>>, DeviceError> {
    let port = serialport::new(path, baud)
        .timeout(Duration::from_millis(100))
        .open()
        .map_err(|e| DeviceError::Io(std::io::Error::other(format!("{path}: {e}"))))?;
    Ok(Link::new(port, answer_timeout))
}

/// Host-versus-device comparison over a labelled dataset.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EvalReport {
    /// Examples evaluated.
    pub samples: usize,
    /// Multiply-accumulates per inference of the model.
    pub macs: usize,
    /// Accuracy of the core running the model file on the host.
    pub host_accuracy: f64,
    /// Accuracy of the device.
    pub device_accuracy: f64,
    /// Accuracy of the trainer's own (batched) arithmetic, if a checkpoint was given.
    pub trainer_accuracy: Option<f64>,
    /// Examples whose every output is bit-identical between host and device.
    pub identical: usize,
    /// Largest |host − device| over all outputs (0 when all are identical).
    pub max_abs_diff: f64,
    /// Mean instructions per inference reported by the device.
    pub instructions_mean: f64,
    /// Smallest and largest instructions per inference.
    pub instructions_min: u64,
    /// Largest instructions per inference.
    pub instructions_max: u64,
    /// Examples where host and device predict different classes.
    pub class_disagreements: usize,
    /// The device's peak stack after the evaluation (INFO), if it reports one.
    pub stack_peak_bytes: Option<u32>,
}

/// Streams `x` (row-major raw inputs) through the device and through the core on the host with
/// the same model file, and compares. `progress` is called after each example.
pub fn evaluate<T: Read + Write>(
    link: &mut Link<T>,
    view: &ModelView<'_>,
    x: &[f32],
    labels: &[u32],
    mut progress: impl FnMut(usize),
) -> Result<EvalReport, DeviceError> {
    let n_in = view.inputs();
    let w = view.max_width();
    let (mut a, mut b) = (vec![0.0f32; w], vec![0.0f32; w]);
    let mut r = EvalReport {
        macs: view.macs(),
        instructions_min: u64::MAX,
        ..Default::default()
    };
    let (mut host_ok, mut dev_ok, mut ins_sum) = (0usize, 0usize, 0f64);
    // Integer inputs in 0..=255 (pixels, 8-bit sensors) travel as bytes: exact, 4x fewer bytes.
    let bytes_ok = x
        .iter()
        .all(|v| (0.0..=255.0).contains(v) && v.fract() == 0.0);
    for (i, (raw, &label)) in x.chunks_exact(n_in).zip(labels).enumerate() {
        let mut xi = raw.to_vec();
        let host = view
            .run(&mut xi, &mut a, &mut b)
            .map_err(|e| DeviceError::Protocol(format!("host run: {e}")))?
            .to_vec();
        let dev = if bytes_ok {
            let b: Vec<u8> = raw.iter().map(|v| *v as u8).collect();
            link.infer_u8(&b)?
        } else {
            link.infer(raw)?
        };
        if dev.outputs.len() != host.len() {
            return Err(DeviceError::Protocol(format!(
                "the device returned {} outputs, the model file has {}",
                dev.outputs.len(),
                host.len()
            )));
        }
        let hc = microdnn::argmax(&host);
        if hc as u32 == label {
            host_ok += 1;
        }
        if dev.class as u32 == label {
            dev_ok += 1;
        }
        if dev.class as usize != hc {
            r.class_disagreements += 1;
        }
        if host
            .iter()
            .zip(&dev.outputs)
            .all(|(h, d)| same_bits(*h, *d))
        {
            r.identical += 1;
        }
        for (h, d) in host.iter().zip(&dev.outputs) {
            if !same_bits(*h, *d) {
                // A NaN on one side only counts as an infinite difference.
                let diff = (*h as f64 - *d as f64).abs();
                r.max_abs_diff =
                    r.max_abs_diff
                        .max(if diff.is_nan() { f64::INFINITY } else { diff });
            }
        }
        ins_sum += dev.instructions as f64;
        r.instructions_min = r.instructions_min.min(dev.instructions);
        r.instructions_max = r.instructions_max.max(dev.instructions);
        r.samples += 1;
        progress(i + 1);
    }
    let n = r.samples.max(1) as f64;
    r.host_accuracy = host_ok as f64 / n;
    r.device_accuracy = dev_ok as f64 / n;
    r.instructions_mean = ins_sum / n;
    if r.samples == 0 {
        r.instructions_min = 0;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// What the fake device does to the bytes it receives and sends.
    #[derive(Default)]
    struct Faults {
        /// Requests whose frames are lost on the way in (the device never sees them).
        drop_requests: usize,
        /// Answers corrupted on the way out (one byte flipped).
        corrupt_answers: usize,
        /// The device never sends anything.
        silent: bool,
        /// Bytes the device sends on every read, forever (line noise without a delimiter, or
        /// whole frames).
        flood: Option<Vec<u8>>,
    }

    /// A device that sums its inputs (INFER) and answers the link like the firmware: the same
    /// decoder and `respond`.
    struct Summer {
        y: [f32; 2],
    }

    impl link::Responder for Summer {
        fn info(&self) -> DeviceInfo {
            DeviceInfo {
                inputs: 3,
                outputs: 2,
                ..Default::default()
            }
        }
        fn infer(&mut self, x: &[f32]) -> (u16, u64, &[f32]) {
            let s: f32 = x.iter().sum();
            self.y = [s, -s];
            (1, 42, &self.y)
        }
    }

    /// An in-memory device: decodes requests and answers them with `link::respond`.
    struct FakeDevice<R: link::Responder> {
        responder: R,
        inbox: FrameDecoder<4096>,
        outbox: VecDeque<u8>,
        faults: Faults,
    }

    impl<R: link::Responder> Read for FakeDevice<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if let Some(flood) = &self.faults.flood {
                let n = flood.len().min(buf.len());
                buf[..n].copy_from_slice(&flood[..n]);
                return Ok(n);
            }
            let n = buf.len().min(self.outbox.len()).min(7); // deliver in small pieces
            if n == 0 || self.faults.silent {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            for b in buf.iter_mut().take(n) {
                *b = self.outbox.pop_front().unwrap();
            }
            Ok(n)
        }
    }

    impl<R: link::Responder> Write for FakeDevice<R> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for &b in buf {
                let Some(received) = self.inbox.push(b) else {
                    continue;
                };
                if received.is_ok() && self.faults.drop_requests > 0 {
                    self.faults.drop_requests -= 1;
                    continue;
                }
                let (mut inputs, mut payload, mut tx) =
                    (vec![0.0; 1024], vec![0u8; 16 * 1024], vec![0u8; 20 * 1024]);
                let n = link::respond(
                    &mut self.responder,
                    received,
                    &mut inputs,
                    &mut payload,
                    &mut tx,
                );
                if self.faults.corrupt_answers > 0 && n > 3 {
                    self.faults.corrupt_answers -= 1;
                    tx[2] ^= 0x40;
                }
                self.outbox.extend(&tx[..n]);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn fake_with<R: link::Responder>(responder: R, timeout: Duration) -> Link<FakeDevice<R>> {
        Link::new(
            FakeDevice {
                responder,
                inbox: FrameDecoder::new(),
                outbox: VecDeque::new(),
                faults: Faults::default(),
            },
            timeout,
        )
    }

    fn fake() -> Link<FakeDevice<Summer>> {
        fake_with(Summer { y: [0.0; 2] }, Duration::from_secs(2))
    }

    #[test]
    fn request_reply_round_trips() {
        let mut l = fake();
        assert_eq!(l.ping(b"hello\0world").unwrap(), b"hello\0world");
        let a = l.infer(&[1.0, 2.0, 3.5]).unwrap();
        assert_eq!(
            a,
            Answer {
                class: 1,
                instructions: 42,
                outputs: vec![6.5, -6.5]
            }
        );
        assert_eq!(l.retries(), 0);
    }

    #[test]
    fn nans_compare_equal_whatever_their_bits() {
        // x86-64's default NaN (0.0/0.0, inf - inf) and ARM's.
        let x86 = f32::from_bits(0xffc0_0000);
        let arm = f32::from_bits(0x7fc0_0000);
        assert_ne!(x86.to_bits(), arm.to_bits());
        assert!(same_bits(x86, arm));
        assert!(same_bits(f32::from_bits(0x7f80_0001), arm)); // a signalling NaN too
        assert_eq!(canonical_bits(x86), CANONICAL_NAN);
        // Everything else is compared bit for bit: signed zeros differ, NaN is not a number.
        assert!(!same_bits(0.0, -0.0));
        assert!(!same_bits(arm, f32::INFINITY));
        assert!(same_bits(1.5, 1.5));
        // The same invalid operation on this host: inf - inf is a NaN, equal to ARM's.
        let inf = std::hint::black_box(f32::INFINITY);
        assert!(same_bits(inf - inf, arm));
    }

    #[test]
    fn a_stale_hello_is_not_an_answer() {
        let mut l = fake();
        let mut frame = vec![0u8; link::max_encoded_len(HELLO.len())];
        let n = link::encode_frame(kind::PONG, 0, HELLO, &mut frame).unwrap();
        l.io.outbox.extend(&frame[..n]);
        assert_eq!(l.ping(b"after").unwrap(), b"after");
        l.io.outbox.extend(&frame[..n]);
        l.wait_for_hello().unwrap();
    }

    #[test]
    fn device_errors_are_typed() {
        let mut l = fake();
        match l.infer(&[1.0, 2.0]) {
            Err(DeviceError::Rejected {
                code: ErrorCode::BadLength,
                detail: 3,
            }) => {}
            other => panic!("{other:?}"),
        }
        // Garbage on the line gets an error frame back, and the link keeps working.
        l.send_raw(&[0x13, 0x37, 0x00]).unwrap();
        assert!(matches!(l.receive(), Ok((kind::ERROR, 0, _))));
        assert_eq!(l.ping(b"ok").unwrap(), b"ok");
    }

    #[test]
    fn a_stale_partial_frame_does_not_break_the_next_request() {
        // What a real port can hold: half a frame from a host that died mid-request, then
        // nothing. Without the leading delimiter the device would glue it to the next request
        // and reject both.
        let mut l = fake();
        let mut frame = vec![0u8; 64];
        let n = link::encode_frame(kind::PING, 9, b"lost", &mut frame).unwrap();
        l.io.write_all(&frame[..n / 2]).unwrap();
        assert_eq!(l.ping(b"next").unwrap(), b"next");
        assert_eq!(l.infer(&[1.0, 1.0, 1.0]).unwrap().outputs, vec![3.0, -3.0]);
        assert_eq!(l.retries(), 0, "the answer to the stale bytes was skipped");
    }

    #[test]
    fn a_lost_request_or_a_corrupted_answer_is_sent_again_once() {
        let mut l = fake_with(Summer { y: [0.0; 2] }, Duration::from_millis(300));
        l.io.faults.drop_requests = 1;
        let t = Instant::now();
        assert_eq!(l.ping(b"again").unwrap(), b"again");
        assert_eq!(l.retries(), 1);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        l.io.faults.corrupt_answers = 1;
        assert_eq!(l.infer(&[1.0, 2.0, 3.0]).unwrap().outputs, vec![6.0, -6.0]);
        assert_eq!(l.retries(), 2);
        // Twice lost: a typed timeout, after two bounded waits.
        l.io.faults.drop_requests = 2;
        let t = Instant::now();
        assert!(matches!(l.ping(b"x"), Err(DeviceError::Timeout(_))));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Twice corrupted: said so.
        l.io.faults.corrupt_answers = 2;
        let e = l.ping(b"y").unwrap_err();
        assert!(
            matches!(&e, DeviceError::Protocol(m) if m.contains("corrupted twice")),
            "{e}"
        );
        // A request the device cannot take (longer than its buffer: it answers with sequence
        // number 0, as it cannot trust the frame's): after the retry, the device's reason.
        let e = l.ping(&vec![7u8; 5000]).unwrap_err();
        assert!(
            matches!(
                e,
                DeviceError::Rejected {
                    code: ErrorCode::TooLong,
                    ..
                }
            ),
            "{e}"
        );
        // And the link still works after all of it (late answers are skipped).
        assert_eq!(l.ping(b"z").unwrap(), b"z");
    }

    #[test]
    fn every_wait_ends_with_a_typed_timeout() {
        let timeout = Duration::from_millis(200);
        // Silence, line noise without a delimiter, and an endless stream of hellos and stale
        // answers: each request and the wait for the hello end within twice the timeout (one
        // retry) plus the grace after a corrupted frame.
        let mut hellos = vec![0u8; 64];
        let n = link::encode_frame(kind::PONG, 0, HELLO, &mut hellos).unwrap();
        hellos.truncate(n);
        let mut stale = vec![0u8; 64];
        let n = link::encode_frame(kind::PONG, 200, b"old", &mut stale).unwrap();
        hellos.extend(&stale[..n]);
        for (name, flood, silent) in [
            ("silence", None, true),
            ("noise", Some(vec![0x55; 512]), false),
            ("stale frames", Some(hellos), false),
        ] {
            let mut l = fake_with(Summer { y: [0.0; 2] }, timeout);
            l.io.faults.flood = flood.clone();
            l.io.faults.silent = silent;
            let t = Instant::now();
            let r = l.ping(b"anyone?");
            assert!(matches!(r, Err(DeviceError::Timeout(_))), "{name}: {r:?}");
            assert!(t.elapsed() < 3 * timeout, "{name}: {:?}", t.elapsed());
            if flood.is_none() || name == "noise" {
                let t = Instant::now();
                assert!(matches!(l.wait_for_hello(), Err(DeviceError::Timeout(_))));
                assert!(t.elapsed() < 2 * timeout, "{name}: {:?}", t.elapsed());
            }
        }
        // Garbled frames forever (each decodes to an error): still two bounded waits.
        let mut l = fake_with(Summer { y: [0.0; 2] }, timeout);
        l.io.faults.flood = Some(vec![0x13, 0x37, 0x00]);
        let t = Instant::now();
        assert!(l.ping(b"?").is_err());
        assert!(t.elapsed() < 3 * timeout, "{:?}", t.elapsed());
    }

    #[test]
    fn sequence_numbers_skip_zero() {
        let mut l = fake();
        let seqs: Vec<u8> = (0..600).map(|_| l.next_seq()).collect();
        assert!(!seqs.contains(&0));
        assert_eq!((seqs[0], seqs[254], seqs[255]), (1, 255, 1));
    }
}
