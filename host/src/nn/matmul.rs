//! Matrix products on row-major `f32` matrices: GEMMs through the `gemm` crate (chosen over
//! `matrixmultiply` after `examples/gemm_shapes.rs`: about 220 vs 190 GFLOP/s single-threaded on
//! the shapes of an MNIST step, AVX-512 kernels, and it threads), and a hand-written sparse
//! matrix-vector kernel for batch-1 inference.
//!
//! Determinism: `gemm` splits the work between threads over output blocks only; the reduction
//! over `k` of every output element runs in the same order whatever the thread count, so results
//! are bit-identical with 1 or N threads (test `same_seed_same_bits_1_vs_2_threads` in
//! `host/tests/training.rs`).

use gemm::Parallelism;

/// The `gemm` parallelism for `threads` threads of the current rayon pool.
pub fn parallelism(threads: usize) -> Parallelism {
    if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// `dst[m, n] (=|+=) alpha * lhs[m, k] * rhs[k, n]` with explicit strides (row stride `rs`,
/// column stride `cs`, in elements).
#[allow(clippy::too_many_arguments)]
fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    // Bounds: the largest index touched must be inside each slice.
    assert!(dst.len() > (m - 1) * dst_rs + (n - 1), "dst too small");
    if k > 0 {
        assert!(
            lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs,
            "lhs too small"
        );
        assert!(
            rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs,
            "rhs too small"
        );
    }
    // SAFETY: the asserts above keep every access of the m x n x k product in bounds; the
    // destination does not alias the sources (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        )
    }
}

/// Dense forward: `y[b, out] = x[b, in] · w[out, in]ᵀ + bias`.
#[allow(clippy::too_many_arguments)]
pub fn linear_forward(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    batch: usize,
    inp: usize,
    out: usize,
    par: Parallelism,
) {
    for row in y[..batch * out].chunks_exact_mut(out) {
        row.copy_from_slice(bias);
    }
    gemm_strided(batch, out, inp, y, out, true, x, inp, 1, w, 1, inp, par);
}

/// Weight gradient: `dw[out, in] = dy[b, out]ᵀ · x[b, in]` (overwrites `dw`).
pub fn weight_grad(
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
    batch: usize,
    inp: usize,
    out: usize,
    par: Parallelism,
) {
    if batch == 0 {
        dw.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    gemm_strided(out, inp, batch, dw, inp, false, dy, 1, out, x, inp, 1, par);
}

/// Input gradient: `dx[b, in] = dy[b, out] · w[out, in]` (overwrites `dx`).
pub fn input_grad(
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    batch: usize,
    inp: usize,
    out: usize,
    par: Parallelism,
) {
    gemm_strided(batch, inp, out, dx, inp, false, dy, out, 1, w, inp, 1, par);
}

/// Column sums: `db[out] = Σ_b dy[b, out]` (fixed order, rows in sequence).
pub fn column_sums(dy: &[f32], db: &mut [f32], batch: usize, out: usize) {
    db.iter_mut().for_each(|v| *v = 0.0);
    for row in dy[..batch * out].chunks_exact(out) {
        for (d, v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// Matrix-vector product with the weights stored transposed, `wt[in, out]` row-major:
/// `y = b + Σ_k x[k] · wt[k, :]`, skipping the inputs that are exactly zero (after ReLU and on
/// image backgrounds most are). `nz` is scratch for the indices of the non-zero inputs (at
/// least `x.len()` long). Single-threaded, allocation-free; AVX-512 when available.
///
/// Skipping `x[k] == 0` is exact for finite weights (it only drops `+0` terms); an infinite
/// weight facing a zero input would give NaN in full arithmetic but is skipped here.
pub fn matvec_t_sparse(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], nz: &mut [u32]) {
    assert_eq!(wt.len(), x.len() * y.len(), "matvec_t: weight size");
    assert_eq!(b.len(), y.len(), "matvec_t: bias size");
    assert!(nz.len() >= x.len(), "matvec_t: scratch size");
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is available; sizes were checked above, so `nz` holds every
            // index and every gathered index is below `x.len()`.
            unsafe {
                let n = avx512::nonzero_indices(x, nz);
                avx512::matvec_t(wt, b, x, y, &nz[..n]);
            }
            return;
        }
    }
    let mut n = 0;
    for (k, &v) in x.iter().enumerate() {
        nz[n] = k as u32;
        n += (v != 0.0) as usize;
    }
    matvec_t_reference(wt, b, x, y, &nz[..n])
}

/// [`matvec_t_sparse`] without the skipping: every input is multiplied (the same dense work as
/// PyTorch's batch-1 `Linear`), so an infinite weight facing a zero input gives NaN as in full
/// arithmetic. `nz` is scratch (at least `x.len()` long).
pub fn matvec_t_dense(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], nz: &mut [u32]) {
    assert_eq!(wt.len(), x.len() * y.len(), "matvec_t: weight size");
    assert_eq!(b.len(), y.len(), "matvec_t: bias size");
    assert!(nz.len() >= x.len(), "matvec_t: scratch size");
    for (k, i) in nz.iter_mut().take(x.len()).enumerate() {
        *i = k as u32;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F is available; sizes were checked above, and every index in
            // `nz[..x.len()]` is below `x.len()`.
            unsafe {
                avx512::matvec_t(wt, b, x, y, &nz[..x.len()]);
            }
            return;
        }
    }
    matvec_t_reference(wt, b, x, y, &nz[..x.len()])
}

