//! Tests of the elementwise kernels: differential property tests against the reference
//! interpreter (random chains, shapes, broadcasts and `begin..end` splits), accuracy sweeps of
//! the transcendentals, and the chains `chain_from_nodes` must reject.

use super::*;
use crate::interp::eval_op;
use proptest::prelude::*;
use sparsec_ir::{DType, Graph, NodeId, Op, Tensor, TensorType};
use std::collections::HashMap;

/// Absolute tolerance.
const ABS: f32 = 1e-5;
/// Relative tolerance.
const REL: f32 = 1e-4;

/// Deterministic pseudo-random floats in `[lo, hi)`.
fn data(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        })
        .collect()
}

/// True when `got` matches `want` within the tolerances (NaN matches NaN, infinities match).
fn close(got: f32, want: f32, abs: f32, rel: f32) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= abs + rel * want.abs()
}

/// A graph under construction with the data of its inputs.
struct Built {
    graph: Graph,
    feeds: HashMap<ValueId, Tensor>,
    nodes: Vec<NodeId>,
}

impl Built {
    fn new() -> Built {
        Built {
            graph: Graph::new("t"),
            feeds: HashMap::new(),
            nodes: Vec::new(),
        }
    }

    /// A graph input with data.
    fn input(&mut self, shape: &[usize], v: Vec<f32>) -> ValueId {
        let id = self.graph.add_input(
            format!("in{}", self.feeds.len()),
            TensorType::known(DType::F32, shape),
        );
        self.feeds.insert(id, Tensor::from_f32(shape, v));
        id
    }

    /// A weight.
    fn weight(&mut self, shape: &[usize], v: Vec<f32>) -> ValueId {
        self.graph.add_weight("w", Tensor::from_f32(shape, v))
    }

    /// A node of one f32 result of shape `shape`.
    fn node(&mut self, op: Op, inputs: Vec<Option<ValueId>>, shape: &[usize]) -> ValueId {
        let n = self.graph.add_node(
            format!("n{}", self.nodes.len()),
            op,
            inputs,
            vec![("r".into(), TensorType::known(DType::F32, shape))],
        );
        self.nodes.push(n);
        self.graph.node(n).outputs[0]
    }

    /// The interpreter's value of the last node, evaluated node by node.
    fn reference(&self) -> Tensor {
        let mut env: HashMap<ValueId, Tensor> = self.feeds.clone();
        let mut last = None;
        for &n in &self.nodes {
            let node = self.graph.node(n);
            let args: Vec<Option<&Tensor>> = node
                .inputs
                .iter()
                .map(|v| v.map(|v| self.graph.const_data(v).unwrap_or_else(|| &env[&v])))
                .collect();
            let out = eval_op(&node.op, &args, 1).unwrap().remove(0);
            env.insert(node.outputs[0], out.clone());
            last = Some(out);
        }
        last.unwrap()
    }

    /// The data of a chain input.
    fn value(&self, v: ValueId) -> Vec<f32> {
        match self.graph.const_data(v) {
            Some(t) => t.as_f32().unwrap().to_vec(),
            None => self.feeds[&v].as_f32().unwrap().to_vec(),
        }
    }
}

/// Sentinel elements after the output that the kernel must not touch.
const GUARD: usize = 9;

/// Runs the compiled chain of `b`'s nodes over the row ranges split at `cuts` (fractions of the
/// work) and returns the output; checks the guard elements.
fn run_jit(b: &Built, cuts: &[f64]) -> Vec<f32> {
    let chain = chain_from_nodes(&b.graph, &b.nodes).expect("chain is supported");
    let mut jit = Jit::new().unwrap();
    let k = lower_elementwise(&mut jit, &chain).unwrap();
    assert_eq!(k.args.len(), chain.inputs.len() + 1);
    let mut ins: Vec<Vec<f32>> = chain.inputs.iter().map(|i| b.value(i.value)).collect();
    let n: usize = chain.out_shape.iter().product();
    let mut out = vec![f32::from_bits(0x7fc0_1234); n + GUARD];
    let mut args: Vec<*mut u8> = ins.iter_mut().map(|v| v.as_mut_ptr() as *mut u8).collect();
    args.push(out.as_mut_ptr() as *mut u8);
    let mut points: Vec<usize> = cuts.iter().map(|c| (c * k.work as f64) as usize).collect();
    points.push(0);
    points.push(k.work);
    points.sort();
    for w in points.windows(2) {
        // SAFETY: the buffers have the shapes the chain was compiled for (the output has extra
        // guard elements) and the ranges lie in `0..work`.
        unsafe { k.kernel.call(&args, w[0], w[1]) };
    }
    for g in &out[n..] {
        assert_eq!(g.to_bits(), 0x7fc0_1234, "kernel wrote past its output");
    }
    out.truncate(n);
    out
}

