//! Monte-Carlo dropout on the device: the link's `MC` request and its comparison with the core
//! running the same passes on the host.
//!
//! # The API (for experiments built on it)
//!
//! ```no_run
//! # fn demo(link: &mut microdnn_host::device::Link<std::os::unix::net::UnixStream>,
//! #         view: &microdnn::ModelView<'_>, image: &[f32]) -> anyhow::Result<()> {
//! use microdnn_host::device::mc::host_mc;
//! // 20 passes, masks from seed 7; `image` is raw (the device applies the input transform).
//! let device = link.mc(image, 20, 7)?;
//! let host = host_mc(view, image, 20, 7)?; // the same passes on the host, same bits
//! assert!(device.same_bits(&host));
//! println!(
//!     "class {} entropy {} nats, mutual information {}, {} instructions",
//!     device.class,
//!     device.entropy,
//!     device.mutual_information(),
//!     device.instructions
//! );
//! # Ok(()) }
//! ```
//!
//! - [`Link::mc`] (f32 inputs) and [`Link::mc_u8`] (inputs 0..=255, a quarter of the bytes)
//!   send one request: `passes` in `1..=`[`link::MAX_MC_PASSES`], any `seed`. The answer,
//!   [`McReply`], has the mean probability and standard deviation of each class over the passes,
//!   the class of the mean, the predictive entropy `H[mean]`, the expected entropy `E_k H[p_k]`
//!   (nats; [`McReply::mutual_information`] is their difference) and the instructions the
//!   device spent (QEMU `-icount`: exact; 0 on a board that does not measure them).
//! - Errors are typed: [`DeviceError::Rejected`] with [`ErrorCode::BadPasses`] (detail: the
//!   maximum) or [`ErrorCode::Unsupported`] (the model's last activation is neither softmax
//!   nor the identity; the host's [`host_mc`] says the same with
//!   [`microdnn::Error::NotADistribution`]); [`DeviceError::Timeout`] if the device does not
//!   answer within the link's timeout (raise it with [`Link::set_timeout`] for many passes of
//!   a large model: the instructions grow linearly with `passes`).
//! - [`host_mc`] runs the same passes with the core on the host ([`microdnn::ModelView::mc`]);
//!   [`evaluate_mc`] does both over a data set, example `i` with seed `seed + i`, and reports
//!   agreement, accuracy of the mean, mean entropies and instruction counts, with one
//!   [`McExample`] per input (label, class, entropy, mutual information, largest mean
//!   probability) for downstream statistics such as an AUROC.

use std::io::{Read, Write};
use std::num::NonZeroU32;

use microdnn::link::{self, kind, ErrorCode, InputEncoding, McRequest};
use microdnn::ModelView;
use serde::Serialize;

use super::{same_bits, DeviceError, Link};

/// A Monte-Carlo summary, from the device ([`Link::mc`]) or the host ([`host_mc`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct McReply {
    /// The class of the mean probabilities.
    pub class: u16,
    /// Passes run.
    pub passes: u16,
    /// Instructions spent (the device's count; 0 on the host).
    pub instructions: u64,
    /// Predictive entropy `H[mean]`, nats.
    pub entropy: f32,
    /// Mean over the passes of each pass's entropy, nats.
    pub expected_entropy: f32,
    /// Mean probability of each class.
    pub mean: Vec<f32>,
    /// Standard deviation of each class's probability over the passes.
    pub std: Vec<f32>,
}

impl McReply {
    /// `entropy - expected_entropy` (BALD), nats.
    pub fn mutual_information(&self) -> f32 {
        self.entropy - self.expected_entropy
    }

    /// Whether every number (class, passes, entropies, means, standard deviations) is the same
    /// bit for bit, NaNs canonicalised; the instruction counts are not compared.
    pub fn same_bits(&self, other: &McReply) -> bool {
        let all = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_bits(*x, *y))
        };
        self.class == other.class
            && self.passes == other.passes
            && same_bits(self.entropy, other.entropy)
            && same_bits(self.expected_entropy, other.expected_entropy)
            && all(&self.mean, &other.mean)
            && all(&self.std, &other.std)
    }

    /// Largest |difference| over the means, standard deviations and entropies (infinite if a
    /// NaN is on one side only; 0 when [`McReply::same_bits`]).
    pub fn max_abs_diff(&self, other: &McReply) -> f64 {
        let pairs = self
            .mean
            .iter()
            .zip(&other.mean)
            .chain(self.std.iter().zip(&other.std))
            .chain([
                (&self.entropy, &other.entropy),
                (&self.expected_entropy, &other.expected_entropy),
            ]);
        pairs
            .filter(|(a, b)| !same_bits(**a, **b))
            .map(|(a, b)| {
                let d = (*a as f64 - *b as f64).abs();
                if d.is_nan() {
                    f64::INFINITY
                } else {
                    d
                }
            })
            .fold(0.0, f64::max)
    }
}

