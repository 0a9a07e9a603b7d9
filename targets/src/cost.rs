//! The cost model: executed instructions of an f32 forward pass on a target, predicted from the
//! layer shapes and activations (`microdnn info --target NAME`).
//!
//! A layer of `I` inputs, `O` outputs costs, on one target, a linear combination of what its
//! kernel does ([`features`]): per layer (calls, set-up), per output row (the lanes' final sums,
//! the bias, the store), per block of five rows (loading and storing the accumulators), per
//! block and column group (the inner loop's bookkeeping), per multiply-accumulate of the full
//! 4-column groups and of the column tail, and per output of each activation (identity costs
//! nothing beyond the row). A network costs the sum of its layers plus a per-network constant.
//!
//! The coefficients of each target ([`COSTS`], generated in `cost_table.rs`) are fitted by least
//! squares by `cargo xtask cost-fixtures`, which runs the firmware's `cost` program (22 networks
//! of 2-3 layers, every activation, odd widths) under QEMU `-icount` on every QEMU target and
//! commits the measurements to `targets/tests/fixtures/cost/TARGET.json`. The layers of networks
//! 1 to 10 are fitted; networks 11 to 15 are held out, and `targets/tests/cost_model.rs` checks
//! every network's prediction against its measurement (within 2%).
//!
//! Soft-float cores (Cortex-M0/M3) take data-dependent paths; their coefficients are averages
//! over inputs uniform in `[0, 1)` and Glorot-uniform weights, so a network whose values differ a
//! lot (many exact zeros, say) may cost less.

use microdnn::Activation;

/// Number of coefficients of a target.
pub const N: usize = 16;

/// The names of the features (and coefficients), in order.
pub const FEATURES: [&str; N] = [
    "layer",
    "output_row",
    "block",
    "block_group",
    "block_group_weight_load",
    "block_group_pair",
    "group_mac",
    "tail_mac",
    "tail_row",
    "relu_output",
    "leaky_relu_output",
    "sigmoid_output",
    "tanh_output",
    "softmax_output",
    "softmax_layer",
    "network",
];

/// Rows per block of the f32 kernel (`microdnn::kernel::BLOCK_ROWS`).
const BLOCK: usize = microdnn::kernel::BLOCK_ROWS;

/// The features of one layer (the last one, `network`, is 0 here; [`predict`] adds 1 per
/// network). With `G = I / 4` full column groups and blocks of `H` rows: per block `G` group
/// steps, `G * ceil(H / 2)` weight loads (`VLDM`s of two rows), `G / 2` loop iterations (two
/// groups each), and `4 H G` group MACs; the `I mod 4` tail columns per row.
pub fn features(inputs: usize, outputs: usize, activation: Activation) -> [f64; N] {
    let groups = inputs / 4;
    let heights = (0..outputs.div_ceil(BLOCK)).map(|b| (outputs - b * BLOCK).min(BLOCK));
    let o = outputs as f64;
    let mut f = [0.0; N];
    f[0] = 1.0;
    f[1] = o;
    for h in heights {
        f[2] += 1.0;
        f[3] += groups as f64;
        f[4] += (groups * h.div_ceil(2)) as f64;
        f[5] += (groups / 2) as f64;
    }
    f[6] = (outputs * groups * 4) as f64;
    f[7] = (outputs * (inputs % 4)) as f64;
    f[8] = if inputs % 4 > 0 { o } else { 0.0 };
    let k = match activation {
        Activation::Identity => None,
        Activation::Relu => Some(9),
        Activation::LeakyRelu { .. } => Some(10),
        Activation::Sigmoid => Some(11),
        Activation::Tanh => Some(12),
        Activation::Softmax => Some(13),
    };
    if let Some(k) = k {
        f[k] = o;
    }
    if matches!(activation, Activation::Softmax) {
        f[14] = 1.0;
    }
    f
}

/// The features of a whole network: the sum of its layers' plus one `network`.
pub fn network_features(layers: &[(usize, usize, Activation)]) -> [f64; N] {
    let mut f = [0.0; N];
    for &(i, o, a) in layers {
        for (s, v) in f.iter_mut().zip(features(i, o, a)) {
            *s += v;
        }
    }
    f[N - 1] = 1.0;
    f
}