/// The portable twin of [`matvec_t_sparse`] (after the non-zero indices are gathered).
fn matvec_t_reference(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], nz: &[u32]) {
    let out = y.len();
    y.copy_from_slice(b);
    for &k in nz {
        let k = k as usize;
        let xk = x[k];
        for (yo, &w) in y.iter_mut().zip(&wt[k * out..(k + 1) * out]) {
            *yo += xk * w;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// `NB` blocks of 16 output columns held in registers while the non-zero inputs stream by.
    #[inline(always)]
    unsafe fn block<const NB: usize>(
        wt: *const f32,
        out: usize,
        col: usize,
        b: *const f32,
        x: &[f32],
        nz: &[u32],
        y: *mut f32,
    ) {
        let mut acc = [_mm512_setzero_ps(); NB];
        for (j, a) in acc.iter_mut().enumerate() {
            *a = _mm512_loadu_ps(b.add(col + 16 * j));
        }
        for &k in nz {
            let k = k as usize;
            let xv = _mm512_set1_ps(*x.get_unchecked(k));
            let row = wt.add(k * out + col);
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_loadu_ps(row.add(16 * j)), xv, *a);
            }
        }
        for (j, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(y.add(col + 16 * j), *a);
        }
    }

    /// Writes the indices `k` with `x[k] != 0` (NaN included) to `nz`, in order; returns their
    /// count. Sixteen inputs per step with a compressing store.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn nonzero_indices(x: &[f32], nz: &mut [u32]) -> usize {
        let (xp, out) = (x.as_ptr(), nz.as_mut_ptr());
        let zero = _mm512_setzero_ps();
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let (mut n, mut k) = (0usize, 0usize);
        while k + 16 <= x.len() {
            let m = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(_mm512_loadu_ps(xp.add(k)), zero);
            let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(k as i32));
            _mm512_mask_compressstoreu_epi32(out.add(n) as *mut _, m, idx);
            n += m.count_ones() as usize;
            k += 16;
        }
        while k < x.len() {
            *out.add(n) = k as u32;
            n += (*xp.add(k) != 0.0) as usize;
            k += 1;
        }
        n
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn matvec_t(wt: &[f32], b: &[f32], x: &[f32], y: &mut [f32], nz: &[u32]) {
        let out = y.len();
        let (w, bp, yp) = (wt.as_ptr(), b.as_ptr(), y.as_mut_ptr());
        let mut col = 0;
        while out - col >= 256 {
            block::<16>(w, out, col, bp, x, nz, yp);
            col += 256;
        }
        let rem = out - col;
        if rem >= 128 {
            block::<8>(w, out, col, bp, x, nz, yp);
            col += 128;
        }
        if out - col >= 64 {
            block::<4>(w, out, col, bp, x, nz, yp);
            col += 64;
        }
        if out - col >= 32 {
            block::<2>(w, out, col, bp, x, nz, yp);
            col += 32;
        }
        if out - col >= 16 {
            block::<1>(w, out, col, bp, x, nz, yp);
            col += 16;
        }
        let tail = out - col;
        if tail > 0 {
            let mask: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
            let mut a = _mm512_maskz_loadu_ps(mask, bp.add(col));
            for &k in nz {
                let k = k as usize;
                let xv = _mm512_set1_ps(*x.get_unchecked(k));
                a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w.add(k * out + col)), xv, a);
            }
            _mm512_mask_storeu_ps(yp.add(col), mask, a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{rng_for, uniform01};

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut r = rng_for(seed, 9);
        (0..n).map(|_| uniform01(&mut r) * 2.0 - 1.0).collect()
    }

    /// Naive f64 reference for x · wᵀ + b.
    fn naive(x: &[f32], w: &[f32], b: &[f32], batch: usize, inp: usize, out: usize) -> Vec<f64> {
        let mut y = vec![0.0f64; batch * out];
        for i in 0..batch {
            for o in 0..out {
                let mut s = b[o] as f64;
                for k in 0..inp {
                    s += x[i * inp + k] as f64 * w[o * inp + k] as f64;
                }
                y[i * out + o] = s;
            }
        }
        y
    }

    #[test]
    fn gemm_wrappers_match_naive_products() {
        let (batch, inp, out) = (7, 37, 13);
        let x = rand_vec(batch * inp, 1);
        let w = rand_vec(out * inp, 2);
        let b = rand_vec(out, 3);
        let dy = rand_vec(batch * out, 4);
        let mut y = vec![0.0; batch * out];
        linear_forward(&x, &w, &b, &mut y, batch, inp, out, Parallelism::None);
        for (a, r) in y.iter().zip(naive(&x, &w, &b, batch, inp, out)) {
            assert!((*a as f64 - r).abs() < 1e-4);
        }
        let mut dw = vec![0.0; out * inp];
        weight_grad(&dy, &x, &mut dw, batch, inp, out, Parallelism::None);
        for o in 0..out {
            for k in 0..inp {
                let r: f64 = (0..batch)
                    .map(|i| dy[i * out + o] as f64 * x[i * inp + k] as f64)
                    .sum();
                assert!((dw[o * inp + k] as f64 - r).abs() < 1e-4);
            }
        }
        let mut dx = vec![0.0; batch * inp];
        input_grad(&dy, &w, &mut dx, batch, inp, out, Parallelism::None);
        for i in 0..batch {
            for k in 0..inp {
                let r: f64 = (0..out)
                    .map(|o| dy[i * out + o] as f64 * w[o * inp + k] as f64)
                    .sum();
                assert!((dx[i * inp + k] as f64 - r).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn sparse_transposed_matvec_matches_the_f64_product() {
        for &(rows, cols) in &[
            (1, 1),
            (3, 5),
            (10, 128),
            (256, 784),
            (130, 47),
            (300, 9),
            (17, 33),
        ] {
            let w = rand_vec(rows * cols, 5);
            let mut wt = vec![0.0; rows * cols];
            for o in 0..rows {
                for k in 0..cols {
                    wt[k * rows + o] = w[o * cols + k];
                }
            }
            let mut x = rand_vec(cols, 6);
            x.iter_mut().step_by(3).for_each(|v| *v = 0.0);
            let b = rand_vec(rows, 7);
            let mut y = vec![0.0; rows];
            let mut nz = vec![0u32; cols];
            matvec_t_sparse(&wt, &b, &x, &mut y, &mut nz);
            let r = naive(&x, &w, &b, 1, cols, rows);
            for o in 0..rows {
                // Recursive summation of cols + 1 terms: |error| <= (cols + 1) u sum |terms|.
                let terms: f64 = (b[o].abs() as f64)
                    + (0..cols)
                        .map(|k| (x[k] as f64 * w[o * cols + k] as f64).abs())
                        .sum::<f64>();
                let bound = (cols + 1) as f64 * f32::EPSILON as f64 * terms;
                assert!(
                    (y[o] as f64 - r[o]).abs() <= bound,
                    "{rows}x{cols}: {} vs {}",
                    y[o],
                    r[o]
                );
            }
        }
    }

    #[test]
    fn dense_matvec_equals_sparse_on_finite_weights_and_keeps_inf_times_zero() {
        for &(rows, cols) in &[(3, 5), (10, 128), (130, 47), (17, 33)] {
            let w = rand_vec(rows * cols, 8);
            let mut wt = vec![0.0; rows * cols];
            for o in 0..rows {
                for k in 0..cols {
                    wt[k * rows + o] = w[o * cols + k];
                }
            }
            let mut x = rand_vec(cols, 9);
            x.iter_mut().step_by(2).for_each(|v| *v = 0.0);
            let b = rand_vec(rows, 10);
            let (mut ys, mut yd) = (vec![0.0; rows], vec![0.0; rows]);
            let mut nz = vec![0u32; cols];
            matvec_t_sparse(&wt, &b, &x, &mut ys, &mut nz);
            matvec_t_dense(&wt, &b, &x, &mut yd, &mut nz);
            // Skipping only drops `+0` products: the same sums, bit for bit, unless a sum is
            // -0 (a +0 term would make it +0): compared as values.
            assert_eq!(ys, yd, "{rows}x{cols}");
            // An infinite weight facing a zero input: NaN in full arithmetic, which only the
            // dense path keeps.
            wt[0] = f32::INFINITY;
            matvec_t_dense(&wt, &b, &x, &mut yd, &mut nz);
            assert!(yd[0].is_nan(), "{rows}x{cols}: inf * 0 must give NaN");
            matvec_t_sparse(&wt, &b, &x, &mut ys, &mut nz);
            assert!(!ys[0].is_nan());
        }
    }
}
