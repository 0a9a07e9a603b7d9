//! Lowering: the training-side layer list to the device's dense layers (the rules are in the
//! module docs of [`crate::export`]), with the error each fold adds, for the equivalence bound.

use microdnn::Activation;

use super::{DeviceLayer, ExportError, Lowered, OutputActivation, U};
use crate::data::InputTransform;
use crate::model::{BatchNorm1d, Layer, Linear, Model};

/// Relative error bound of a folded scale `s = gamma / sqrt(var + eps)` (add, sqrt, divide).
const SCALE_REL: f64 = 3.0 * U;

/// A batch norm in evaluation form, `y = x * scale + shift`, with the error bound of each
/// shift.
struct Folded {
    scale: Vec<f32>,
    shift: Vec<f32>,
    shift_err: Vec<f64>,
}

/// Lowers a trained model to device layers (see the module docs for the rules).
pub fn lower(model: &Model, output: OutputActivation) -> Result<Lowered, ExportError> {
    let mut layers: Vec<DeviceLayer> = Vec::new();
    let mut transform = model.transform.clone();
    let mut input_abs_err = vec![0.0f64; transform.scale.len()];
    // A batch norm seen after an activation, to fold into the next Linear's columns, and its
    // position.
    let mut pending: Option<(Folded, usize)> = None;
    let mut activation_set = false;
    for (i, l) in model.net.layers.iter().enumerate() {
        match l {
            Layer::Linear(lin) => {
                layers.push(device_layer(lin, pending.take().map(|p| p.0)));
                activation_set = false;
            }
            Layer::BatchNorm1d(bn) => {
                let f = fold(bn, i)?;
                match layers.last_mut() {
                    None => fold_into_transform(&f, &mut transform, &mut input_abs_err),
                    Some(last) if !activation_set => fold_into_rows(&f, last)?,
                    Some(_) => {
                        if pending.is_some() {
                            return Err(unsupported(i, "BatchNorm1d", "two batch norms in a row"));
                        }
                        pending = Some((f, i));
                    }
                }
            }
            Layer::Activation(a) => {
                let Some(last) = layers.last_mut() else {
                    return Err(unsupported(
                        i,
                        "activation",
                        "an activation before the first Linear",
                    ));
                };
                if pending.is_some() {
                    return Err(unsupported(
                        i,
                        "activation",
                        "an activation after a batch norm that follows an activation",
                    ));
                }
                if activation_set && *a != Activation::Identity {
                    return Err(unsupported(i, "activation", "two activations in a row"));
                }
                if *a != Activation::Identity {
                    last.activation = *a;
                    activation_set = true;
                }
            }
            Layer::Dropout(rate) => {
                if let Some(last) = layers.last_mut() {
                    last.dropout_rate = *rate;
                }
                // Input dropout (before the first Linear) is the identity at inference.
            }
        }
    }
    if let Some((_, at)) = pending {
        return Err(unsupported(
            at,
            "BatchNorm1d",
            "a batch norm after the last layer's activation",
        ));
    }
    let Some(last) = layers.last_mut() else {
        return Err(unsupported(0, "network", "no Linear layer"));
    };
    last.dropout_rate = 0.0; // no dropout on the network's output
    if output == OutputActivation::Softmax && !activation_set {
        last.activation = Activation::Softmax;
    }
    Ok(Lowered {
        layers,
        transform,
        input_abs_err,
    })
}

