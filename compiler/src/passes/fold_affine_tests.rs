//! Tests of `fold-channel-affine`: results before and after against the interpreter, the
//! operand shapes and positions it folds and the ones it leaves, and a before/after snapshot.

use super::*;
use crate::interp::{eval_op, run_graph};

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn weight(g: &mut Graph, name: &str, shape: &[usize], seed: u64) -> ValueId {
    g.add_weight(
        name,
        Tensor::from_f32(shape, values(shape.iter().product(), seed)),
    )
}

/// Adds a node typed by what the interpreter computes on `data` (data of its operands).
fn node(
    g: &mut Graph,
    name: &str,
    op: Op,
    inputs: Vec<Option<ValueId>>,
    data: &[Option<&Tensor>],
) -> (ValueId, Tensor) {
    let t = eval_op(&op, data, 1).expect("evaluates").remove(0);
    let n = g.add_node(name, op, inputs, vec![(format!("{name}_out"), t.ty())]);
    (g.node(n).outputs[0], t)
}

fn conv() -> Op {
    Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: 1,
        kernel_shape: vec![],
        pads: vec![1, 1, 1, 1],
        strides: vec![],
    }
}

/// What follows the conv: `Mul` or `Add`, the constant's shape, and whether the constant is the
/// first operand.
#[derive(Clone, Copy)]
struct Step {
    mul: bool,
    shape: &'static [usize],
    first: bool,
}

