//! Tests of `fold-channel-affine`: results before and after against the interpreter, the
//! operand shapes and positions it folds and the ones it leaves, and a before/after snapshot.

use super::*;
use crate::passes::channel_test_util::{conv_op, max_diff, run1, Builder};

/// What follows the conv: `Mul` or `Add`, the constant's shape, and whether the constant is the
/// first operand.
#[derive(Clone, Copy)]
struct Step {
    mul: bool,
    shape: &'static [usize],
    first: bool,
}

/// The `Mul`/`Add` nodes of `g`.
fn affine_nodes(g: &Graph) -> usize {
    g.node_ids()
        .iter()
        .filter(|&&n| matches!(g.node(n).op, Op::Mul {} | Op::Add {}))
        .count()
}

/// Runs the pass on `g` and checks that the result did not change.
fn run_and_compare(mut g: Graph, x: &Tensor) -> (Graph, bool) {
    let before = run1(&g, x);
    let mut cx = PassContext::default();
    let changed = run(&mut g, &mut cx).expect("pass runs");
    sparsec_ir::verify(&g).expect("verifies");
    assert!(max_diff(&run1(&g, x), &before) <= 1e-5);
    (g, changed)
}

/// `x [1, 2, 5, 4] -> conv (4 channels, bias if asked) -> steps... -> relu`, the conv result also
/// read by a `Neg` when `extra_reader`; returns the graph after the pass and the number of
/// `Mul`/`Add` nodes left, checking that the result did not change.
fn fold_chain(steps: &[Step], bias: bool, extra_reader: bool) -> (Graph, usize) {
    let (mut b, x) = Builder::new(&[1, 2, 5, 4]);
    let w = b.weight("w", &[4, 2, 3, 3]);
    let bias = bias.then(|| b.weight("b", &[4]));
    let mut y = b.node("conv", conv_op(1, 1), &[Some(x), Some(w), bias]);
    let mut outputs = Vec::new();
    if extra_reader {
        outputs.push(b.node("neg", Op::Neg {}, &[Some(y)]));
    }
    for (i, s) in steps.iter().enumerate() {
        let t = b.weight(&format!("t{i}"), s.shape);
        let (op, name) = if s.mul {
            (Op::Mul {}, format!("mul{i}"))
        } else {
            (Op::Add {}, format!("add{i}"))
        };
        let ins = if s.first {
            [Some(t), Some(y)]
        } else {
            [Some(y), Some(t)]
        };
        y = b.node(&name, op, &ins);
    }
    outputs.insert(0, b.node("relu", Op::Relu {}, &[Some(y)]));
    let (g, xt) = b.finish(&outputs);
    let (g, _) = run_and_compare(g, &xt);
    let left = affine_nodes(&g);
    (g, left)
}

const MUL_C: Step = Step {
    mul: true,
    shape: &[4, 1, 1],
    first: false,
};
const ADD_1C: Step = Step {
    mul: false,
    shape: &[1, 4, 1, 1],
    first: true,
};

#[test]
fn folds_scale_then_shift_with_and_without_bias() {
    for bias in [true, false] {
        let (g, left) = fold_chain(&[MUL_C, ADD_1C], bias, false);
        assert_eq!(left, 0, "bias {bias}");
        let convs = g
            .node_ids()
            .iter()
            .filter(|&&n| matches!(g.node(n).op, Op::Conv { .. }))
            .count();
        assert_eq!(convs, 1);
    }
}

#[test]
fn folds_scalars_and_either_operand_order() {
    for shape in [&[][..], &[1], &[1, 1, 1, 1]] {
        for first in [true, false] {
            for mul in [true, false] {
                let (_, left) = fold_chain(&[Step { mul, shape, first }], true, false);
                assert_eq!(left, 0, "mul {mul} shape {shape:?} first {first}");
            }
        }
    }
}

#[test]
fn leaves_constants_that_vary_off_the_channel_axis_or_grow_the_result() {
    for shape in [
        &[1, 1, 5, 4][..],
        &[4, 1, 1, 1],
        &[2, 1, 4, 1, 1],
        &[1, 4, 5, 1],
    ] {
        let (_, left) = fold_chain(
            &[Step {
                mul: true,
                shape,
                first: false,
            }],
            true,
            false,
        );
        assert_eq!(left, 1, "shape {shape:?}");
    }
}

#[test]
fn leaves_a_conv_result_with_another_reader() {
    let (_, left) = fold_chain(&[MUL_C, ADD_1C], true, true);
    assert_eq!(left, 2);
}

/// `x -> BatchNormalization (constant parameters) -> Mul -> Add -> Relu`, as DenseNet writes its
/// pre-activation: both fold into the BN's scale and bias, and the result does not change.
#[test]
fn folds_into_a_batchnorm_with_constant_parameters() {
    let (mut b, x) = Builder::new(&[2, 3, 4, 2]);
    let (scale, bias, mean) = (
        b.weight("scale", &[3]),
        b.weight("bias", &[3]),
        b.weight("mean", &[3]),
    );
    let var = b.tensor("var", Tensor::from_f32(&[3], vec![0.3, 1.2, 0.7]));
    let bn_op = Op::BatchNormalization { epsilon: 1e-5 };
    let bn = b.node(
        "bn",
        bn_op,
        &[Some(x), Some(scale), Some(bias), Some(mean), Some(var)],
    );
    let s = b.weight("s", &[3, 1, 1]);
    let u = b.weight("u", &[1, 3, 1, 1]);
    let m = b.node("mul", Op::Mul {}, &[Some(bn), Some(s)]);
    let a = b.node("add", Op::Add {}, &[Some(u), Some(m)]);
    let r = b.node("relu", Op::Relu {}, &[Some(a)]);
    let (g, xt) = b.finish(&[r]);
    let (g, changed) = run_and_compare(g, &xt);
    assert!(changed);
    let ops: Vec<&str> = g.node_ids().iter().map(|&n| g.node(n).op.name()).collect();
    assert_eq!(ops.len(), 2, "{ops:?}");
}

#[test]
fn snapshot_before_and_after() {
    let (mut b, x) = Builder::with_input(Tensor::from_f32(&[1, 1, 3, 3], vec![0.5; 9]));
    let w = b.tensor("w", Tensor::from_f32(&[2, 1, 1, 1], vec![1.0, -2.0]));
    let s = b.tensor("scale", Tensor::from_f32(&[2, 1, 1], vec![0.5, 3.0]));
    let t = b.tensor("shift", Tensor::from_f32(&[2, 1, 1], vec![1.0, -1.0]));
    let c = b.node("conv", conv_op(0, 1), &[Some(x), Some(w)]);
    let m = b.node("scale", Op::Mul {}, &[Some(c), Some(s)]);
    let a = b.node("shift", Op::Add {}, &[Some(m), Some(t)]);
    let r = b.node("relu", Op::Relu {}, &[Some(a)]);
    let (mut g, _) = b.finish(&[r]);
    let before = sparsec_ir::print(&g);
    let mut cx = PassContext::default();
    run(&mut g, &mut cx).expect("runs");
    crate::passes::dce::run(&mut g, &mut cx).expect("dce");
    let after = sparsec_ir::print(&g);
    insta::assert_snapshot!(format!(
        "; before\n{before}; after\n{after}; notes\n{}\n",
        cx.notes.join("\n")
    ));
}