/// Compares the JIT against the interpreter.
fn check(b: &Built, cuts: &[f64], abs: f32, rel: f32) -> Result<(), TestCaseError> {
    let want = b.reference();
    let got = run_jit(b, cuts);
    let want = want.as_f32().unwrap();
    prop_assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!(
            close(*g, *w, abs, rel),
            "element {} of {}: got {}, want {}",
            i,
            got.len(),
            g,
            w
        );
    }
    Ok(())
}

/// The unary ops of the random chains.
fn unary_op(k: usize) -> Op {
    match k % 18 {
        0 => Op::Neg {},
        1 => Op::Abs {},
        2 => Op::Sqrt {},
        3 => Op::Exp {},
        4 => Op::Log {},
        5 => Op::Erf {},
        6 => Op::Tanh {},
        7 => Op::Sigmoid {},
        8 => Op::Relu {},
        9 => Op::LeakyRelu { alpha: 0.1 },
        10 => Op::Elu { alpha: 1.3 },
        11 => Op::HardSigmoid {
            alpha: 0.3,
            beta: 0.4,
        },
        12 => Op::HardSwish {},
        13 => Op::Gelu {
            approximate: "none".into(),
        },
        14 => Op::Gelu {
            approximate: "tanh".into(),
        },
        15 => Op::Softplus {},
        16 => Op::Identity {},
        _ => Op::Clip {},
    }
}

/// The binary ops of the random chains.
fn binary_op(k: usize) -> Op {
    match k % 10 {
        0 => Op::Add {},
        1 => Op::Sub {},
        2 => Op::Mul {},
        3 => Op::Div {},
        4 => Op::Max {},
        5 => Op::Min {},
        6 => Op::PRelu {},
        7 => Op::Sum {},
        8 => Op::Mean {},
        _ => Op::Pow {},
    }
}

/// The shape of a second operand of kind `kind` for output `out`.
fn operand_shape(out: &[usize], kind: usize, axis: usize) -> Vec<usize> {
    let r = out.len();
    match kind % 5 {
        // Scalar (rank 0).
        0 => vec![],
        // Per row: the last dim is 1.
        1 => {
            let mut s = out.to_vec();
            s[r - 1] = 1;
            s
        }
        // Per channel: one dim kept, trailing ones, leading dims dropped.
        2 => {
            let a = axis % r;
            let mut s = vec![1; r - a];
            s[0] = out[a];
            s
        }
        // Along the last dim only.
        3 => vec![out[r - 1]],
        _ => out.to_vec(),
    }
}

/// One random op of a chain.
#[derive(Clone, Debug)]
struct OpSpec {
    binary: bool,
    op: usize,
    kind: usize,
    axis: usize,
    swap: bool,
    weight: bool,
    seed: u64,
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    (
        any::<bool>(),
        0usize..18,
        0usize..5,
        0usize..4,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(binary, op, kind, axis, swap, weight, seed)| OpSpec {
            binary,
            op,
            kind,
            axis,
            swap,
            weight,
            seed,
        })
}

/// Builds the graph of a random chain over `out`.
fn build(out: &[usize], seed: u64, specs: &[OpSpec]) -> Built {
    let mut b = Built::new();
    let n: usize = out.iter().product();
    let mut prev = b.input(out, data(seed, n, -3.0, 3.0));
    for s in specs {
        if !s.binary {
            let op = unary_op(s.op);
            let mut inputs = vec![Some(prev)];
            if matches!(op, Op::Clip {}) {
                let lo = b.weight(&[], vec![-0.7]);
                inputs.push(Some(lo));
                if s.swap {
                    let hi = b.weight(&[1], vec![1.2]);
                    inputs.push(Some(hi));
                }
            }
            prev = b.node(op, inputs, out);
            continue;
        }
        let op = binary_op(s.op);
        let shape = operand_shape(out, s.kind, s.axis);
        let m: usize = shape.iter().product();
        if matches!(op, Op::Pow {}) {
            let e = [2.0, 0.5, 1.0][s.axis % 3];
            let w = b.weight(&shape_scalar(&shape), vec![e]);
            prev = b.node(op, vec![Some(prev), Some(w)], out);
            continue;
        }
        let v = if matches!(op, Op::Div {}) {
            // Divisors away from zero, with either sign.
            data(s.seed, m, 0.5, 2.0)
                .into_iter()
                .zip(data(s.seed ^ 1, m, -1.0, 1.0))
                .map(|(x, sg)| if sg < 0.0 { -x } else { x })
                .collect()
        } else {
            data(s.seed, m, -2.0, 2.0)
        };
        let other = if s.weight {
            b.weight(&shape, v)
        } else {
            b.input(&shape, v)
        };
        let swap = s.swap && !matches!(op, Op::Div {} | Op::PRelu {});
        let ins = if swap {
            vec![Some(other), Some(prev)]
        } else {
            vec![Some(prev), Some(other)]
        };
        prev = b.node(op, ins, out);
    }
    b
}

