//! A network trained and saved by PyTorch 2.15 (fixture made by
//! `tests/fixtures/pytorch/make_fixture.py`) imports, exports and computes PyTorch's own
//! outputs: the independent reference here is PyTorch, not this crate.

use std::path::PathBuf;

use microdnn_host::export::{self, AlignedModel, OutputActivation};
use microdnn_host::import::pytorch;
use microdnn_host::model::Model;
use microdnn_host::InputTransform;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

#[derive(serde::Deserialize)]
struct Expected {
    input_scale: f32,
    input_offset: f32,
    inputs: Vec<Vec<f32>>,
    probs_f64: Vec<Vec<f64>>,
    probs_f32: Vec<Vec<f32>>,
}

#[test]
fn pytorch_state_dict_exports_and_matches_pytorch() {
    let arch = pytorch::parse_architecture(&std::fs::read_to_string(fixture("arch.txt")).unwrap())
        .unwrap();
    let net = pytorch::load_state_dict(&fixture("model.safetensors"), &arch, "").unwrap();
    let exp: Expected =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let mut transform = InputTransform::identity(64);
    transform.scale.fill(exp.input_scale);
    transform.offset.fill(exp.input_offset);
    let model = Model {
        net,
        transform,
        classes: 10,
    };

    let lowered = export::lower(&model, OutputActivation::Softmax).unwrap();
    assert_eq!(
        lowered.layers.len(),
        3,
        "both batch norms folded, dropout dropped"
    );
    let file = AlignedModel::new(&export::encode(&lowered).unwrap());
    let view = file.view().unwrap();
    let raw: Vec<f32> = exp.inputs.concat();

    // Our f64 reading of the unfolded network is PyTorch's f64 forward.
    for (x, p) in exp.inputs.iter().zip(&exp.probs_f64) {
        let ours = export::reference_forward(&model, &lowered, x);
        for (a, b) in ours.iter().zip(p) {
            assert!((a - b).abs() < 1e-9, "reference {a} vs PyTorch f64 {b}");
        }
    }
    // The exported file, run by the core as a device would, is within the derived bound of it.
    let eq = export::check_equivalence(&model, &lowered, &file, &raw).unwrap();
    assert!(eq.max_error_to_bound <= 1.0, "{eq:?}");
    // And agrees with PyTorch's own f32 computation to f32 accuracy, class for class.
    let (mut a, mut b) = (vec![0.0; view.max_width()], vec![0.0; view.max_width()]);
    for (x, p32) in exp.inputs.iter().zip(&exp.probs_f32) {
        let mut xi = x.clone();
        let y = view.run(&mut xi, &mut a, &mut b).unwrap();
        for (d, t) in y.iter().zip(p32) {
            assert!((d - t).abs() < 1e-5, "device {d} vs PyTorch f32 {t}");
        }
        let torch_class = p32
            .iter()
            .enumerate()
            .fold(0, |m, (i, v)| if *v > p32[m] { i } else { m });
        assert_eq!(microdnn::argmax(y), torch_class);
    }
}

#[test]
fn missing_tensors_and_wrong_shapes_are_reported_with_the_file() {
    let arch = pytorch::parse_architecture(
        "Linear(64, 32) BatchNorm1d(32) ReLU() Dropout(0.2) Linear(32, 11)",
    )
    .unwrap();
    let e = pytorch::load_state_dict(&fixture("model.safetensors"), &arch, "").unwrap_err();
    assert!(
        e.to_string().contains("model.safetensors") && e.to_string().contains("shape"),
        "{e}"
    );
    let arch = pytorch::parse_architecture("Linear(64, 32)").unwrap();
    let e = pytorch::load_state_dict(&fixture("model.safetensors"), &arch, "net.").unwrap_err();
    assert!(
        e.to_string().contains("net.0.weight") && e.to_string().contains("missing"),
        "{e}"
    );
}
