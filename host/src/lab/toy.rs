//! 2-D two-class toy sets (seeded) and the rasteriser of a model's decision boundary.

use crate::data::Dataset;
use crate::model::Sequential;
pub use crate::plot::Raster;
use crate::random::{normal, rng_for, uniform01};

/// Two interleaved half-moons (scikit-learn's `make_moons`): `n` points, half per class, with
/// Gaussian noise of standard deviation `noise`. Deterministic for a seed.
pub fn two_moons(n: usize, noise: f32, seed: u64) -> Dataset {
    let mut rng = rng_for(seed, 10);
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i % 2) as u32;
        let t = std::f32::consts::PI * uniform01(&mut rng);
        let (px, py) = if class == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        x.push(px + noise * normal(&mut rng));
        x.push(py + noise * normal(&mut rng));
        y.push(class);
    }
    Dataset {
        features: 2,
        classes: 2,
        x,
        y,
    }
}

/// The bounding box of a 2-D data set, padded by `pad` on every side.
pub fn bounds(d: &Dataset, pad: f32) -> (f32, f32, f32, f32) {
    let mut b = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for r in d.x.chunks_exact(2) {
        b = (b.0.min(r[0]), b.1.max(r[0]), b.2.min(r[1]), b.3.max(r[1]));
    }
    (b.0 - pad, b.1 + pad, b.2 - pad, b.3 + pad)
}

/// Rasterises a two-class network (logits out, inputs already in its space) over a rectangle:
/// softmax of the two logits at each cell centre.
pub fn rasterise(net: &Sequential, rect: (f32, f32, f32, f32), nx: usize, ny: usize) -> Raster {
    let (x0, x1, y0, y1) = rect;
    let mut r = Raster {
        x0,
        x1,
        y0,
        y1,
        nx,
        ny,
        prob: Vec::new(),
    };
    let mut inputs = Vec::with_capacity(2 * nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            let (x, y) = r.centre(i, j);
            inputs.extend_from_slice(&[x, y]);
        }
    }
    let out = net.predict(&inputs, nx * ny);
    r.prob = out
        .chunks_exact(2)
        .map(|z| 1.0 / (1.0 + (z[0] - z[1]).exp()))
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, Linear};

    #[test]
    fn moons_are_seeded_balanced_and_shaped() {
        let a = two_moons(200, 0.1, 7);
        assert_eq!(a, two_moons(200, 0.1, 7));
        assert_ne!(a, two_moons(200, 0.1, 8));
        assert_eq!((a.len(), a.features, a.classes), (200, 2, 2));
        assert_eq!(a.y.iter().filter(|&&c| c == 1).count(), 100);
        // Without noise every point lies on its unit half-circle.
        let clean = two_moons(100, 0.0, 1);
        for (r, &c) in clean.x.chunks_exact(2).zip(&clean.y) {
            let (cx, cy) = if c == 0 { (0.0, 0.0) } else { (1.0, 0.5) };
            let d = ((r[0] - cx).powi(2) + (r[1] - cy).powi(2)).sqrt();
            assert!((d - 1.0).abs() < 1e-5);
            assert!(if c == 0 { r[1] >= 0.0 } else { r[1] <= 0.5 });
        }
        let (x0, x1, y0, y1) = bounds(&clean, 0.0);
        assert!(x0 >= -1.0 && x1 <= 2.0 && y0 >= -0.5 && y1 <= 1.0);
    }

    #[test]
    fn raster_follows_a_linear_boundary() {
        // Logits (0, x - y): class 1 above... below the diagonal y = x.
        let net = Sequential::new(vec![Layer::Linear(
            Linear::from_parts(2, 2, vec![0.0, 0.0, 1.0, -1.0], vec![0.0, 0.0]).unwrap(),
        )]);
        let r = rasterise(&net, (-1.0, 1.0, -1.0, 1.0), 10, 10);
        assert_eq!(r.prob.len(), 100);
        for j in 0..10 {
            for i in 0..10 {
                let (x, y) = r.centre(i, j);
                assert_eq!(r.prob[j * 10 + i] > 0.5, x > y, "cell ({i}, {j})");
            }
        }
        assert!((r.class1_share() - 0.45).abs() < 1e-9);
    }
}
