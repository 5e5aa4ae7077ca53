//! The differential harness: builds small graphs with the IR API, runs them through the reference
//! interpreter and through the JIT engine at 1 and 2 threads, and compares the results.
//!
//! A family module describes each op's cases as a proptest [`Strategy`] of [`Case`]s (shapes and
//! attributes drawn by proptest, tensor data from a seeded generator) and registers them with
//! [`diff_tests!`](crate::diff_tests), which makes one `#[test]` per entry and the module's `OPS`
//! list that the coverage test checks against the op table.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use sparsec::engine::Engine;
use sparsec::interp::run_graph;
use sparsec_ir::shape::{infer, InputFact};
use sparsec_ir::{DType, Graph, Op, Tensor, TensorData, TensorType, ValueId};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Default absolute tolerance for float results.
pub const ATOL: f64 = 1e-5;
/// Default relative tolerance for float results.
pub const RTOL: f64 = 1e-4;

/// Makes one `#[test]` per entry (`name => "op", cases, strategy;`) and the module's `OPS` list.
///
/// An entry may carry attributes such as `#[ignore = "reason"]`; its op still counts as covered.
#[macro_export]
macro_rules! diff_tests {
    ($( $(#[$m:meta])* $test:ident => $op:literal, $n:expr, $strategy:expr; )*) => {
        /// One test per registered case.
        mod cases {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$m])*
                #[test]
                fn $test() {
                    $crate::harness::run_cases($op, $n, $strategy);
                }
            )*
        }
        /// The op names this module has differential cases for.
        pub const OPS: &[&str] = &[$($op),*];
    };
}

/// One differential case: a graph, the tensors fed to its inputs, and how to compare.
#[derive(Clone)]
pub struct Case {
    /// The graph.
    pub graph: Graph,
    /// One tensor per graph input, in order.
    pub feeds: Vec<Tensor>,
    /// Op names, operand shapes and attributes, for failure messages.
    pub label: String,
    /// Absolute tolerance for floats.
    pub atol: f64,
    /// Relative tolerance for floats.
    pub rtol: f64,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl Case {
    /// The same case with other float tolerances.
    pub fn tol(mut self, atol: f64, rtol: f64) -> Case {
        self.atol = atol;
        self.rtol = rtol;
        self
    }
}

/// Builds a [`Case`]: inputs with data, constant operands, nodes whose result types come from
/// shape inference.
pub struct Builder {
    graph: Graph,
    feeds: Vec<Tensor>,
    label: Vec<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// An empty case.
    pub fn new() -> Builder {
        Builder {
            graph: Graph::new("diff"),
            feeds: Vec::new(),
            label: Vec::new(),
        }
    }

    /// A graph input fed with `t`.
    pub fn input(&mut self, t: Tensor) -> ValueId {
        let name = format!("in{}", self.feeds.len());
        self.label.push(if t.numel() <= 32 {
            format!(
                "{name}: {}{:?} = {:?}",
                t.dtype(),
                t.shape(),
                t.to_f64_vec()
            )
        } else {
            format!("{name}: {}{:?}", t.dtype(), t.shape())
        });
        let v = self.graph.add_input(name, t.ty());
        self.feeds.push(t);
        v
    }

    /// A constant operand (a weight).
    pub fn constant(&mut self, t: Tensor) -> ValueId {
        let name = format!("c{}", self.graph.value_count());
        let shown = if t.numel() <= 32 {
            format!(
                "{name}: {}{:?} = {:?}",
                t.dtype(),
                t.shape(),
                t.to_f64_vec()
            )
        } else {
            format!("{name}: {}{:?}", t.dtype(), t.shape())
        };
        self.label.push(shown);
        self.graph.add_weight(name, t)
    }

    /// A node of `op` with `n_out` results; their types come from shape inference.
    pub fn node(&mut self, op: Op, inputs: Vec<Option<ValueId>>, n_out: usize) -> Vec<ValueId> {
        let types: Vec<TensorType> = inputs
            .iter()
            .map(|v| v.map(|v| self.graph.value(v).ty.clone()))
            .map(|t| t.unwrap_or(TensorType::known(DType::F32, &[])))
            .collect();
        let facts: Vec<Option<InputFact>> = inputs
            .iter()
            .zip(&types)
            .map(|(v, ty)| {
                v.map(|v| InputFact {
                    ty,
                    value: self.graph.const_data(v),
                })
            })
            .collect();
        let out_types = infer(&op, &facts, n_out)
            .unwrap_or_else(|e| panic!("case generator built an invalid node {op:?}: {e}"));
        self.label.push(format!("{} {:?}", op.name(), op.attrs()));
        let k = self.graph.node_count();
        let node = self.graph.add_node(
            format!("n{k}"),
            op,
            inputs,
            out_types
                .into_iter()
                .enumerate()
                .map(|(i, t)| (format!("n{k}_r{i}"), t))
                .collect(),
        );
        self.graph.node(node).outputs.clone()
    }

