//! Tests of the plan the lowering builds: views of an operand's bytes run as no step.

use crate::engine::Engine;
use crate::interp::{eval_op, run_graph};
use sparsec_ir::{Graph, Op, Tensor, ValueId};

/// Adds a node typed by what the interpreter computes on `data`.
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

/// `x -> relu -> reshape -> dropout -> flatten -> neg -> (output)`, plus a reshape of `x` that is
/// itself a graph output and one read by a second `neg`.
#[test]
fn views_run_as_no_step_and_outputs_keep_their_copy() {
    let mut g = Graph::new("views");
    let xt = Tensor::from_f32(&[2, 3, 4], (0..24).map(|i| i as f32 * 0.5 - 5.0).collect());
    let x = g.add_input("x", xt.ty());
    let shape = g.add_weight("shape", Tensor::from_i64(&[2], vec![6, 4]));
    let st = g.const_data(shape).cloned();
    let (r, rt) = node(&mut g, "relu", Op::Relu {}, vec![Some(x)], &[Some(&xt)]);
    let reshape = Op::Reshape { allowzero: 0 };
    let (s, s_t) = node(
        &mut g,
        "reshape",
        reshape.clone(),
        vec![Some(r), Some(shape)],
        &[Some(&rt), st.as_ref()],
    );
    let (d, dt) = node(
        &mut g,
        "dropout",
        Op::Dropout {},
        vec![Some(s)],
        &[Some(&s_t)],
    );
    let (f, ft) = node(
        &mut g,
        "flatten",
        Op::Flatten { axis: 0 },
        vec![Some(d)],
        &[Some(&dt)],
    );
    let (y, _) = node(&mut g, "neg", Op::Neg {}, vec![Some(f)], &[Some(&ft)]);
    let (o, _) = node(
        &mut g,
        "reshape_out",
        reshape.clone(),
        vec![Some(x), Some(shape)],
        &[Some(&xt), st.as_ref()],
    );
    let (v, vt) = node(
        &mut g,
        "reshape_in",
        reshape,
        vec![Some(x), Some(shape)],
        &[Some(&xt), st.as_ref()],
    );
    let (z, _) = node(&mut g, "neg2", Op::Neg {}, vec![Some(v)], &[Some(&vt)]);
    g.set_outputs(vec![y, o, z]);
    let want = run_graph(&g, std::slice::from_ref(&xt)).expect("runs");
    let mut e = Engine::new(g, 1).expect("engine");
    let compiled = e
        .compile_for_inputs(std::slice::from_ref(&xt))
        .expect("compiles");
    let ops: Vec<&str> = compiled.plan.steps.iter().map(|s| s.op.as_str()).collect();
    assert_eq!(
        ops.iter()
            .filter(|o| !o.contains("neg") && !o.contains("relu"))
            .count(),
        1,
        "only the output reshape copies: {ops:?}"
    );
    let got = e.run(&[xt]).expect("runs");
    for (a, b) in got.iter().zip(&want) {
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.to_f32_vec(), b.to_f32_vec());
    }
}

/// A `Relu` that alone reads a native `BatchNormalization` runs in the BN's pass, NaN included.
#[test]
fn batchnorm_and_its_relu_run_as_one_step() {
    let mut g = Graph::new("bn_relu");
    let mut xv: Vec<f32> = (0..36).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    xv[5] = f32::NAN;
    let xt = Tensor::from_f32(&[2, 3, 2, 3], xv);
    let x = g.add_input("x", xt.ty());
    let param =
        |g: &mut Graph, name: &str, v: Vec<f32>| g.add_weight(name, Tensor::from_f32(&[3], v));
    let ps = [
        param(&mut g, "scale", vec![1.5, -0.5, 2.0]),
        param(&mut g, "bias", vec![0.1, 0.2, -0.3]),
        param(&mut g, "mean", vec![0.0, 1.0, -1.0]),
        param(&mut g, "var", vec![1.0, 0.5, 2.0]),
    ];
    let pd: Vec<Option<Tensor>> = ps.iter().map(|&v| g.const_data(v).cloned()).collect();
    let mut ins = vec![Some(x)];
    ins.extend(ps.iter().map(|&v| Some(v)));
    let mut data = vec![Some(&xt)];
    data.extend(pd.iter().map(Option::as_ref));
    let (b, bt) = node(
        &mut g,
        "bn",
        Op::BatchNormalization { epsilon: 1e-5 },
        ins,
        &data,
    );
    let (r, _) = node(&mut g, "relu", Op::Relu {}, vec![Some(b)], &[Some(&bt)]);
    g.set_outputs(vec![r]);
    let want = run_graph(&g, std::slice::from_ref(&xt)).expect("runs");
    let mut e = Engine::new(g, 1).expect("engine");
    let compiled = e
        .compile_for_inputs(std::slice::from_ref(&xt))
        .expect("compiles");
    let ops: Vec<&str> = compiled.plan.steps.iter().map(|s| s.op.as_str()).collect();
    assert_eq!(ops, ["batch_normalization+relu"]);
    let got = e.run(&[xt]).expect("runs");
    for (a, b) in got[0].to_f32_vec().iter().zip(want[0].to_f32_vec()) {
        assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
    }
}
