//! The cost model: executed instructions of an f32 forward pass on a target, predicted from the
//! layer shapes and activations (`microdnn info --target NAME`).
//!
//! A layer of `I` inputs, `O` outputs costs, on one target, a linear combination of what its
//! kernel does ([`features`]): per layer (calls, set-up), per block of rows of each height (1 to
//! 5: each has its own code), per multiply-accumulate of the full 4-column groups and of the
//! column tail, and per output of each activation (the identity costs nothing). A network costs
//! the sum of its layers plus a per-network constant.
//!
//! The coefficients of each target ([`COSTS`], generated in `cost_table.rs`) are fitted by least
//! squares (on each fitted network's layers, measured alone, and on the whole networks, with the
//! per-network constant) by `cargo xtask cost-fixtures`, which runs the firmware's `cost` program (22 networks
//! of 2-3 layers, every activation, odd widths) under QEMU `-icount` on every QEMU target and
//! commits the measurements to `targets/tests/fixtures/cost/TARGET.json`. The layers of networks
//! 1 to 10 are fitted; networks 11 to 15 are held out, and `targets/tests/cost_model.rs` checks
//! every network's prediction against its measurement (within 2%).
//!
//! Accuracy (`cargo xtask cost-fixtures --all`, held by the test): on the hard-float Cortex-M4F,
//! M7, M33 and STM32F405 the held-out networks are predicted within 1.94% and the fitted ones
//! within 2.67%; the Cortex-M55 within 2.48% and 3.06%. Soft-float cores (Cortex-M0/M3) run each
//! f32 operation in library code whose path depends on the values: their coefficients are
//! averages over inputs uniform in `[0, 1)` and Glorot-uniform weights, and predictions are off
//! by up to 15%.

use microdnn::Activation;

/// Number of coefficients of a target.
pub const N: usize = 14;

/// The names of the features (and coefficients), in order.
pub const FEATURES: [&str; N] = [
    "layer",
    "block_of_1_row",
    "block_of_2_rows",
    "block_of_3_rows",
    "block_of_4_rows",
    "block_of_5_rows",
    "group_mac",
    "tail_mac",
    "relu_output",
    "leaky_relu_output",
    "sigmoid_output",
    "tanh_output",
    "softmax_output",
    "network",
];

/// Rows per block of the f32 kernel (`microdnn::kernel::BLOCK_ROWS`).
const BLOCK: usize = microdnn::kernel::BLOCK_ROWS;

/// The features of one layer (the last one, `network`, is 0 here; [`network_features`] adds 1
/// per network): one per layer, the number of blocks of each height (a block's set-up, its
/// lanes' final sums, bias and stores: each height has its own code), the multiply-accumulates
/// of the full 4-column groups and of the `I mod 4` tail columns, and the outputs of each
/// activation but the identity.
pub fn features(inputs: usize, outputs: usize, activation: Activation) -> [f64; N] {
    let groups = inputs / 4;
    let o = outputs as f64;
    let mut f = [0.0; N];
    f[0] = 1.0;
    f[5] = (outputs / BLOCK) as f64;
    if let Some(k) = (outputs % BLOCK).checked_sub(1) {
        f[1 + k] = 1.0;
    }
    f[6] = (outputs * groups * 4) as f64;
    f[7] = (outputs * (inputs % 4)) as f64;
    let k = match activation {
        Activation::Identity => None,
        Activation::Relu => Some(8),
        Activation::LeakyRelu { .. } => Some(9),
        Activation::Sigmoid => Some(10),
        Activation::Tanh => Some(11),
        Activation::Softmax => Some(12),
    };
    if let Some(k) = k {
        f[k] = o;
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
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let k = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= k * p;
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
        // Layer and network instructions generated from known coefficients over varied shapes:
        // the fit finds them again.
        let truth = [
            40.0, 300.0, 260.0, 320.0, 400.0, 140.0, 1.25, 2.5, 2.0, 4.0, 60.0, 70.0, 90.0, 25.0,
        ];
        let acts = [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu { slope: 0.01 },
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softmax,
        ];
        let dot = |f: &[f64; N]| f.iter().zip(&truth).map(|(f, c)| f * c).sum::<f64>();
        let mut rows = Vec::new();
        for (k, (i, o)) in [
            (7, 3),
            (64, 10),
            (13, 29),
            (100, 40),
            (9, 100),
            (33, 6),
            (20, 17),
        ]
        .into_iter()
        .enumerate()
        {
            for (j, a) in acts.iter().enumerate() {
                let layers = [(i, o, *a), (o, 1 + j + k, acts[(j + k) % 6])];
                for &(i, o, a) in &layers {
                    let f = features(i, o, a);
                    rows.push((f, dot(&f)));
                }
                let f = network_features(&layers);
                rows.push((f, dot(&f)));
            }
        }
        let c = fit(&rows).expect("a well-posed system");
        for (got, want) in c.iter().zip(truth) {
            assert!((got - want).abs() < 1e-6 * want.max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn features_count_the_kernel_work() {
        // 37 inputs: 9 full groups and a tail of 1; 11 outputs: blocks of 5, 5 and 1 rows.
        let f = features(37, 11, Activation::Relu);
        assert_eq!(
            f,
            [1.0, 1.0, 0.0, 0.0, 0.0, 2.0, 396.0, 11.0, 11.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(f[6] + f[7], (37 * 11) as f64);
        // 10 outputs: two full blocks, no short one; softmax.
        let f = features(64, 10, Activation::Softmax);
        assert_eq!(f[1..6], [0.0, 0.0, 0.0, 0.0, 2.0]);
        assert_eq!(f[12], 10.0);
    }
}
