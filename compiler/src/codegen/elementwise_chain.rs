//! Building an [`ElementwiseChain`] from graph nodes ([`chain_from_nodes`]): maps each supported
//! IR op to chain steps, turns one-element f32 weights into constants and deduplicates inputs.

use super::{
    broadcasts_to, BinaryOp, ChainInput, ElementwiseChain, Operand, Step, UnaryOp, MAX_ELEMENTS,
};
use sparsec_ir::{DType, Graph, NodeId, Op, ValueId};
use std::collections::HashMap;

/// Builds a chain while walking the nodes.
struct ChainBuilder<'g> {
    graph: &'g Graph,
    out_shape: Vec<usize>,
    inputs: Vec<ChainInput>,
    steps: Vec<Step>,
    /// Operands standing for values computed by the chain so far.
    results: HashMap<ValueId, Operand>,
}

impl ChainBuilder<'_> {
    /// The operand for graph value `v`, adding it as an external input if needed.
    fn operand(&mut self, v: ValueId) -> Option<Operand> {
        if let Some(&o) = self.results.get(&v) {
            return Some(o);
        }
        let val = self.graph.value(v);
        if val.ty.dtype != DType::F32 {
            return None;
        }
        let shape = val.ty.shape()?;
        if !broadcasts_to(&shape, &self.out_shape) {
            return None;
        }
        if let Some(t) = self.graph.const_data(v) {
            if t.numel() == 1 {
                return Some(Operand::Const(t.as_f32()?[0]));
            }
        }
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))? > MAX_ELEMENTS {
            return None;
        }
        if let Some(k) = self.inputs.iter().position(|i| i.value == v) {
            return Some(Operand::Input(k));
        }
        self.inputs.push(ChainInput { value: v, shape });
        Some(Operand::Input(self.inputs.len() - 1))
    }

    /// The scalar value of a constant operand, `None` when absent or empty, and `Err` when it
    /// is not a one-element f32 constant.
    fn const_scalar(&self, v: Option<ValueId>) -> Result<Option<f32>, ()> {
        let Some(v) = v else { return Ok(None) };
        let t = self.graph.const_data(v).ok_or(())?;
        if t.numel() == 0 {
            return Ok(None);
        }
        match t.as_f32() {
            Some([x]) => Ok(Some(*x)),
            _ => Err(()),
        }
    }

    /// Appends a step and returns its operand.
    fn push(&mut self, s: Step) -> Operand {
        self.steps.push(s);
        Operand::Step(self.steps.len() - 1)
    }

    /// Lowers one node to steps; returns the operand holding its result.
    fn node(&mut self, op: &Op, inputs: &[Option<ValueId>]) -> Option<Operand> {
        let arg = |k: usize| inputs.get(k).copied().flatten();
        let unary = |u: UnaryOp| Some(u);
        let u = match op {
            Op::Identity {} => unary(UnaryOp::Identity),
            Op::Neg {} => unary(UnaryOp::Neg),
            Op::Abs {} => unary(UnaryOp::Abs),
            Op::Sqrt {} => unary(UnaryOp::Sqrt),
            Op::Reciprocal {} => unary(UnaryOp::Reciprocal),
            Op::Exp {} => unary(UnaryOp::Exp),
            Op::Log {} => unary(UnaryOp::Log),
            Op::Erf {} => unary(UnaryOp::Erf),
            Op::Tanh {} => unary(UnaryOp::Tanh),
            Op::Sigmoid {} => unary(UnaryOp::Sigmoid),
            Op::Relu {} => unary(UnaryOp::Relu),
            Op::Softplus {} => unary(UnaryOp::Softplus),
            Op::HardSwish {} => unary(UnaryOp::HardSwish),
            Op::LeakyRelu { alpha } => unary(UnaryOp::LeakyRelu(*alpha)),
            Op::Elu { alpha } => unary(UnaryOp::Elu(*alpha)),
            Op::HardSigmoid { alpha, beta } => unary(UnaryOp::HardSigmoid(*alpha, *beta)),
            Op::Gelu { approximate } => match approximate.as_str() {
                "none" => unary(UnaryOp::GeluErf),
                "tanh" => unary(UnaryOp::GeluTanh),
                _ => return None,
            },
            Op::Clip {} => {
                let lo = self.const_scalar(arg(1)).ok()?;
                let hi = self.const_scalar(arg(2)).ok()?;
                unary(UnaryOp::Clip(
                    lo.unwrap_or(f32::NEG_INFINITY),
                    hi.unwrap_or(f32::INFINITY),
                ))
            }
            _ => None,
        };
        if let Some(u) = u {
            let extra = inputs.iter().skip(1).flatten().count();
            if extra > 0 && !matches!(op, Op::Clip {}) {
                return None;
            }
            let a = self.operand(arg(0)?)?;
            return Some(match u {
                UnaryOp::Identity => a,
                u => self.push(Step::Unary(u, a)),
            });
        }
        let binary = match op {
            Op::Add {} => BinaryOp::Add,
            Op::Sub {} => BinaryOp::Sub,
            Op::Mul {} => BinaryOp::Mul,
            Op::Div {} => BinaryOp::Div,
            Op::PRelu {} => BinaryOp::PRelu,
            Op::Pow {} => {
                let a = self.operand(arg(0)?)?;
                if inputs.len() != 2 {
                    return None;
                }
                let e = self.const_scalar(arg(1)).ok()??;
                return if e == 1.0 {
                    Some(a)
                } else if e == 2.0 {
                    Some(self.push(Step::Unary(UnaryOp::Square, a)))
                } else if e == 0.5 {
                    Some(self.push(Step::Unary(UnaryOp::Sqrt, a)))
                } else {
                    None
                };
            }
            Op::Sum {} | Op::Max {} | Op::Min {} | Op::Mean {} => {
                let kind = match op {
                    Op::Max {} => BinaryOp::Max,
                    Op::Min {} => BinaryOp::Min,
                    _ => BinaryOp::Add,
                };
                let vals: Vec<ValueId> = inputs.iter().copied().collect::<Option<_>>()?;
                let (first, rest) = vals.split_first()?;
                let mut acc = self.operand(*first)?;
                for v in rest {
                    let b = self.operand(*v)?;
                    acc = self.push(Step::Binary(kind, acc, b));
                }
                if matches!(op, Op::Mean {}) && vals.len() > 1 {
                    let n = Operand::Const(vals.len() as f32);
                    acc = self.push(Step::Binary(BinaryOp::Div, acc, n));
                }
                return Some(acc);
            }
            _ => return None,
        };
        if inputs.len() != 2 {
            return None;
        }
        let a = self.operand(arg(0)?)?;
        let b = self.operand(arg(1)?)?;
        Some(self.push(Step::Binary(binary, a, b)))
    }
}

