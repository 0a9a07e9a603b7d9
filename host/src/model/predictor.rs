//! Fast evaluation-mode inference: the allocation-free [`Predictor`].

use microdnn::Activation;

use super::{Layer, Sequential};
use crate::nn::matmul;

/// Runs `batch` rows of `x` through `steps` with buffers `a` and `b`; the output is left in
/// `a`. Returns the output width.
fn run_steps(
    steps: &[Step],
    a: &mut Vec<f32>,
    b: &mut Vec<f32>,
    x: &[f32],
    batch: usize,
    par: gemm::Parallelism,
) -> usize {
    let n = x.len();
    a[..n].copy_from_slice(x);
    let mut width = n / batch.max(1);
    for s in steps {
        match s {
            Step::Linear {
                w,
                b: bias,
                inp,
                out,
                ..
            } => {
                matmul::linear_forward(
                    &a[..batch * inp],
                    w,
                    bias,
                    &mut b[..batch * out],
                    batch,
                    *inp,
                    *out,
                    par,
                );
                std::mem::swap(a, b);
                width = *out;
            }
            Step::Affine { scale, shift } => {
                for row in a[..batch * width].chunks_exact_mut(width) {
                    for ((v, s), t) in row.iter_mut().zip(scale).zip(shift) {
                        *v = *v * s + t;
                    }
                }
            }
            Step::Act(act) => {
                if matches!(act, Activation::Softmax) {
                    a[..batch * width]
                        .chunks_exact_mut(width)
                        .for_each(|r| act.apply(r));
                } else {
                    act.apply(&mut a[..batch * width]);
                }
            }
        }
    }
    width
}

/// `[rows, cols]` row-major → `[cols, rows]` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// One inference step of a [`Predictor`].
#[derive(Clone, Debug)]
enum Step {
    /// `y = x Wᵀ + b`, weight `[out, in]`.
    Linear {
        w: Vec<f32>,
        /// The same weights transposed, `[in, out]`, for the batch-1 path.
        wt: Vec<f32>,
        b: Vec<f32>,
        inp: usize,
        out: usize,
        /// Every weight is finite: skipping zero inputs is exact.
        finite: bool,
    },
    /// `y = x * scale + shift` (folded batch norm).
    Affine { scale: Vec<f32>, shift: Vec<f32> },
    /// Element-wise activation.
    Act(Activation),
}

/// Fast evaluation-mode inference with buffers allocated once: batch 1 takes a single-threaded
/// matrix-vector path (no thread pool, no allocation; weights kept transposed so that inputs
/// that are exactly zero, common after ReLU, are skipped where every weight is finite, which
/// makes it exact), larger batches use GEMM. Batch norm is
/// folded into a per-feature scale and shift, dropout is dropped.
#[derive(Clone, Debug)]
pub struct Predictor {
    steps: Vec<Step>,
    max_batch: usize,
    max_width: usize,
    out_width: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    parallelism: gemm::Parallelism,
    /// Per-thread buffer pairs for split batches (empty when single-threaded).
    workers: Vec<(Vec<f32>, Vec<f32>)>,
    /// Gathered outputs of split batches.
    out: Vec<f32>,
    /// Indices of non-zero inputs (batch-1 path).
    nz: Vec<u32>,
    /// Batch 1 skips inputs that are exactly zero (in layers whose weights are all finite,
    /// where that is exact); see [`Predictor::dense`].
    skip_zeros: bool,
}

impl Predictor {
    /// A predictor for batches of up to `max_batch` examples, single-threaded.
    pub fn new(net: &Sequential, max_batch: usize) -> Self {
        let mut steps = Vec::new();
        for l in &net.layers {
            match l {
                Layer::Linear(l) => steps.push(Step::Linear {
                    wt: transpose(&l.weight, l.out_features, l.in_features),
                    w: l.weight.clone(),
                    b: l.bias.clone(),
                    inp: l.in_features,
                    out: l.out_features,
                    finite: l.weight.iter().all(|w| w.is_finite()),
                }),
                Layer::BatchNorm1d(bn) => {
                    let (scale, shift) = bn.folded();
                    steps.push(Step::Affine { scale, shift });
                }
                Layer::Activation(Activation::Identity) | Layer::Dropout(_) => {}
                Layer::Activation(a) => steps.push(Step::Act(*a)),
            }
        }
        let widths = net.widths();
        let max_width = widths.iter().copied().max().unwrap_or(0);
        Self {
            steps,
            max_batch,
            max_width,
            out_width: *widths.last().unwrap_or(&0),
            a: vec![0.0; max_batch * max_width],
            b: vec![0.0; max_batch * max_width],
            parallelism: gemm::Parallelism::None,
            workers: Vec::new(),
            out: Vec::new(),
            nz: vec![0; max_width],
            skip_zeros: true,
        }
    }

