//! Tests of `propagate-sparsity`: constant channels folded into consumers, dead channels removed,
//! outputs unchanged, and the new weights' sparsity facts.

use super::*;
use crate::passes::channel_test_util::*;
use sparsec_ir::{Op, Pattern, Tensor};

/// Zeroes slices `rows` of axis 0 of a 2-D or 4-D weight (rows of `[n, ...]`).
fn zero_rows(t: &mut [f32], per_row: usize, rows: &[usize]) {
    for &r in rows {
        t[r * per_row..(r + 1) * per_row].fill(0.0);
    }
}

/// Runs the pass and checks that the outputs did not change.
fn propagate_and_check(g: &Graph, x: &Tensor) -> (Graph, Vec<String>) {
    let before = run1(g, x);
    let mut p = g.clone();
    let notes = propagate_sparsity(&mut p).expect("propagates");
    sparsec_ir::verify(&p).expect("verifies");
    let after = run1(&p, x);
    assert!(
        max_diff(&before, &after) < 1e-5,
        "{}",
        max_diff(&before, &after)
    );
    (p, notes)
}

fn weight_of<'a>(g: &'a Graph, name: &str, k: usize) -> &'a sparsec_ir::Weight {
    let n = g
        .node_ids()
        .into_iter()
        .find(|&n| g.node(n).name == name)
        .expect("node");
    g.weight(g.node(n).inputs[k].expect("operand"))
        .expect("weight")
}

#[test]
fn mlp_constant_rows_fold_and_dead_columns_go() {
    let (mut b, x) = Builder::new(&[3, 16]);
    // fc1 rows 3 (positive bias) and 7 (negative bias) are zero; fc2 never reads unit 5.
    let mut w1 = values(32 * 16, 5);
    zero_rows(&mut w1, 16, &[3, 7]);
    let mut b1 = values(32, 6);
    b1[3] = 0.75;
    b1[7] = -0.5;
    let w1 = b.tensor("fc1.w", Tensor::from_f32(&[32, 16], w1));
    let b1 = b.tensor("fc1.b", Tensor::from_f32(&[32], b1));
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: 0,
        trans_b: 1,
    };
    let h = b.node("fc1", gemm.clone(), &[Some(x), Some(w1), Some(b1)]);
    let r = b.node("relu", Op::Relu {}, &[Some(h)]);
    let mut w2 = values(24 * 32, 7);
    for row in 0..24 {
        w2[row * 32 + 5] = 0.0;
    }
    let w2 = b.tensor("fc2.w", Tensor::from_f32(&[24, 32], w2));
    let out = b.node("fc2", gemm, &[Some(r), Some(w2)]);
    let (g, xt) = b.finish(&[out]);
    assert_eq!(weight_of(&g, "fc1", 1).facts.zero_rows, 2);
    let (p, notes) = propagate_and_check(&g, &xt);
    assert_eq!(operand_shape(&p, "fc1", 1), [29, 16]);
    assert_eq!(operand_shape(&p, "fc1", 2), [29]);
    assert_eq!(operand_shape(&p, "fc2", 1), [24, 29]);
    // fc2 gained a bias holding relu(0.75) times its old column 3.
    assert_eq!(operand_shape(&p, "fc2", 2), [24]);
    let facts = weight_of(&p, "fc1", 1).facts;
    assert_eq!((facts.zero_rows, facts.pattern), (0, Pattern::Dense));
    assert_eq!(weight_of(&p, "fc2", 1).facts.pattern, Pattern::Dense);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("folded 2 constant input channels into `fc2`")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("removed 3 dead channels of `fc1` (32 -> 29)")),
        "{notes:?}"
    );
    // A second run finds nothing more.
    let mut q = p.clone();
    assert!(propagate_sparsity(&mut q).expect("runs").is_empty());
}