impl<T: Read + Write> Link<T> {
    /// Monte-Carlo dropout on the device: `passes` passes on raw f32 inputs `x`, masks from
    /// `seed` (see the [module docs](self)).
    pub fn mc(&mut self, x: &[f32], passes: u16, seed: u64) -> Result<McReply, DeviceError> {
        let mut payload = McRequest::header(passes, InputEncoding::F32, seed).to_vec();
        payload.resize(link::MC_REQUEST_HEADER_LEN + x.len() * 4, 0);
        link::write_f32s(x, &mut payload[link::MC_REQUEST_HEADER_LEN..]);
        self.mc_payload(&payload)
    }

    /// [`Link::mc`] with inputs 0..=255 sent as bytes (converted to f32 exactly by the device).
    pub fn mc_u8(&mut self, x: &[u8], passes: u16, seed: u64) -> Result<McReply, DeviceError> {
        let mut payload = McRequest::header(passes, InputEncoding::U8, seed).to_vec();
        payload.extend_from_slice(x);
        self.mc_payload(&payload)
    }

    fn mc_payload(&mut self, payload: &[u8]) -> Result<McReply, DeviceError> {
        let (k, p) = self.request(kind::MC, payload)?;
        if k != kind::MC_RESULT {
            return Err(DeviceError::Protocol(format!(
                "expected MC_RESULT, got kind {k:#04x}"
            )));
        }
        let r = link::McResult::parse(&p)
            .ok_or_else(|| DeviceError::Protocol(format!("MC_RESULT of {} bytes", p.len())))?;
        let read = |b: &[u8]| {
            let mut v = vec![0.0; b.len() / 4];
            link::read_f32s(b, &mut v);
            v
        };
        Ok(McReply {
            class: r.class,
            passes: r.passes,
            instructions: r.instructions,
            entropy: r.entropy,
            expected_entropy: r.expected_entropy,
            mean: read(r.mean),
            std: read(r.std),
        })
    }
}

/// The same Monte-Carlo passes as the device's, run by the core on the host
/// ([`microdnn::ModelView::mc`]) on raw inputs `x`.
pub fn host_mc(
    view: &ModelView<'_>,
    x: &[f32],
    passes: u16,
    seed: u64,
) -> Result<McReply, microdnn::Error> {
    let passes_nz = NonZeroU32::new(u32::from(passes)).ok_or(microdnn::Error::Shape {
        what: "passes",
        expected: 1,
        found: 0,
    })?;
    let w = view.max_width();
    let c = view.outputs();
    let (mut a, mut b) = (vec![0.0; w], vec![0.0; w]);
    let (mut mean, mut std, mut pass) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
    let mut xs = x.to_vec();
    let s = view.mc(
        &mut xs, &mut a, &mut b, passes_nz, seed, &mut mean, &mut std, &mut pass,
    )?;
    Ok(McReply {
        class: u16::try_from(s.class).unwrap_or(u16::MAX),
        passes,
        instructions: 0,
        entropy: s.entropy,
        expected_entropy: s.expected_entropy,
        mean,
        std,
    })
}

/// One input of [`evaluate_mc`], as the device answered it.
#[derive(Clone, Debug, Serialize)]
pub struct McExample {
    /// The true class.
    pub label: u32,
    /// The class of the mean probabilities.
    pub class: u16,
    /// Predictive entropy, nats.
    pub entropy: f32,
    /// Mutual information (predictive minus expected entropy), nats.
    pub mutual_information: f32,
    /// The largest mean probability.
    pub max_probability: f32,
    /// Instructions spent on the request.
    pub instructions: u64,
}

