//! Test accuracy of the digits CNN after `prune-channels` (one shot, no calibration or
//! retraining), at several fractions and norms, with parameter and MAC counts, run by the
//! reference interpreter on the 540 held-out images of the shared models folder.
//!
//! Usage: `cargo run --release -p sparsec --example prune_channels_digits [SHARED_DIR]`
//! (default: `$SPARSEC_SHARED` or `../shared`).

use sparsec::interp::run_graph;
use sparsec::onnx::{import_file, ImportOptions};
use sparsec::passes::{
    channel_report, default_pipeline, prune_channels, run_pipeline, ChannelMode, ChannelNorm,
    ChannelOptions, RunOptions,
};
use sparsec::tensor_io::read_tensor;
use sparsec_ir::{Graph, Tensor};
use std::path::PathBuf;

fn accuracy(graph: &Graph, x: &Tensor, labels: &[i64]) -> f64 {
    let out = run_graph(graph, std::slice::from_ref(x)).expect("the model runs");
    let v = out[0].to_f32_vec();
    let classes = out[0].shape()[1];
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

fn main() {
    let shared = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(sparsec::conformance::shared_dir);
    let d = shared.join("models/digits");
    let mut base = import_file(&d.join("digits_cnn.onnx"), &ImportOptions::default())
        .expect("the model imports");
    run_pipeline(&mut base, &default_pipeline(), &RunOptions::default()).expect("passes run");
    let (_, x) = read_tensor(&d.join("test_x_image.pb")).expect("test images");
    let (_, labels) = read_tensor(&d.join("test_labels.pb")).expect("test labels");
    let labels = labels.to_i64_vec();
    println!("dense: accuracy {:.4}", accuracy(&base, &x, &labels));
    // The default policy, then no exceptions (the first conv too; the last layer's outputs are
    // the logits, which no pruning changes).
    for policy in ["default", "all layers"] {
        for norm in [ChannelNorm::L1, ChannelNorm::L2] {
            for fraction in [0.25, 0.5] {
                let mut opts = ChannelOptions {
                    fraction,
                    norm,
                    ..ChannelOptions::default()
                };
                if policy == "all layers" {
                    opts.keep_first = false;
                    opts.min_params = 0;
                }
                let mut g = base.clone();
                let units = prune_channels(&mut g, &opts, ChannelMode::Remove).expect("prunes");
                let layers: Vec<String> = units
                    .iter()
                    .map(|u| format!("{} {}->{}", u.layers.join("+"), u.channels, u.kept.len()))
                    .collect();
                println!(
                    "fraction {fraction:.2} {norm} policy {policy}: accuracy {:.4}; {}; {}",
                    accuracy(&g, &x, &labels),
                    channel_report(&base, &g),
                    layers.join(", ")
                );
            }
        }
    }
}