fn conv_relu_conv(pad2: i64) -> (Graph, Tensor) {
    let (mut b, x) = Builder::new(&[2, 3, 6, 6]);
    let mut w1 = values(8 * 27, 3);
    zero_rows(&mut w1, 27, &[2, 5]);
    let mut b1 = values(8, 4);
    b1[2] = -0.3;
    b1[5] = 0.6;
    let w1 = b.tensor("c1.w", Tensor::from_f32(&[8, 3, 3, 3], w1));
    let b1 = b.tensor("c1.b", Tensor::from_f32(&[8], b1));
    let c1 = b.node("c1", conv_op(1, 1), &[Some(x), Some(w1), Some(b1)]);
    let r = b.node("relu", Op::Relu {}, &[Some(c1)]);
    let w2 = b.weight("c2.w", &[4, 8, 3, 3]);
    let c2 = b.node("c2", conv_op(pad2, 1), &[Some(r), Some(w2)]);
    b.finish(&[c2])
}

#[test]
fn conv_relu_conv_folds_what_padding_allows() {
    // With padding only the zero constant (relu(-0.3)) folds; channel 5 stays.
    let (g, xt) = conv_relu_conv(1);
    let (p, _) = propagate_and_check(&g, &xt);
    assert_eq!(operand_shape(&p, "c1", 1), [7, 3, 3, 3]);
    assert_eq!(operand_shape(&p, "c2", 1), [4, 7, 3, 3]);
    let c2 = p
        .topo_order()
        .into_iter()
        .find(|&n| p.node(n).name == "c2")
        .unwrap();
    assert_eq!(p.node(c2).inputs.len(), 2, "no bias added");
    // Without padding both fold, channel 5 into a new bias of c2.
    let (g, xt) = conv_relu_conv(0);
    let (p, _) = propagate_and_check(&g, &xt);
    assert_eq!(operand_shape(&p, "c1", 1), [6, 3, 3, 3]);
    assert_eq!(operand_shape(&p, "c2", 1), [4, 6, 3, 3]);
    assert_eq!(operand_shape(&p, "c2", 2), [4]);
}

#[test]
fn constants_pass_batchnorm_and_flatten() {
    let (mut b, x) = Builder::new(&[2, 3, 4, 4]);
    let mut w1 = values(6 * 27, 3);
    zero_rows(&mut w1, 27, &[1, 4]);
    let w1 = b.tensor("c1.w", Tensor::from_f32(&[6, 3, 3, 3], w1));
    let c1 = b.node("c1", conv_op(1, 1), &[Some(x), Some(w1)]);
    let var: Vec<f32> = values(6, 9).iter().map(|v| v.abs() + 0.5).collect();
    let s = b.weight("bn.s", &[6]);
    let bb = b.weight("bn.b", &[6]);
    let m = b.weight("bn.m", &[6]);
    let v = b.tensor("bn.v", Tensor::from_f32(&[6], var));
    let n = b.node(
        "bn",
        Op::BatchNormalization { epsilon: 1e-5 },
        &[Some(c1), Some(s), Some(bb), Some(m), Some(v)],
    );
    let t = b.node("tanh", Op::Tanh {}, &[Some(n)]);
    let f = b.node("flat", Op::Flatten { axis: 1 }, &[Some(t)]);
    let out = b.linear("fc", f, 5);
    let (g, xt) = b.finish(&[out]);
    let (p, notes) = propagate_and_check(&g, &xt);
    assert_eq!(operand_shape(&p, "c1", 1), [4, 3, 3, 3]);
    assert_eq!(operand_shape(&p, "bn", 1), [4]);
    assert_eq!(operand_shape(&p, "fc", 1), [5, 64]);
    assert!(
        notes[0].contains("folded 32 constant input channels into `fc`"),
        "{notes:?}"
    );
}

#[test]
fn zero_rows_reaching_the_output_stay() {
    let (mut b, x) = Builder::new(&[2, 8]);
    let mut w = values(6 * 8, 3);
    zero_rows(&mut w, 8, &[0]);
    let w = b.tensor("w", Tensor::from_f32(&[6, 8], w));
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: 0,
        trans_b: 1,
    };
    let out = b.node("fc", gemm, &[Some(x), Some(w)]);
    let (g, xt) = b.finish(&[out]);
    let (p, notes) = propagate_and_check(&g, &xt);
    assert!(notes.is_empty());
    assert_eq!(operand_shape(&p, "fc", 1), [6, 8]);
}