/// Monte-Carlo passes on a data set, device against host.
#[derive(Clone, Debug, Default, Serialize)]
pub struct McEvalReport {
    /// Examples evaluated.
    pub samples: usize,
    /// Passes per example.
    pub passes: u16,
    /// Seed of example 0 (example `i` uses `seed + i`, wrapping).
    pub seed: u64,
    /// Examples whose whole summary is bit-identical between host and device.
    pub identical: usize,
    /// Largest |host − device| over every number of every summary.
    pub max_abs_diff: f64,
    /// Accuracy of the class of the device's mean probabilities.
    pub device_accuracy: f64,
    /// The same on the host.
    pub host_accuracy: f64,
    /// Mean predictive entropy (device), nats.
    pub entropy_mean: f64,
    /// Mean mutual information (device), nats.
    pub mutual_information_mean: f64,
    /// Mean instructions per request.
    pub instructions_mean: f64,
    /// Smallest instructions per request.
    pub instructions_min: u64,
    /// Largest instructions per request.
    pub instructions_max: u64,
    /// Requests the link sent twice.
    pub retries: u64,
    /// The device's peak stack after the evaluation (INFO), if it reports one.
    pub stack_peak_bytes: Option<u32>,
    /// Per example.
    pub examples: Vec<McExample>,
}

/// Sends every row of `x` (raw inputs) to the device as an MC request of `passes` passes (row
/// `i` with seed `seed + i`), runs the same passes on the host with the core, and compares.
/// `progress` is called after each example.
pub fn evaluate_mc<T: Read + Write>(
    link: &mut Link<T>,
    view: &ModelView<'_>,
    x: &[f32],
    labels: &[u32],
    passes: u16,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<McEvalReport, DeviceError> {
    let n_in = view.inputs();
    let mut r = McEvalReport {
        passes,
        seed,
        instructions_min: u64::MAX,
        ..Default::default()
    };
    let retries_before = link.retries();
    let bytes_ok = x
        .iter()
        .all(|v| (0.0..=255.0).contains(v) && v.fract() == 0.0);
    let (mut dev_ok, mut host_ok, mut ins, mut h, mut mi) = (0usize, 0usize, 0f64, 0f64, 0f64);
    for (i, (raw, &label)) in x.chunks_exact(n_in).zip(labels).enumerate() {
        let s = seed.wrapping_add(i as u64);
        let host = host_mc(view, raw, passes, s).map_err(|e| match e {
            microdnn::Error::NotADistribution { .. } => DeviceError::Protocol(format!(
                "{e} (the device refuses it too: {})",
                ErrorCode::Unsupported
            )),
            e => DeviceError::Protocol(format!("host run: {e}")),
        })?;
        let dev = if bytes_ok {
            let b: Vec<u8> = raw.iter().map(|v| *v as u8).collect();
            link.mc_u8(&b, passes, s)?
        } else {
            link.mc(raw, passes, s)?
        };
        if dev.mean.len() != host.mean.len() {
            return Err(DeviceError::Protocol(format!(
                "the device returned {} classes, the model file has {}",
                dev.mean.len(),
                host.mean.len()
            )));
        }
        if dev.same_bits(&host) {
            r.identical += 1;
        }
        r.max_abs_diff = r.max_abs_diff.max(dev.max_abs_diff(&host));
        dev_ok += usize::from(u32::from(dev.class) == label);
        host_ok += usize::from(u32::from(host.class) == label);
        ins += dev.instructions as f64;
        h += f64::from(dev.entropy);
        mi += f64::from(dev.mutual_information());
        r.instructions_min = r.instructions_min.min(dev.instructions);
        r.instructions_max = r.instructions_max.max(dev.instructions);
        r.examples.push(McExample {
            label,
            class: dev.class,
            entropy: dev.entropy,
            mutual_information: dev.mutual_information(),
            max_probability: dev.mean.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
            instructions: dev.instructions,
        });
        r.samples += 1;
        progress(i + 1);
    }
    let n = r.samples.max(1) as f64;
    r.device_accuracy = dev_ok as f64 / n;
    r.host_accuracy = host_ok as f64 / n;
    r.instructions_mean = ins / n;
    r.entropy_mean = h / n;
    r.mutual_information_mean = mi / n;
    if r.samples == 0 {
        r.instructions_min = 0;
    }
    r.retries = link.retries() - retries_before;
    Ok(r)
}