/// `x [1, 2, 5, 4] -> conv (4 channels, bias if asked) -> steps... -> relu`; returns the graph,
/// the input and the number of `Mul`/`Add` nodes left after the pass, checking that the result
/// did not change.
fn fold_chain(steps: &[Step], bias: bool, extra_reader: bool) -> (Graph, usize) {
    let mut g = Graph::new("affine");
    let xt = Tensor::from_f32(&[1, 2, 5, 4], values(40, 99));
    let x = g.add_input("x", xt.ty());
    let w = weight(&mut g, "w", &[4, 2, 3, 3], 1);
    let b = bias.then(|| weight(&mut g, "b", &[4], 2));
    let ins = vec![Some(x), Some(w), b];
    let data: Vec<Option<Tensor>> = ins[1..]
        .iter()
        .map(|v| v.map(|v| g.const_data(v).cloned().expect("const")))
        .collect();
    let mut refs = vec![Some(&xt)];
    refs.extend(data.iter().map(Option::as_ref));
    let (mut y, mut yt) = node(&mut g, "conv", conv(), ins, &refs);
    let mut outputs = Vec::new();
    if extra_reader {
        let (n, _) = node(&mut g, "neg", Op::Neg {}, vec![Some(y)], &[Some(&yt)]);
        outputs.push(n);
    }
    for (i, s) in steps.iter().enumerate() {
        let t = weight(&mut g, &format!("t{i}"), s.shape, 10 + i as u64);
        let tt = g.const_data(t).cloned().expect("const");
        let (op, name) = if s.mul {
            (Op::Mul {}, format!("mul{i}"))
        } else {
            (Op::Add {}, format!("add{i}"))
        };
        let (ins, data) = if s.first {
            (vec![Some(t), Some(y)], [Some(&tt), Some(&yt)])
        } else {
            (vec![Some(y), Some(t)], [Some(&yt), Some(&tt)])
        };
        (y, yt) = node(&mut g, &name, op, ins, &data);
    }
    let (r, _) = node(&mut g, "relu", Op::Relu {}, vec![Some(y)], &[Some(&yt)]);
    outputs.insert(0, r);
    g.set_outputs(outputs);
    let before = run_graph(&g, std::slice::from_ref(&xt)).expect("runs");
    let mut cx = PassContext::default();
    run(&mut g, &mut cx).expect("pass runs");
    sparsec_ir::verify(&g).expect("verifies");
    let after = run_graph(&g, &[xt]).expect("runs");
    for (a, b) in after.iter().zip(&before) {
        for (a, b) in a.to_f32_vec().iter().zip(b.to_f32_vec()) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
    let left = g
        .node_ids()
        .iter()
        .filter(|&&n| matches!(g.node(n).op, Op::Mul {} | Op::Add {}))
        .count();
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

#[test]
fn snapshot_before_and_after() {
    let mut g = Graph::new("affine");
    let xt = Tensor::from_f32(&[1, 1, 3, 3], values(9, 5));
    let x = g.add_input("x", xt.ty());
    let w = g.add_weight("w", Tensor::from_f32(&[2, 1, 1, 1], vec![1.0, -2.0]));
    let s = g.add_weight("scale", Tensor::from_f32(&[2, 1, 1], vec![0.5, 3.0]));
    let t = g.add_weight("shift", Tensor::from_f32(&[2, 1, 1], vec![1.0, -1.0]));
    let wd = g.const_data(w).cloned();
    let (sd, td) = (g.const_data(s).cloned(), g.const_data(t).cloned());
    let op = Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group: 1,
        kernel_shape: vec![],
        pads: vec![],
        strides: vec![],
    };
    let (c, ct) = node(
        &mut g,
        "conv",
        op,
        vec![Some(x), Some(w)],
        &[Some(&xt), wd.as_ref()],
    );
    let (m, mt) = node(
        &mut g,
        "scale",
        Op::Mul {},
        vec![Some(c), Some(s)],
        &[Some(&ct), sd.as_ref()],
    );
    let (a, at) = node(
        &mut g,
        "shift",
        Op::Add {},
        vec![Some(m), Some(t)],
        &[Some(&mt), td.as_ref()],
    );
    let (r, _) = node(&mut g, "relu", Op::Relu {}, vec![Some(a)], &[Some(&at)]);
    g.set_outputs(vec![r]);
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

/// `x -> BatchNormalization (constant parameters) -> Mul -> Add -> Relu`, as DenseNet writes its
/// pre-activation: both fold into the BN's scale and bias, and the result does not change.
#[test]
fn folds_into_a_batchnorm_with_constant_parameters() {
    let mut g = Graph::new("bn_affine");
    let xt = Tensor::from_f32(&[2, 3, 4, 2], values(48, 3));
    let x = g.add_input("x", xt.ty());
    let var: Vec<f32> = values(3, 4).iter().map(|v| v.abs() + 0.2).collect();
    let params = [
        weight(&mut g, "scale", &[3], 5),
        weight(&mut g, "bias", &[3], 6),
        weight(&mut g, "mean", &[3], 7),
        g.add_weight("var", Tensor::from_f32(&[3], var)),
    ];
    let pd: Vec<Option<Tensor>> = params.iter().map(|&v| g.const_data(v).cloned()).collect();
    let mut ins = vec![Some(x)];
    ins.extend(params.iter().map(|&v| Some(v)));
    let mut data = vec![Some(&xt)];
    data.extend(pd.iter().map(Option::as_ref));
    let bn_op = Op::BatchNormalization { epsilon: 1e-5 };
    let (b, bt) = node(&mut g, "bn", bn_op, ins, &data);
    let s = weight(&mut g, "s", &[3, 1, 1], 8);
    let u = weight(&mut g, "u", &[1, 3, 1, 1], 9);
    let (sd, ud) = (g.const_data(s).cloned(), g.const_data(u).cloned());
    let (m, mt) = node(
        &mut g,
        "mul",
        Op::Mul {},
        vec![Some(b), Some(s)],
        &[Some(&bt), sd.as_ref()],
    );
    let (a, at) = node(
        &mut g,
        "add",
        Op::Add {},
        vec![Some(u), Some(m)],
        &[ud.as_ref(), Some(&mt)],
    );
    let (r, _) = node(&mut g, "relu", Op::Relu {}, vec![Some(a)], &[Some(&at)]);
    g.set_outputs(vec![r]);
    let before = run_graph(&g, std::slice::from_ref(&xt)).expect("runs");
    let mut cx = PassContext::default();
    assert!(run(&mut g, &mut cx).expect("pass runs"));
    sparsec_ir::verify(&g).expect("verifies");
    let ops: Vec<&str> = g.node_ids().iter().map(|&n| g.node(n).op.name()).collect();
    assert_eq!(ops.len(), 2, "{ops:?}");
    let after = run_graph(&g, &[xt]).expect("runs");
    for (p, q) in after[0].to_f32_vec().iter().zip(before[0].to_f32_vec()) {
        assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{p} vs {q}");
    }
}