    /// Uses up to `threads` threads of the current rayon pool for batches (see
    /// [`Predictor::predict_batch`]).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.parallelism = matmul::parallelism(threads);
        self.workers.clear();
        if threads > 1 {
            let rows = self.max_batch.div_ceil(threads);
            self.workers = (0..threads)
                .map(|_| {
                    (
                        vec![0.0; rows * self.max_width],
                        vec![0.0; rows * self.max_width],
                    )
                })
                .collect();
            self.out = vec![0.0; self.max_batch * self.out_width];
        }
        self
    }

    /// Batch 1 without skipping zero inputs: every input is multiplied, the dense work PyTorch
    /// does (what `bench-train` compares); the outputs are the same wherever skipping is used.
    pub fn dense(mut self) -> Self {
        self.skip_zeros = false;
        self
    }

    /// Outputs for one example, without allocating.
    pub fn predict_one(&mut self, x: &[f32]) -> &[f32] {
        let n = x.len();
        self.a[..n].copy_from_slice(x);
        let mut width = n;
        for s in &self.steps {
            match s {
                Step::Linear {
                    wt,
                    b,
                    inp,
                    out,
                    finite,
                    ..
                } => {
                    let (x, y) = (&self.a[..*inp], &mut self.b[..*out]);
                    if self.skip_zeros && *finite {
                        matmul::matvec_t_sparse(wt, b, x, y, &mut self.nz);
                    } else {
                        matmul::matvec_t_dense(wt, b, x, y, &mut self.nz);
                    }
                    std::mem::swap(&mut self.a, &mut self.b);
                    width = *out;
                }
                Step::Affine { scale, shift } => {
                    for ((v, s), t) in self.a[..width].iter_mut().zip(scale).zip(shift) {
                        *v = *v * s + t;
                    }
                }
                Step::Act(a) => a.apply(&mut self.a[..width]),
            }
        }
        &self.a[..width]
    }

    /// Outputs `[batch, out]` for `batch <= max_batch` examples (row-major). With several
    /// threads and a large enough batch, the batch is cut into one contiguous block of rows per
    /// thread and each block runs through the whole network on its own thread and buffers
    /// (single-threaded GEMMs: no synchronisation between layers).
    pub fn predict_batch(&mut self, x: &[f32], batch: usize) -> &[f32] {
        assert!(
            batch <= self.max_batch,
            "batch {batch} > max_batch {}",
            self.max_batch
        );
        if batch == 1 {
            let n = self.predict_one(x).len();
            return &self.a[..n];
        }
        let inp = x.len() / batch;
        let threads = self.workers.len();
        if threads > 1 && batch >= 32 * threads {
            use rayon::prelude::*;
            let rows = batch.div_ceil(threads);
            let steps = &self.steps;
            self.workers
                .par_iter_mut()
                .zip(x.par_chunks(rows * inp))
                .for_each(|((a, b), xc)| {
                    run_steps(steps, a, b, xc, xc.len() / inp, gemm::Parallelism::None);
                });
            let ow = self.out_width;
            let mut done = 0;
            for ((a, _), xc) in self.workers.iter().zip(x.chunks(rows * inp)) {
                let n = xc.len() / inp * ow;
                self.out[done..done + n].copy_from_slice(&a[..n]);
                done += n;
            }
            return &self.out[..batch * ow];
        }
        let width = run_steps(
            &self.steps,
            &mut self.a,
            &mut self.b,
            x,
            batch,
            self.parallelism,
        );
        debug_assert_eq!(width, self.out_width);
        &self.a[..batch * width]
    }
}
