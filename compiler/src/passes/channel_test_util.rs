//! Test helpers of the channel passes (and of other pass and plan tests): a small graph builder
//! that types each node by evaluating it with the interpreter on a sample input, random data, and
//! output comparison.

use crate::interp::{eval_op, run_graph};
use sparsec_ir::{Graph, Op, Tensor, ValueId};
use std::collections::HashMap;

/// Deterministic values in `[-1, 1)`.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
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

/// A graph under construction with the sample value of every value.
pub struct Builder {
    /// The graph.
    pub g: Graph,
    data: HashMap<ValueId, Tensor>,
    /// The sample input.
    pub x: Tensor,
    seed: u64,
}

impl Builder {
    /// A graph with one f32 input `x` of `shape`.
    pub fn new(shape: &[usize]) -> (Builder, ValueId) {
        Builder::with_input(Tensor::from_f32(
            shape,
            values(shape.iter().product(), 1234),
        ))
    }

    /// A graph with one input `x` whose sample is `x`.
    pub fn with_input(x: Tensor) -> (Builder, ValueId) {
        let mut g = Graph::new("t");
        let v = g.add_input("x", x.ty());
        let mut data = HashMap::new();
        data.insert(v, x.clone());
        (
            Builder {
                g,
                data,
                x,
                seed: 1,
            },
            v,
        )
    }

    /// A random weight.
    pub fn weight(&mut self, name: &str, shape: &[usize]) -> ValueId {
        self.seed += 1;
        let t = Tensor::from_f32(shape, values(shape.iter().product(), self.seed));
        self.tensor(name, t)
    }

    /// A weight with the given data.
    pub fn tensor(&mut self, name: &str, t: Tensor) -> ValueId {
        let v = self.g.add_weight(name, t.clone());
        self.data.insert(v, t);
        v
    }

    /// Adds a node typed by what the interpreter computes; returns its first result.
    pub fn node(&mut self, name: &str, op: Op, inputs: &[Option<ValueId>]) -> ValueId {
        let args: Vec<Option<&Tensor>> = inputs.iter().map(|v| v.map(|v| &self.data[&v])).collect();
        let t = eval_op(&op, &args, 1).expect("evaluates").remove(0);
        let n = self.g.add_node(
            name,
            op,
            inputs.to_vec(),
            vec![(format!("{name}_out"), t.ty())],
        );
        let v = self.g.node(n).outputs[0];
        self.data.insert(v, t);
        v
    }

    /// A Conv with a random `[cout, cin/group, k, k]` weight and bias.
    pub fn conv(&mut self, name: &str, x: ValueId, cout: usize, k: usize, pad: i64) -> ValueId {
        let cin = self.data[&x].shape()[1];
        let w = self.weight(&format!("{name}.w"), &[cout, cin, k, k]);
        let b = self.weight(&format!("{name}.b"), &[cout]);
        self.node(name, conv_op(pad, 1), &[Some(x), Some(w), Some(b)])
    }

    /// A Gemm `x @ W^T + b` with a random `[n, k]` weight.
    pub fn linear(&mut self, name: &str, x: ValueId, n: usize) -> ValueId {
        let k = self.data[&x].shape()[1];
        let w = self.weight(&format!("{name}.w"), &[n, k]);
        let b = self.weight(&format!("{name}.b"), &[n]);
        let op = Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: 0,
            trans_b: 1,
        };
        self.node(name, op, &[Some(x), Some(w), Some(b)])
    }

    /// Ends the graph with `outputs`.
    pub fn finish(mut self, outputs: &[ValueId]) -> (Graph, Tensor) {
        self.g.set_outputs(outputs.to_vec());
        sparsec_ir::verify(&self.g).expect("built graph verifies");
        (self.g, self.x)
    }
}

/// A Conv op with symmetric 2-D padding.
pub fn conv_op(pad: i64, group: i64) -> Op {
    Op::Conv {
        auto_pad: "NOTSET".into(),
        dilations: vec![],
        group,
        kernel_shape: vec![],
        pads: vec![pad; 4],
        strides: vec![],
    }
}

/// Runs a graph on one input.
pub fn run1(g: &Graph, x: &Tensor) -> Vec<Vec<f32>> {
    run_graph(g, std::slice::from_ref(x))
        .expect("runs")
        .iter()
        .map(Tensor::to_f32_vec)
        .collect()
}

/// Largest relative difference between two output lists.
pub fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(a, b)| {
            assert_eq!(a.len(), b.len());
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        })
        .fold(0.0, f32::max)
}

/// The shape of the weight operand `k` of the node named `name`.
pub fn operand_shape(g: &Graph, name: &str, k: usize) -> Vec<usize> {
    let n = g
        .node_ids()
        .into_iter()
        .find(|&n| g.node(n).name == name)
        .unwrap_or_else(|| panic!("no node `{name}`"));
    let v = g.node(n).inputs[k].expect("operand");
    g.value(v).ty.shape().expect("known shape")
}