/// A one-element shape of the same rank as `shape` (rank at most 1 for scalars).
fn shape_scalar(shape: &[usize]) -> Vec<usize> {
    vec![1; shape.len().min(2)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Random chains of 1-4 ops with random broadcasts and row splits match the interpreter.
    #[test]
    fn random_chains_match_interpreter(
        out in prop::collection::vec(1usize..=13, 1..=4),
        seed in any::<u64>(),
        specs in prop::collection::vec(op_spec(), 1..=4),
        cuts in prop::collection::vec(0.0f64..1.0, 0..=2),
    ) {
        let b = build(&out, seed, &specs);
        check(&b, &cuts, ABS, REL)?;
    }
}

/// Every unary op over a wide sweep, including huge and tiny magnitudes, matches the
/// interpreter (sizes exercise the unrolled, single-vector and scalar paths).
#[test]
fn unary_ops_sweep() {
    let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
    xs.extend((-60..=60).map(|i| i as f32 * 0.5));
    xs.extend([
        100.0, -100.0, 88.0, -88.0, 89.0, -90.0, 1e-30, -1e-30, 0.0, -0.0,
    ]);
    xs.extend([
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e30,
        -1e30,
        7.5e-4,
    ]);
    let n = xs.len();
    for k in 0..18 {
        let op = unary_op(k);
        let mut b = Built::new();
        let x = b.input(&[n], xs.clone());
        let mut inputs = vec![Some(x)];
        if matches!(op, Op::Clip {}) {
            let lo = b.weight(&[], vec![-0.5]);
            let hi = b.weight(&[0], vec![]);
            inputs.extend([Some(lo), Some(hi)]);
        }
        b.node(op.clone(), inputs, &[n]);
        let want = b.reference();
        let got = run_jit(&b, &[0.5]);
        for (i, (g, w)) in got.iter().zip(want.as_f32().unwrap()).enumerate() {
            assert!(
                close(*g, *w, ABS, REL),
                "{}: x = {}: got {g}, want {w}",
                op.name(),
                xs[i]
            );
        }
    }
}

/// Transcendentals are accurate to about 1e-6 relative on typical ranges.
#[test]
fn transcendentals_are_tight() {
    let xs: Vec<f32> = (-3000..=3000).map(|i| i as f32 * 0.003).collect();
    let n = xs.len();
    for op in [
        Op::Exp {},
        Op::Erf {},
        Op::Tanh {},
        Op::Sigmoid {},
        Op::Softplus {},
    ] {
        let mut b = Built::new();
        let x = b.input(&[n], xs.clone());
        b.node(op.clone(), vec![Some(x)], &[n]);
        let want = b.reference();
        let got = run_jit(&b, &[]);
        for (i, (g, w)) in got.iter().zip(want.as_f32().unwrap()).enumerate() {
            assert!(
                close(*g, *w, 1e-7, 2e-6),
                "{}: x = {}: got {g}, want {w}",
                op.name(),
                xs[i]
            );
        }
    }
    let xs: Vec<f32> = (1..=6000).map(|i| i as f32 * 0.01).collect();
    let mut b = Built::new();
    let x = b.input(&[xs.len()], xs.clone());
    b.node(Op::Log {}, vec![Some(x)], &[xs.len()]);
    let want = b.reference();
    let got = run_jit(&b, &[]);
    for (g, w) in got.iter().zip(want.as_f32().unwrap()) {
        assert!(close(*g, *w, 1e-7, 2e-6), "log: got {g}, want {w}");
    }
}

/// A bias of shape `[C, 1, 1]` through `relu` (a smaller intermediate) added to `[N, C, H, W]`,
/// then a multiply-add pair that becomes an `fma`.
#[test]
fn smaller_intermediates_and_fma() {
    let out = [2, 3, 5, 6];
    let n: usize = out.iter().product();
    let mut b = Built::new();
    let bias = b.input(&[3, 1, 1], vec![-1.0, 0.5, 2.0]);
    let x = b.input(&out, data(7, n, -2.0, 2.0));
    let r = b.node(Op::Relu {}, vec![Some(bias)], &[3, 1, 1]);
    let s = b.node(Op::Add {}, vec![Some(x), Some(r)], &out);
    let w = b.weight(&[6], data(8, 6, -1.0, 1.0));
    let m = b.node(Op::Mul {}, vec![Some(s), Some(w)], &out);
    let c = b.weight(&[5, 1], data(9, 5, -1.0, 1.0));
    b.node(Op::Sub {}, vec![Some(c), Some(m)], &out);
    let chain = chain_from_nodes(&b.graph, &b.nodes).unwrap();
    assert_eq!(chain.name, "relu+add+mul+sub");
    assert_eq!(fusable(&chain.steps), vec![false, false, true, false]);
    check(&b, &[0.3, 0.6], ABS, REL).unwrap();
}

/// A weight used twice is one argument; one-element weights become constants.
#[test]
fn inputs_are_deduplicated() {
    let mut b = Built::new();
    let x = b.input(&[4, 5], data(1, 20, -1.0, 1.0));
    let w = b.weight(&[5], data(2, 5, -1.0, 1.0));
    let k = b.weight(&[1, 1], vec![3.0]);
    let a = b.node(Op::Add {}, vec![Some(x), Some(w)], &[4, 5]);
    let m = b.node(Op::Mul {}, vec![Some(a), Some(w)], &[4, 5]);
    b.node(Op::Mul {}, vec![Some(m), Some(k)], &[4, 5]);
    let chain = chain_from_nodes(&b.graph, &b.nodes).unwrap();
    assert_eq!(chain.inputs.len(), 2);
    assert!(chain
        .steps
        .iter()
        .any(|s| matches!(s, Step::Binary(BinaryOp::Mul, _, Operand::Const(c)) if *c == 3.0)));
    check(&b, &[0.5], ABS, REL).unwrap();
}

/// A batch of kernels shares one finalize, and each is independent.
#[test]
fn batch_lowering() {
    let mut chains = Vec::new();
    let mut builds = Vec::new();
    for (i, op) in [Op::Relu {}, Op::Tanh {}, Op::Neg {}]
        .into_iter()
        .enumerate()
    {
        let mut b = Built::new();
        let x = b.input(&[3, 7], data(i as u64, 21, -2.0, 2.0));
        b.node(op, vec![Some(x)], &[3, 7]);
        chains.push(chain_from_nodes(&b.graph, &b.nodes).unwrap());
        builds.push(b);
    }
    let mut jit = Jit::new().unwrap();
    let ks = lower_elementwise_batch(&mut jit, &chains).unwrap();
    assert_eq!(ks.len(), 3);
    for (k, b) in ks.iter().zip(&builds) {
        assert_eq!(k.work, 3);
        let mut x = b.value(chains[0].inputs[0].value);
        let mut out = vec![0.0f32; 21];
        let args = [x.as_mut_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
        // SAFETY: both buffers have 21 elements, the compiled shape; `end` beyond `work` is
        // clamped by the kernel.
        unsafe { k.kernel.call(&args, 0, 99) };
        let want = b.reference();
        let want = want.as_f32().unwrap();
        for (g, w) in out.iter().zip(want) {
            assert!(close(*g, *w, ABS, REL), "{}: got {g}, want {w}", k.op);
        }
    }
    let code = jit.finish().unwrap();
    drop(code);
}

/// Chains `chain_from_nodes` must reject.
#[test]
fn unsupported_chains_are_rejected() {
    let mut b = Built::new();
    let x = b.input(&[2, 3], vec![0.0; 6]);
    let y = b.input(&[2, 3], vec![0.0; 6]);
    // Not elementwise.
    let s = b.node(
        Op::Softmax {
            axis: -1,
            coerce_2d: 0,
        },
        vec![Some(x)],
        &[2, 3],
    );
    assert!(chain_from_nodes(&b.graph, &[b.nodes[0]]).is_none());
    // A second node that does not read the first one's result.
    let r = b.node(Op::Relu {}, vec![Some(x)], &[2, 3]);
    let n = b.node(Op::Neg {}, vec![Some(y)], &[2, 3]);
    let (nr, nn) = (b.nodes[1], b.nodes[2]);
    assert!(chain_from_nodes(&b.graph, &[nr, nn]).is_none());
    assert!(chain_from_nodes(&b.graph, &[nr]).is_some());
    // Pow with a non-constant or unsupported exponent.
    let p = b.node(Op::Pow {}, vec![Some(r), Some(y)], &[2, 3]);
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    let three = b.weight(&[], vec![3.0]);
    b.node(Op::Pow {}, vec![Some(r), Some(three)], &[2, 3]);
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    // Clip with a bound that is not a constant.
    b.node(Op::Clip {}, vec![Some(r), Some(y)], &[2, 3]);
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    // Non-f32 values.
    let i = b
        .graph
        .add_input("i", TensorType::known(DType::I64, &[2, 3]));
    b.node(Op::Add {}, vec![Some(i), Some(i)], &[2, 3]);
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    // An operand that does not broadcast to the output.
    let z = b.input(&[3, 3], vec![0.0; 9]);
    b.node(Op::Add {}, vec![Some(x), Some(z)], &[2, 3]);
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    // Unknown gelu mode, unsupported op, empty chain.
    b.node(
        Op::Gelu {
            approximate: "fast".into(),
        },
        vec![Some(x)],
        &[2, 3],
    );
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    b.node(Op::Sin {}, vec![Some(x)], &[2, 3]);
    assert!(chain_from_nodes(&b.graph, &[*b.nodes.last().unwrap()]).is_none());
    assert!(chain_from_nodes(&b.graph, &[]).is_none());
    let _ = (s, n, p);
}

/// The lowering rejects malformed chains instead of emitting out-of-bounds code.
#[test]
fn malformed_chains_are_errors() {
    let mut b = Built::new();
    let x = b.input(&[2, 3], vec![0.0; 6]);
    b.node(Op::Relu {}, vec![Some(x)], &[2, 3]);
    let good = chain_from_nodes(&b.graph, &b.nodes).unwrap();
    let mut jit = Jit::new().unwrap();
    let mut bad = good.clone();
    bad.steps[0] = Step::Unary(UnaryOp::Relu, Operand::Input(5));
    assert!(lower_elementwise(&mut jit, &bad).is_err());
    let mut bad = good.clone();
    bad.steps[0] = Step::Unary(UnaryOp::Relu, Operand::Step(0));
    assert!(lower_elementwise(&mut jit, &bad).is_err());
    let mut bad = good.clone();
    bad.inputs[0].shape = vec![4, 3];
    assert!(lower_elementwise(&mut jit, &bad).is_err());
    let mut bad = good.clone();
    bad.out_shape = vec![2, 0];
    assert!(lower_elementwise(&mut jit, &bad).is_err());
    assert!(lower_elementwise(&mut jit, &good).is_ok());
}

/// The grain of the chain over `ops` applied in turn to one input of `shape`.
fn grain_of(ops: &[Op], shape: &[usize]) -> (usize, usize) {
    let mut b = Built::new();
    let n = shape.iter().product();
    let mut v = b.input(shape, data(1, n, -1.0, 1.0));
    for op in ops {
        v = b.node(op.clone(), vec![Some(v)], shape);
    }
    let chain = chain_from_nodes(&b.graph, &b.nodes).expect("chain is supported");
    let mut jit = Jit::new().unwrap();
    let k = lower_elementwise(&mut jit, &chain).unwrap();
    (k.work, k.grain)
}

#[test]
fn small_chains_stay_whole_and_costly_ones_split() {
    // A cheap op on the 16K elements of an attention head pair: one chunk.
    let (work, grain) = grain_of(&[Op::Relu {}], &[1, 2, 128, 64]);
    assert_eq!((work, grain), (256, 256));
    // An erf chain over 64K elements: worth two threads.
    let (work, grain) = grain_of(&[Op::Erf {}, Op::Relu {}], &[1, 128, 512]);
    assert!(work >= 2 * grain, "work {work}, grain {grain}");
    // A cheap op over 1M elements splits too.
    let (work, grain) = grain_of(&[Op::Relu {}], &[1024, 1024]);
    assert!(work >= 4 * grain, "work {work}, grain {grain}");
}
