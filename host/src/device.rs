//! Talking to a device over the link of [`microdnn::link`]: a real board's serial port, or the
//! emulated serial port of any board of `microdnn_targets::TARGETS` in QEMU, and comparing its
//! answers with the host's.
//!
//! "The host's outputs" are those of the core crate running the same model file on the host
//! ([`microdnn::ModelView::run`]): the same arithmetic the device runs, so outputs are expected to
//! be bit-identical. Bit-for-bit comparisons canonicalise NaNs first ([`same_bits`]): x86-64 and
//! ARM produce different default NaNs (0xffc0_0000 and 0x7fc0_0000) for the same invalid
//! operation, and either way the output is "not a number".

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

/// Largest decoded frame the host accepts (a RESULT with 4096 outputs).
const MAX_FRAME: usize = link::decoder_capacity(16 * 1024 + 64);

/// Errors talking to a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Reading or writing the byte stream.
    #[error("link I/O: {0}")]
    Io(#[from] std::io::Error),
    /// No complete answer before the deadline.
    #[error("no answer from the device within {0:?}")]
    Timeout(Duration),
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

/// A request/response client over any byte stream.
pub struct Link<T: Read + Write> {
    io: T,
    seq: u8,
    decoder: Box<FrameDecoder<MAX_FRAME>>,
    timeout: Duration,
    tx: Vec<u8>,
    rx: Vec<u8>,
    pending: std::collections::VecDeque<u8>,
}

impl<T: Read + Write> Link<T> {
    /// A client over `io`; each request waits at most `timeout` for its answer. `io` should
    /// return from `read` periodically (a read timeout), so the deadline can be enforced.
    pub fn new(io: T, timeout: Duration) -> Self {
        Self {
            io,
            seq: 0,
            decoder: Box::new(FrameDecoder::new()),
            timeout,
            tx: vec![0; link::max_encoded_len(16 * 1024 + 64)],
            rx: vec![0; 4096],
            pending: std::collections::VecDeque::new(),
        }
    }

    /// Sends raw bytes (tests use it to send garbage).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), DeviceError> {
        self.io.write_all(bytes)?;
        self.io.flush()?;
        Ok(())
    }

    /// Sends one frame and returns the sequence number used.
    pub fn send(&mut self, kind: u8, payload: &[u8]) -> Result<u8, DeviceError> {
        self.seq = self.seq.wrapping_add(1);
        let n = link::encode_frame(kind, self.seq, payload, &mut self.tx)
            .map_err(|e| DeviceError::Protocol(e.to_string()))?;
        self.io.write_all(&self.tx[..n])?;
        self.io.flush()?;
        Ok(self.seq)
    }

    /// Waits for the next frame: `(kind, seq, payload)`. Frames the host cannot decode are
    /// reported as [`DeviceError::Protocol`]; bytes after a frame are kept for the next call.
    pub fn receive(&mut self) -> Result<(u8, u8, Vec<u8>), DeviceError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            while let Some(b) = self.pending.pop_front() {
                if let Some(r) = self.decoder.push(b) {
                    return r
                        .map(|f| (f.kind, f.seq, f.payload.to_vec()))
                        .map_err(|e| DeviceError::Protocol(format!("undecodable frame: {e}")));
                }
            }
            if Instant::now() > deadline {
                return Err(DeviceError::Timeout(self.timeout));
            }
            match self.io.read(&mut self.rx) {
                Ok(0) => return Err(DeviceError::Protocol("the device closed the link".into())),
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

    /// Sends a request and waits for the answer with the same sequence number.
    fn request(&mut self, kind: u8, payload: &[u8]) -> Result<(u8, Vec<u8>), DeviceError> {
        let seq = self.send(kind, payload)?;
        let (mut k, mut s, mut p) = self.receive()?;
        // A hello sent at boot may still be waiting (a board that started before the host
        // connected): it is not an answer.
        while k == kind::PONG && s == 0 && p == HELLO && seq != 0 {
            (k, s, p) = self.receive()?;
        }
        // A frame the device could not decode is answered with sequence number 0.
        if s != seq && !(k == kind::ERROR && s == 0) {
            return Err(DeviceError::Protocol(format!(
                "answer to request {s}, expected {seq}"
            )));
        }
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

    /// Waits for the device's hello frame (sent once when it starts listening), ignoring
    /// anything before it.
    pub fn wait_for_hello(&mut self) -> Result<(), DeviceError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if Instant::now() > deadline {
                return Err(DeviceError::Timeout(self.timeout));
            }
            match self.receive() {
                Ok((kind::PONG, 0, p)) if p == HELLO => return Ok(()),
                // Boot noise: another frame, or bytes that do not decode.
                Ok(_) => continue,
                Err(DeviceError::Protocol(m)) if m.starts_with("undecodable") => continue,
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

    /// An in-memory device: decodes requests and answers like the firmware would.
    struct FakeDevice {
        inbox: FrameDecoder<4096>,
        outbox: VecDeque<u8>,
        inputs: usize,
    }

    impl Read for FakeDevice {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.outbox.len()).min(7); // deliver in small pieces
            for b in buf.iter_mut().take(n) {
                *b = self.outbox.pop_front().unwrap();
            }
            if n == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        }
    }

    impl Write for FakeDevice {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            for &b in buf {
                let reply = match self.inbox.push(b) {
                    Some(Ok(f)) => match f.kind {
                        kind::PING => Some((kind::PONG, f.seq, f.payload.to_vec())),
                        kind::INFER if f.payload.len() == self.inputs * 4 => {
                            let mut x = vec![0.0; self.inputs];
                            link::read_f32s(f.payload, &mut x);
                            let s: f32 = x.iter().sum();
                            let mut p = vec![0u8; 64];
                            let n = link::result_payload(1, 42, &[s, -s], &mut p).unwrap();
                            Some((kind::RESULT, f.seq, p[..n].to_vec()))
                        }
                        kind::INFER => Some((
                            kind::ERROR,
                            f.seq,
                            link::error_payload(ErrorCode::BadLength, self.inputs as u16).to_vec(),
                        )),
                        _ => Some((
                            kind::ERROR,
                            f.seq,
                            link::error_payload(ErrorCode::UnknownKind, 0).to_vec(),
                        )),
                    },
                    Some(Err(e)) => Some((kind::ERROR, 0, link::error_payload(e, 0).to_vec())),
                    None => None,
                };
                if let Some((k, s, p)) = reply {
                    let mut out = vec![0u8; link::max_encoded_len(p.len())];
                    let n = link::encode_frame(k, s, &p, &mut out).unwrap();
                    self.outbox.extend(&out[..n]);
                }
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn fake() -> Link<FakeDevice> {
        Link::new(
            FakeDevice {
                inbox: FrameDecoder::new(),
                outbox: VecDeque::new(),
                inputs: 3,
            },
            Duration::from_secs(2),
        )
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
        assert!(matches!(l.receive(), Ok((kind::ERROR, _, _))));
        assert_eq!(l.ping(b"ok").unwrap(), b"ok");
    }
}