/// Builds the chain computing `nodes`: single-result f32 elementwise nodes in topological order,
/// each after the first reading the previous one's result (and any other graph values whose
/// shapes broadcast to the last node's result shape). One-element f32 weights become constants;
/// `Pow` needs a constant exponent of 1, 2 or 0.5 and `Clip` constant bounds. Returns `None`
/// when anything is not supported. Results of nodes other than the last are not stored: the
/// caller fuses a node only when nothing else reads its result.
pub fn chain_from_nodes(graph: &Graph, nodes: &[NodeId]) -> Option<ElementwiseChain> {
    let last = *nodes.last()?;
    if nodes.iter().any(|&n| !graph.contains_node(n)) {
        return None;
    }
    let output = match graph.node(last).outputs.as_slice() {
        [v] => *v,
        _ => return None,
    };
    let out_shape = graph.value(output).ty.shape()?;
    if graph.value(output).ty.dtype != DType::F32
        || out_shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))?
            > MAX_ELEMENTS
    {
        return None;
    }
    let mut b = ChainBuilder {
        graph,
        out_shape,
        inputs: Vec::new(),
        steps: Vec::new(),
        results: HashMap::new(),
    };
    let mut names = Vec::new();
    let mut prev: Option<ValueId> = None;
    for &n in nodes {
        let node = graph.node(n);
        let res = match node.outputs.as_slice() {
            [v] => *v,
            _ => return None,
        };
        let ty = &graph.value(res).ty;
        if ty.dtype != DType::F32 || !broadcasts_to(&ty.shape()?, &b.out_shape) {
            return None;
        }
        if let Some(p) = prev {
            if !node.inputs.contains(&Some(p)) {
                return None;
            }
        }
        let r = b.node(&node.op, &node.inputs)?;
        b.results.insert(res, r);
        names.push(node.op.name());
        prev = Some(res);
    }
    let result = *b.results.get(&output)?;
    if !matches!(result, Operand::Step(k) if k + 1 == b.steps.len()) {
        b.push(Step::Unary(UnaryOp::Identity, result));
    }
    Some(ElementwiseChain {
        out_shape: b.out_shape,
        inputs: b.inputs,
        steps: b.steps,
        output,
        name: names.join("+"),
    })
}
