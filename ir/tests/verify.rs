//! Verifier tests: broken graphs, each asserting the exact located error text and invariant.

use sparsec_ir::{
    parse, print, verify, DType, Graph, Op, Pattern, SparsityFacts, Tensor, TensorType, ValueDef,
    ValueId, Weight,
};
use std::sync::Arc;

/// `f32[2]`.
fn f32_2() -> TensorType {
    TensorType::known(DType::F32, &[2])
}

/// One-result node; returns its result.
fn node(g: &mut Graph, op: Op, inputs: &[Option<ValueId>], ty: TensorType) -> ValueId {
    let n = g.add_node("", op, inputs.to_vec(), vec![(String::new(), ty)]);
    g.node(n).outputs[0]
}

/// The verifier's errors as `(invariant, text)` pairs (empty when the graph verifies).
fn errors(g: &Graph) -> Vec<(u8, String)> {
    match verify(g) {
        Ok(()) => Vec::new(),
        Err(es) => es.iter().map(|e| (e.invariant, e.to_string())).collect(),
    }
}

/// Owned `(invariant, text)` pairs.
fn expect(pairs: &[(u8, &str)]) -> Vec<(u8, String)> {
    pairs.iter().map(|&(i, s)| (i, s.to_string())).collect()
}

/// `x -> relu -> %y`, a graph that verifies.
fn relu_graph() -> (Graph, ValueId, ValueId) {
    let mut g = Graph::new("g");
    let x = g.add_input("x", f32_2());
    let y = node(&mut g, Op::Relu {}, &[Some(x)], f32_2());
    g.value_mut(y).name = "y".into();
    g.set_outputs(vec![y]);
    (g, x, y)
}

#[test]
fn a_well_formed_graph_verifies() {
    let (mut g, x, y) = relu_graph();
    let w = g.add_weight("w", Tensor::from_f32(&[2], vec![1.0, 0.0]));
    let z = node(&mut g, Op::Add {}, &[Some(y), Some(w)], f32_2());
    g.value_mut(z).name = "z".into();
    g.set_outputs(vec![z, x, w]);
    assert_eq!(errors(&g), vec![]);
}

#[test]
fn wrong_arity_is_reported_per_node() {
    let mut g = Graph::new("arity");
    let x = g.add_input("x", f32_2());
    let a = node(&mut g, Op::Relu {}, &[Some(x), Some(x)], f32_2());
    let b = node(&mut g, Op::Add {}, &[Some(a)], f32_2());
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: 0,
        trans_b: 0,
    };
    let c = node(&mut g, gemm, &[Some(b), None, Some(x)], f32_2());
    let none = g.add_node("nothing", Op::Neg {}, vec![Some(c)], vec![]);
    let two = g.add_node(
        "two",
        Op::Exp {},
        vec![Some(c)],
        vec![("".into(), f32_2()), ("".into(), f32_2())],
    );
    let two = g.node(two).outputs[0];
    g.set_outputs(vec![c, two]);
    g.value_mut(c).name = "c".into();
    g.value_mut(two).name = "two".into();
    let _ = none;
    assert_eq!(
        errors(&g),
        expect(&[
            (1, "%0 (relu): has 2 operands, expected 1"),
            (1, "%1 (add): has 1 operands, expected 2"),
            (1, "%c (gemm): required operand 1 is omitted"),
            (1, "node#3 (neg): has 0 results, expected 1"),
            (1, "%two (exp): has 2 results, expected 1"),
        ])
    );
}

#[test]
fn uses_of_removed_nodes_are_dangling() {
    let mut g = Graph::new("dangling");
    let x = g.add_input("x", f32_2());
    let a = node(&mut g, Op::Relu {}, &[Some(x)], f32_2());
    let b = node(&mut g, Op::Neg {}, &[Some(a)], f32_2());
    g.value_mut(b).name = "y".into();
    g.set_outputs(vec![b, a]);
    let a_node = g.node_ids()[0];
    g.remove_node(a_node);
    assert_eq!(
        errors(&g),
        expect(&[
            (2, "%y (neg): operand 0 (%0) is defined by a removed node"),
            (2, "%0: graph output 1 (%0) is defined by a removed node"),
            (7, "%0: graph output 1 has an empty name"),
        ])
    );
    // The printer still prints the dangling use; the parser rejects it.
    let text = print(&g);
    assert!(text.contains("  %y = neg %0 : f32[2]\n"), "{text}");
    assert_eq!(
        parse(&text).map(|_| ()).map_err(|e| e.to_string()),
        Err("2:12: use of undefined value `%0`".to_string())
    );
}

#[test]
fn cycles_are_reported() {
    let (mut g, _, y) = relu_graph();
    let z = node(&mut g, Op::Neg {}, &[Some(y)], f32_2());
    let relu = g.node_ids()[0];
    g.set_input(relu, 0, Some(z));
    assert_eq!(
        errors(&g),
        expect(&[
            (3, "%y (relu): is on a cycle or depends on one"),
            (3, "%0 (neg): is on a cycle or depends on one"),
        ])
    );
}