/// A `Linear` as a device layer (activation identity until one follows), with a pending batch
/// norm `h -> s*h + t` folded into its columns: `W (s*h + t) + b = (W diag(s)) h + (b + W t)`,
/// `W t` in f64.
fn device_layer(lin: &Linear, pending: Option<Folded>) -> DeviceLayer {
    let mut rows = lin.weight.clone();
    let mut bias = lin.bias.clone();
    let mut weight_rel_err = 0.0;
    let mut bias_abs_err = vec![0.0f64; lin.out_features];
    if let Some(Folded {
        scale,
        shift,
        shift_err,
    }) = pending
    {
        for (o, b) in bias.iter_mut().enumerate() {
            let row = &lin.weight[o * lin.in_features..(o + 1) * lin.in_features];
            let wt: f64 = row
                .iter()
                .zip(&shift)
                .map(|(w, t)| *w as f64 * *t as f64)
                .sum();
            let folded = *b as f64 + wt;
            *b = folded as f32;
            let werr: f64 = row
                .iter()
                .zip(&shift_err)
                .map(|(w, e)| (*w as f64).abs() * e)
                .sum();
            bias_abs_err[o] = werr + U * folded.abs();
        }
        for row in rows.chunks_mut(lin.in_features) {
            row.iter_mut().zip(&scale).for_each(|(w, s)| *w *= s);
        }
        weight_rel_err = SCALE_REL + U;
    }
    DeviceLayer {
        inputs: lin.in_features,
        outputs: lin.out_features,
        rows,
        bias,
        activation: Activation::Identity,
        dropout_rate: 0.0,
        weight_rel_err,
        bias_abs_err,
    }
}

/// The evaluation-mode batch norm at position `layer` as a scale and shift (the core's
/// `fold_stats`), with the error bound of each shift.
fn fold(bn: &BatchNorm1d, layer: usize) -> Result<Folded, ExportError> {
    let n = bn.features;
    let (mut scale, mut shift) = (vec![0.0; n], vec![0.0; n]);
    microdnn::batch_norm::fold_stats(
        &bn.weight,
        &bn.bias,
        &bn.running_mean,
        &bn.running_var,
        bn.eps,
        &mut scale,
        &mut shift,
    )
    .map_err(|source| ExportError::BatchNorm { layer, source })?;
    // Error of t = beta - m * s: the product and difference round (2u), and s carries
    // SCALE_REL.
    let shift_err = (0..n)
        .map(|j| {
            let ms = (bn.running_mean[j] as f64 * scale[j] as f64).abs();
            (2.0 * U + SCALE_REL) * ms + U * (bn.bias[j] as f64).abs()
        })
        .collect();
    Ok(Folded {
        scale,
        shift,
        shift_err,
    })
}

/// A batch norm before any `Linear`, folded into the input transform: `x'' = (x*a + c)*s + t`.
fn fold_into_transform(f: &Folded, transform: &mut InputTransform, input_abs_err: &mut [f64]) {
    let (scale, shift) = (&f.scale, &f.shift);
    for j in 0..scale.len() {
        let off = transform.offset[j] as f64 * scale[j] as f64;
        transform.offset[j] = transform.offset[j] * scale[j] + shift[j];
        transform.scale[j] *= scale[j];
        input_abs_err[j] = input_abs_err[j] * (scale[j] as f64).abs()
            + (2.0 * U + SCALE_REL) * off.abs()
            + f.shift_err[j]
            + U * (transform.offset[j] as f64).abs();
    }
}

/// A batch norm right after a `Linear`, folded into its rows (the core's `fold_into_slices`:
/// `W' = diag(s) W`, `b' = s b + t`).
fn fold_into_rows(f: &Folded, last: &mut DeviceLayer) -> Result<(), ExportError> {
    let (scale, shift) = (&f.scale, &f.shift);
    let before: Vec<f64> = last
        .bias
        .iter()
        .zip(scale)
        .map(|(b, s)| (*b as f64 * *s as f64).abs())
        .collect();
    microdnn::batch_norm::fold_into_slices(scale, shift, &mut last.rows, &mut last.bias)
        .map_err(ExportError::Shape)?;
    for (j, e) in last.bias_abs_err.iter_mut().enumerate() {
        *e = *e * (scale[j] as f64).abs()
            + (2.0 * U + SCALE_REL) * before[j]
            + f.shift_err[j]
            + U * (last.bias[j] as f64).abs();
    }
    last.weight_rel_err = last.weight_rel_err + SCALE_REL + U;
    Ok(())
}

fn unsupported(layer: usize, what: &'static str, why: &str) -> ExportError {
    ExportError::Unsupported {
        layer,
        what,
        why: why.into(),
    }
}