/// The coefficients of a target, if the model has been fitted for it.
pub fn coefficients(target: &str) -> Option<&'static [f64; N]> {
    COSTS.iter().find(|(t, _)| *t == target).map(|(_, c)| c)
}

/// Predicted executed instructions of one forward pass of a network of f32 `layers`
/// (`(inputs, outputs, activation)`) on `target`; `None` for a target without coefficients.
pub fn predict(target: &str, layers: &[(usize, usize, Activation)]) -> Option<f64> {
    let c = coefficients(target)?;
    Some(
        network_features(layers)
            .iter()
            .zip(c)
            .map(|(f, c)| f * c)
            .sum(),
    )
}

/// Least-squares coefficients for `rows` of (features, measured instructions): the normal
/// equations, solved by Gaussian elimination with partial pivoting; a feature no row uses gets
/// 0. `None` if the system is singular (features that cannot be told apart).
pub fn fit(rows: &[([f64; N], f64)]) -> Option<[f64; N]> {
    let used: Vec<usize> = (0..N)
        .filter(|&k| rows.iter().any(|(f, _)| f[k] != 0.0))
        .collect();
    let m = used.len();
    // Augmented matrix [A^T A | A^T y], over the used features.
    let mut a = vec![vec![0.0f64; m + 1]; m];
    for (f, y) in rows {
        for (r, &kr) in used.iter().enumerate() {
            for (c, &kc) in used.iter().enumerate() {
                a[r][c] += f[kr] * f[kc];
            }
            a[r][m] += f[kr] * y;
        }
    }
    for col in 0..m {
        let pivot = (col..m).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        for r in 0..m {
            if r != col {
                let k = a[r][col] / a[col][col];
                for c in col..=m {
                    a[r][c] -= k * a[col][c];
                }
            }
        }
    }
    let mut out = [0.0; N];
    for (r, &k) in used.iter().enumerate() {
        out[k] = a[r][m] / a[r][r];
    }
    Some(out)
}

include!("cost_table.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_known_coefficients() {
        // Layer instructions generated from known coefficients over varied shapes: the fit
        // finds them again (the per-network constant is fitted apart, by xtask).
        let truth = [
            40.0, 9.0, 30.0, 3.0, 1.0, 2.0, 1.25, 2.5, 7.0, 2.0, 4.0, 60.0, 70.0, 90.0, 50.0, 0.0,
        ];
        let acts = [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu { slope: 0.01 },
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softmax,
        ];
        let mut rows = Vec::new();
        for (k, (i, o)) in [
            (7, 3),
            (64, 10),
            (13, 29),
            (100, 40),
            (9, 100),
            (33, 6),
            (20, 17),
            (48, 8),
        ]
        .into_iter()
        .enumerate()
        {
            for (j, a) in acts.iter().enumerate() {
                for (i, o, a) in [(i, o, *a), (o, 3 + j + k, acts[(j + k) % 6])] {
                    let f = features(i, o, a);
                    let y: f64 = f.iter().zip(&truth).map(|(f, c)| f * c).sum();
                    rows.push((f, y));
                }
            }
        }
        let c = fit(&rows).expect("a well-posed system");
        for (got, want) in c.iter().zip(truth) {
            assert!((got - want).abs() < 1e-6 * want.max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn features_count_the_kernel_work() {
        // 37 inputs: 9 full groups and a tail of 1; 11 outputs: 3 blocks (5, 5, 1), whose
        // group steps load 3, 3 and 1 pairs of rows; 4 loop iterations of two groups each.
        let f = features(37, 11, Activation::Relu);
        let want = [1.0, 11.0, 3.0, 27.0, 63.0, 12.0, 396.0, 11.0, 11.0, 11.0];
        assert_eq!(f[..10], want);
        assert_eq!(f[6] + f[7], (37 * 11) as f64);
        assert_eq!(f[10..], [0.0; 6]);
    }
}