    /// The shape of value `v` (inputs, constants and inferred results are all static).
    pub fn value_shape(&self, v: ValueId) -> Vec<usize> {
        self.graph.value(v).ty.shape().unwrap_or_default()
    }

    /// A node with one result.
    pub fn node1(&mut self, op: Op, inputs: Vec<Option<ValueId>>) -> ValueId {
        self.node(op, inputs, 1)[0]
    }

    /// The finished case with `outputs` as the graph outputs.
    pub fn finish(mut self, outputs: Vec<ValueId>) -> Case {
        self.graph.set_outputs(outputs);
        Case {
            graph: self.graph,
            feeds: self.feeds,
            label: self.label.join("; "),
            atol: ATOL,
            rtol: RTOL,
        }
    }
}

/// Runs `cases` cases of `strategy` (deterministic seed, no persistence) and panics with a message
/// naming the op, the case and the first differing element on the first mismatch. Each case's
/// graph must contain a node of `op`, so a registration cannot claim an op it does not test.
pub fn run_cases<S: Strategy<Value = Case>>(op: &str, cases: u32, strategy: S) {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let result = runner.run(&strategy, |case| {
        let has_op = case
            .graph
            .node_ids()
            .iter()
            .any(|&n| case.graph.node(n).op.name() == op);
        if !has_op {
            return Err(TestCaseError::fail(format!(
                "the case has no `{op}` node: {}",
                case.label
            )));
        }
        check(&case).map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            panic!("differential test of `{op}` failed: {reason}\n  minimal case: {case:?}")
        }
        Err(TestError::Abort(reason)) => panic!("differential test of `{op}` aborted: {reason}"),
    }
}

/// Runs `case` through the interpreter and the JIT engine (1 and 2 threads) and compares.
pub fn check(case: &Case) -> Result<(), String> {
    let want = run_graph(&case.graph, &case.feeds)
        .map_err(|e| format!("interpreter rejected the case ({}): {e}", case.label))?;
    for threads in [1, 2] {
        let run = catch_unwind(AssertUnwindSafe(|| {
            Engine::new(case.graph.clone(), threads).and_then(|mut e| e.run(&case.feeds))
        }));
        let got = match run {
            Ok(Ok(got)) => got,
            Ok(Err(e)) => {
                return Err(format!(
                    "JIT at {threads} threads failed ({}): {e}",
                    case.label
                ))
            }
            Err(_) => {
                return Err(format!(
                    "JIT at {threads} threads panicked ({})",
                    case.label
                ))
            }
        };
        if got.len() != want.len() {
            return Err(format!(
                "JIT at {threads} threads gave {} results, interpreter {} ({})",
                got.len(),
                want.len(),
                case.label
            ));
        }
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            compare(g, w, case.atol, case.rtol)
                .map_err(|e| format!("result {k} at {threads} threads: {e} ({})", case.label))?;
        }
    }
    Ok(())
}

/// Compares a JIT result with the interpreter's: same dtype and shape, integers and bools equal,
/// floats within `atol + rtol * |want|` (NaN matches NaN, infinities must be equal).
pub fn compare(got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!(
            "JIT gave {}{:?}, interpreter {}{:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    let float = want.dtype().is_float();
    let (g, w) = (got.data(), want.data());
    for i in 0..want.numel() {
        let (a, b) = (g.get_f64(i), w.get_f64(i));
        let ok = if !float {
            a == b
        } else if a.is_nan() || b.is_nan() {
            a.is_nan() && b.is_nan()
        } else if a.is_infinite() || b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= atol + rtol * b.abs()
        };
        if !ok {
            let index = unravel(i, want.shape());
            return Err(format!(
                "first difference at {index:?} (flat {i}): JIT {a}, interpreter {b}"
            ));
        }
    }
    // Integers wider than f64's mantissa are compared exactly as well.
    if let (TensorData::I64(a), TensorData::I64(b)) = (g, w) {
        if let Some(i) = (0..a.len()).find(|&i| a[i] != b[i]) {
            return Err(format!(
                "first difference at {:?}: JIT {}, interpreter {}",
                unravel(i, want.shape()),
                a[i],
                b[i]
            ));
        }
    }
    Ok(())
}

/// The multi-index of flat position `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[k] = i % d;
            i /= d;
        }
    }
    idx
}
