//! Test support for the dense builders: a graph with random data, a runner that resolves a
//! lowered kernel's arguments to buffers and calls it on sub-ranges, and the interpreter-based
//! expected result (the node through `eval_op`, then each epilogue step through `eval_op`).

use crate::codegen::{Arg, CodegenError, Epilogue, LoweredKernel};
use crate::interp::eval_op;
use sparsec_ir::{Graph, NodeId, Op, Tensor, ValueDef, ValueId};
use std::collections::HashMap;

/// Deterministic values in `[-1, 1)`.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A graph under construction with the data of every value.
pub struct Env {
    pub g: Graph,
    pub data: HashMap<ValueId, Tensor>,
    seed: u64,
}

impl Env {
    pub fn new() -> Env {
        Env {
            g: Graph::new("t"),
            data: HashMap::new(),
            seed: 1,
        }
    }

    fn random(&mut self, shape: &[usize]) -> Tensor {
        self.seed += 1;
        Tensor::from_f32(shape, values(shape.iter().product(), self.seed))
    }

    /// A graph input with random data.
    pub fn input(&mut self, shape: &[usize]) -> ValueId {
        let t = self.random(shape);
        let v = self.g.add_input(format!("in{}", self.seed), t.ty());
        self.data.insert(v, t);
        v
    }

    /// A weight with random data.
    pub fn weight(&mut self, shape: &[usize]) -> ValueId {
        let t = self.random(shape);
        let v = self.g.add_weight(format!("w{}", self.seed), t.clone());
        self.data.insert(v, t);
        v
    }

    /// A graph input of the given shape without data (for plans that are built, not run).
    pub fn input_shape(&mut self, shape: &[usize]) -> ValueId {
        self.seed += 1;
        let ty = sparsec_ir::TensorType::known(sparsec_ir::DType::F32, shape);
        self.g.add_input(format!("in{}", self.seed), ty)
    }

    /// A zero weight of the given shape that no one will run (for plans that are built only).
    pub fn weight_shape(&mut self, shape: &[usize]) -> ValueId {
        self.seed += 1;
        let n = shape.iter().product();
        let t = Tensor::from_f32(shape, vec![0.0; n]);
        self.g.add_weight(format!("w{}", self.seed), t)
    }

    /// Adds a node with a given f32 result shape and no data (for plans that are built only).
    pub fn node_shape(&mut self, op: Op, inputs: Vec<Option<ValueId>>, out: &[usize]) -> NodeId {
        let ty = sparsec_ir::TensorType::known(sparsec_ir::DType::F32, out);
        let n = self.g.add_node("n", op, inputs, vec![("y".into(), ty)]);
        self.g.set_outputs(vec![self.g.node(n).outputs[0]]);
        n
    }

    /// Adds a node whose result type is what the interpreter computes.
    pub fn node(&mut self, op: Op, inputs: Vec<Option<ValueId>>) -> NodeId {
        let args: Vec<Option<&Tensor>> = inputs.iter().map(|v| v.map(|v| &self.data[&v])).collect();
        let out = eval_op(&op, &args, 1)
            .expect("reference evaluates")
            .remove(0);
        let n = self
            .g
            .add_node("n", op, inputs, vec![("y".into(), out.ty())]);
        let y = self.g.node(n).outputs[0];
        self.data.insert(y, out);
        self.g.set_outputs(vec![y]);
        n
    }

    /// The node's result (interpreter) followed by the epilogue; a bias broadcasts along `axis`.
    pub fn expected(&self, node: NodeId, epilogue: &[Epilogue], axis: usize) -> Vec<f32> {
        let y = self.g.node(node).outputs[0];
        let mut t = self.data[&y].clone();
        let rank = t.rank();
        for e in epilogue {
            let (op, extra): (Op, Vec<Tensor>) = match *e {
                Epilogue::Bias(b) => {
                    let mut shape = vec![1; rank - axis];
                    shape[0] = self.data[&b].numel();
                    (
                        Op::Add {},
                        vec![Tensor::from_f32(&shape, self.data[&b].to_f32_vec())],
                    )
                }
                Epilogue::AddTensor(v) => (Op::Add {}, vec![self.data[&v].clone()]),
                Epilogue::Relu => (Op::Relu {}, vec![]),
                Epilogue::Clip(lo, hi) => (
                    Op::Clip {},
                    vec![Tensor::scalar_f32(lo), Tensor::scalar_f32(hi)],
                ),
                Epilogue::LeakyRelu(alpha) => (Op::LeakyRelu { alpha }, vec![]),
            };
            let mut args = vec![Some(&t)];
            args.extend(extra.iter().map(Some));
            t = eval_op(&op, &args, 1)
                .expect("epilogue evaluates")
                .remove(0);
        }
        t.to_f32_vec()
    }

    /// Runs `lk` over `ranges` of its parallel dimension with freshly resolved buffers (the
    /// result starts as NaN, so a missed element shows) and returns the result.
    pub fn run(&self, lk: &LoweredKernel, ranges: &[(usize, usize)]) -> Vec<f32> {
        let mut bufs: Vec<Vec<f32>> = lk
            .args
            .iter()
            .map(|a| match a {
                Arg::Packed(t) => t.to_f32_vec(),
                Arg::Value(v) => match &self.g.value(*v).def {
                    ValueDef::Result { .. } => vec![f32::NAN; self.data[v].numel()],
                    _ => self.data[v].to_f32_vec(),
                },
                other => panic!("unexpected argument {other:?}"),
            })
            .collect();
        let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr() as *mut u8).collect();
        for &(b, e) in ranges {
            // SAFETY: the buffers are sized from the graph's types, in the kernel's order.
            unsafe { lk.kernel.call(&ptrs, b, e) };
        }
        bufs.pop().expect("result argument")
    }
}

/// Builds the kernel for `node` and checks it against the interpreter on the whole range, on
/// three uneven sub-ranges, and unit by unit when the dimension is small.
pub fn check(
    env: &Env,
    node: NodeId,
    epilogue: &[Epilogue],
    axis: usize,
    lower: fn(&Graph, NodeId, &[Epilogue]) -> Result<LoweredKernel, CodegenError>,
) -> LoweredKernel {
    let lk = lower(&env.g, node, epilogue).expect("lowers");
    let want = env.expected(node, epilogue, axis);
    let w = lk.work;
    assert!(
        lk.grain >= 1 && lk.grain <= w.max(1),
        "grain {} of work {w}",
        lk.grain
    );
    let (a, b) = ((w / 3 + 1).min(w), (2 * w / 3).max((w / 3 + 1).min(w)));
    let mut splits = vec![vec![(0, w)], vec![(b, w), (0, a), (a, b)]];
    if w <= 64 {
        splits.push((0..w).rev().map(|u| (u, u + 1)).collect());
    }
    // Each range alone writes its own part only: the parts add up to the whole result.
    let written: usize = splits[1]
        .iter()
        .map(|&r| env.run(&lk, &[r]).iter().filter(|x| !x.is_nan()).count())
        .sum();
    assert_eq!(
        written,
        want.len(),
        "{}: ranges overlap or leave gaps",
        lk.op
    );
    for ranges in splits {
        let got = env.run(&lk, &ranges);
        assert_eq!(got.len(), want.len());
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "{}: element {i}: got {g}, want {e} (ranges {ranges:?})",
                lk.op
            );
        }
    }
    lk
}
