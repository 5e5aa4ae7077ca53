//! `sparsec run` on the trained digits models reproduces their published test accuracy.

mod support;

use sparsec::tensor_io::read_tensor;
use std::path::Path;

fn accuracy(logits: &Path, labels: &Path) -> f64 {
    let (_, logits) = read_tensor(logits).expect("logits.pb is readable");
    let (_, labels) = read_tensor(labels).expect("labels are readable");
    let labels = labels.to_i64_vec();
    let v = logits.to_f32_vec();
    let classes = logits.shape()[1];
    assert_eq!(logits.shape(), &[labels.len(), classes]);
    let correct = labels
        .iter()
        .enumerate()
        .filter(|(i, &l)| {
            let row = &v[i * classes..(i + 1) * classes];
            let arg = (0..classes).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            arg as i64 == l
        })
        .count();
    correct as f64 / labels.len() as f64
}

fn published(shared: &Path, key: &str) -> f64 {
    // `... mlp 0.9741, cnn 0.9963`: the number right after the model's key.
    let text =
        std::fs::read_to_string(shared.join("models/digits/ACCURACY.txt")).expect("ACCURACY.txt");
    let at = text
        .to_lowercase()
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in ACCURACY.txt: {text}"));
    text[at + key.len()..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find_map(|t| t.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {key} accuracy in ACCURACY.txt: {text}"))
}

fn check(model: &str, input: &str, key: &str) {
    let Some(shared) = support::shared(model) else {
        return;
    };
    let d = shared.join("models/digits");
    let out = support::temp_dir(key);
    let result = support::sparsec(&[
        "run",
        d.join(model).to_str().unwrap(),
        "--input",
        &format!("x={}", d.join(input).display()),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "sparsec run failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let acc = accuracy(&out.join("logits.pb"), &d.join("test_labels.pb"));
    let expected = published(&shared, key);
    assert!(
        (acc - expected).abs() < 5e-4,
        "{model}: accuracy {acc:.4}, published {expected:.4}"
    );
    eprintln!("{model}: accuracy {acc:.4} (published {expected:.4})");
}

#[test]
fn mlp_accuracy_matches() {
    check("digits_mlp.onnx", "test_x_flat.pb", "mlp");
}

#[test]
fn cnn_accuracy_matches() {
    check("digits_cnn.onnx", "test_x_image.pb", "cnn");
}
