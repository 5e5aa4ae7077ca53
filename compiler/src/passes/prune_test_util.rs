//! Test helpers of the pruning passes: small graphs with deterministic weights and readers of
//! the weights' facts after a pass.

use super::{PassContext, PruneOptions};
use sparsec_ir::{DType, Dim, Graph, Op, Tensor, TensorType, ValueId};

/// Deterministic values in `[-1, 1)`, none zero.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            if v == 0.0 {
                0.5
            } else {
                v
            }
        })
        .collect()
}

/// A context carrying `prune`.
pub fn cx_with(prune: PruneOptions) -> PassContext {
    PassContext {
        prune,
        ..PassContext::default()
    }
}

/// An MLP `x[batch, dims[0]]` -> Gemm (`trans_b = 1`, weight `w_fc{i}` of shape `[dims[i+1],
/// dims[i]]`, bias) -> Relu -> ... ; nodes `fc0`, `fc1`, ...
pub fn mlp(dims: &[usize], seed: u64) -> Graph {
    let mut g = Graph::new("mlp");
    let mut x = g.add_input(
        "x",
        TensorType {
            dtype: DType::F32,
            dims: vec![Dim::Sym("batch".into()), Dim::Known(dims[0])],
        },
    );
    for i in 0..dims.len() - 1 {
        let (k, n) = (dims[i], dims[i + 1]);
        let w = g.add_weight(
            format!("w_fc{i}"),
            Tensor::from_f32(&[n, k], values(n * k, seed * 100 + i as u64)),
        );
        let b = g.add_weight(format!("b_fc{i}"), Tensor::from_f32(&[n], values(n, seed)));
        let ty = TensorType {
            dtype: DType::F32,
            dims: vec![Dim::Sym("batch".into()), Dim::Known(n)],
        };
        let op = Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: 0,
            trans_b: 1,
        };
        let node = g.add_node(
            format!("fc{i}"),
            op,
            vec![Some(x), Some(w), Some(b)],
            vec![(format!("y{i}"), ty.clone())],
        );
        x = g.node(node).outputs[0];
        if i + 2 < dims.len() {
            let r = g.add_node(
                format!("relu{i}"),
                Op::Relu {},
                vec![Some(x)],
                vec![(format!("r{i}"), ty)],
            );
            x = g.node(r).outputs[0];
        }
    }
    g.set_outputs(vec![x]);
    g
}

/// The weight operand (operand 1) of every Gemm/MatMul/Conv node, in topological order.
pub fn weights(g: &Graph) -> Vec<ValueId> {
    g.topo_order()
        .into_iter()
        .filter(|&n| {
            matches!(
                g.node(n).op,
                Op::Gemm { .. } | Op::MatMul {} | Op::Conv { .. }
            )
        })
        .filter_map(|n| g.node(n).inputs[1])
        .collect()
}

/// The density of every layer's weight.
pub fn densities(g: &Graph) -> Vec<f64> {
    weights(g)
        .into_iter()
        .map(|w| g.weight(w).expect("a weight").facts.density())
        .collect()
}

/// `(nnz, numel)` over every layer's weight.
pub fn totals(g: &Graph) -> (usize, usize) {
    weights(g).into_iter().fold((0, 0), |(a, b), w| {
        let f = g.weight(w).expect("a weight").facts;
        (a + f.nnz, b + f.numel)
    })
}

/// Multiplies the weight of layer `i` by `factor` (a new weight).
pub fn scale_weight(g: &mut Graph, i: usize, factor: f32) {
    let w = weights(g)[i];
    let t = g.const_data(w).expect("data").clone();
    let data: Vec<f32> = t.to_f32_vec().iter().map(|x| x * factor).collect();
    let name = g.value(w).name.clone();
    let new = g.add_weight(name, Tensor::from_f32(t.shape(), data));
    g.replace_all_uses(w, new);
}