#[test]
fn inconsistent_definitions_are_reported() {
    let (mut g, x, y) = relu_graph();
    let relu = g.node_ids()[0];
    g.value_mut(y).def = ValueDef::Result {
        node: relu,
        index: 1,
    };
    g.value_mut(x).def = ValueDef::Input(3);
    assert_eq!(
        errors(&g),
        expect(&[
            (
                4,
                "%y (relu): result 0 (%y) is not recorded as result 0 of this node"
            ),
            (4, "%x: graph input 0 is not recorded as graph input 0"),
            (
                4,
                "%x: is recorded as graph input 3, which is another value"
            ),
            (
                4,
                "%y: is recorded as result 1 of %y (relu), which does not list it"
            ),
        ])
    );
}

#[test]
fn result_types_must_match_inference() {
    let (mut g, _, y) = relu_graph();
    g.value_mut(y).ty = TensorType::known(DType::F64, &[2]);
    let z = node(
        &mut g,
        Op::Neg {},
        &[Some(y)],
        TensorType::known(DType::F64, &[3]),
    );
    g.set_outputs(vec![y, z]);
    g.value_mut(z).name = "z".into();
    assert_eq!(
        errors(&g),
        expect(&[
            (5, "%y (relu): result 0 has type f64[2], inferred f32[2]"),
            (5, "%z (neg): result 0 has type f64[3], inferred f64[2]"),
        ])
    );
}

#[test]
fn unknown_dims_match_anything() {
    let text =
        "graph @g(%x: f32[?,3]) -> (%y: f32[2,?]) {\n  %y = relu %x : f32[2,?]\n  return %y\n}\n";
    let g = parse(text).expect("parses");
    assert_eq!(errors(&g), vec![]);
    let bad = text.replace("f32[2,?]", "f32[2,?,1]");
    let g = parse(&bad).expect("parses");
    assert_eq!(
        errors(&g),
        expect(&[(
            5,
            "%y (relu): result 0 has type f32[2,?,1], inferred f32[?,3]"
        )])
    );
}

#[test]
fn weight_facts_and_types_must_match_their_data() {
    let (mut g, _, y) = relu_graph();
    let data = Tensor::from_f32(&[2, 2], vec![1.0, 0.0, 0.0, 0.0]);
    let w = g.add_weight("w", data.clone());
    let v = g.add_weight("v", Tensor::from_i64(&[2], vec![1, 2]));
    let u = g.add_weight_facts(
        "u",
        TensorType::known(DType::F32, &[4]),
        SparsityFacts {
            numel: 5,
            nnz: 6,
            zero_rows: 0,
            pattern: Pattern::Dense,
        },
    );
    let real = SparsityFacts::compute(&data);
    g.value_mut(w).def = ValueDef::Weight(Weight {
        data: Some(Arc::new(data)),
        facts: SparsityFacts {
            nnz: 2,
            pattern: Pattern::Dense,
            ..real
        },
    });
    g.value_mut(v).ty = TensorType::known(DType::F32, &[2]);
    // Identities whose results take each weight's recorded type, so only invariant 6 fails.
    let mut outputs = vec![y];
    for (k, weight) in [w, v, u].into_iter().enumerate() {
        let ty = g.value(weight).ty.clone();
        let o = node(&mut g, Op::Identity {}, &[Some(weight)], ty);
        g.value_mut(o).name = format!("o{k}");
        outputs.push(o);
    }
    g.set_outputs(outputs);
    assert_eq!(
        errors(&g),
        expect(&[
            (6, "@w0: facts nnz=2 pattern=dense zero_rows=1 differ from the data's nnz=1 pattern=unstructured zero_rows=1"),
            (6, "@w1: type f32[2] does not match its data i64[2]"),
            (6, "@w2: facts count 5 elements, type f32[4] has 4"),
            (6, "@w2: facts count 6 nonzeros in 5 elements"),
        ])
    );
}

#[test]
fn graph_input_and_output_names_are_unique_and_non_empty() {
    let mut g = Graph::new("names");
    let x = g.add_input("x", f32_2());
    let x2 = g.add_input("x", f32_2());
    let e = g.add_input("", f32_2());
    let s = node(&mut g, Op::Sum {}, &[Some(x), Some(x2), Some(e)], f32_2());
    g.value_mut(s).name = "x".into();
    g.set_outputs(vec![s, x, x]);
    assert_eq!(
        errors(&g),
        expect(&[
            (
                7,
                "%0: graph input 1 has the same name \"x\" as graph input 0 (%x)"
            ),
            (7, "%1: graph input 2 has an empty name"),
            (
                7,
                "%2: graph output 0 has the same name \"x\" as graph input 0 (%x)"
            ),
        ])
    );
}

#[test]
fn errors_use_the_printed_names() {
    let text = "graph @g(%x: f32[2]) -> (%y: i64[2]) {\n  %0 = relu %x : f32[2]\n  %1 = exp %0 : f32[2]\n  %y = neg %1 : i64[2]\n  return %y\n}\n";
    let g = parse(text).expect("parses");
    assert_eq!(print(&g), text);
    let es = verify(&g).expect_err("neg result type is wrong");
    assert_eq!(es.len(), 1);
    assert_eq!(es[0].location, "%y (neg)");
    assert_eq!(es[0].message, "result 0 has type i64[2], inferred f32[2]");
}
