//! Printer tests on graphs built with the `Graph` API: weight facts of every pattern, constants,
//! dead values, unnamed and clashing names, and the numbering shared with the verifier.

use sparsec_ir::{
    parse, print, verify, DType, Dim, Graph, Numbering, Op, Pattern, Tensor, TensorType, ValueId,
};

/// An `f32` weight of `shape` (rows x the rest) whose element `(r, c)` is `f(r, c)`.
fn matrix(shape: &[usize], f: impl Fn(usize, usize) -> f32) -> Tensor {
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let data = (0..rows * cols).map(|i| f(i / cols, i % cols)).collect();
    Tensor::from_f32(shape, data)
}

/// `f32[batch, n]`.
fn batch(n: usize) -> TensorType {
    TensorType {
        dtype: DType::F32,
        dims: vec![Dim::Sym("batch".into()), Dim::Known(n)],
    }
}

/// One-result node; returns its result.
fn node(g: &mut Graph, name: &str, op: Op, inputs: &[Option<ValueId>], ty: TensorType) -> ValueId {
    let n = g.add_node(name, op, inputs.to_vec(), vec![(String::new(), ty)]);
    g.node(n).outputs[0]
}

/// Asserts that printing, parsing and printing again gives the same text; returns the text.
fn round_trip(g: &Graph) -> String {
    let text = print(g);
    let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(print(&back), text);
    text
}

/// A graph with one weight of every interesting pattern, small constants and a split.
fn sparse_graph() -> Graph {
    let mut g = Graph::new("sparse");
    let x = g.add_input("x", batch(8));
    // 2:4 along rows, with the kept pair alternating so no block pattern matches.
    let w24 = g.add_weight(
        "fc.w24",
        matrix(
            &[4, 8],
            |r, c| if c % 2 == r % 2 { 1.0 + c as f32 } else { 0.0 },
        ),
    );
    let wzr = g.add_weight(
        "fc.zero_rows",
        matrix(&[4, 8], |r, c| {
            if r % 2 == 1 {
                0.0
            } else {
                (r * 8 + c) as f32 + 0.5
            }
        }),
    );
    let wblk = g.add_weight(
        "blocks",
        matrix(&[2, 16], |r, c| if (c / 4) % 2 == r { 2.0 } else { 0.0 }),
    );
    let wun = g.add_weight(
        "unstructured",
        matrix(
            &[3, 7],
            |r, c| if (r * 7 + c) % 3 == 0 { -1.0 } else { 0.0 },
        ),
    );
    let scale = g.add_weight("scale", Tensor::from_f32(&[4], vec![0.5, -1.0, 1e-7, 3.25]));
    let sizes = g.add_weight("sizes", Tensor::from_i64(&[2], vec![2, 2]));
    let gemm = |trans_b| Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: 0,
        trans_b,
    };
    let a = node(&mut g, "fc_24", gemm(1), &[Some(x), Some(w24)], batch(4));
    let b = node(
        &mut g,
        "fc_zr",
        gemm(1),
        &[Some(x), Some(wzr), None],
        batch(4),
    );
    let c = node(&mut g, "", Op::Add {}, &[Some(a), Some(b)], batch(4));
    let d = node(
        &mut g,
        "scale",
        Op::Mul {},
        &[Some(c), Some(scale)],
        batch(4),
    );
    let split = g.add_node(
        "split",
        Op::Split {
            axis: 1,
            num_outputs: 0,
        },
        vec![Some(d), Some(sizes)],
        vec![("left".into(), batch(2)), ("right".into(), batch(2))],
    );
    let left = g.node(split).outputs[0];
    let blk = node(
        &mut g,
        "",
        Op::Identity {},
        &[Some(wblk)],
        TensorType::known(DType::F32, &[2, 16]),
    );
    let un = node(
        &mut g,
        "",
        Op::Identity {},
        &[Some(wun)],
        TensorType::known(DType::F32, &[3, 7]),
    );
    g.value_mut(left).name = "left".into();
    g.set_outputs(vec![left, blk, un]);
    g
}

#[test]
fn weights_print_their_facts() {
    let g = sparse_graph();
    let num = Numbering::new(&g);
    let pattern = |name: &str| {
        let w = num.weights().iter().find(|&&w| g.value(w).name == name);
        w.and_then(|&w| g.weight(w)).map(|w| w.facts.pattern)
    };
    assert_eq!(pattern("fc.w24"), Some(Pattern::NM { n: 2, m: 4 }));
    assert_eq!(pattern("fc.zero_rows"), Some(Pattern::ZeroRows));
    assert_eq!(pattern("blocks"), Some(Pattern::Block { r: 1, c: 4 }));
    assert_eq!(pattern("unstructured"), Some(Pattern::Unstructured));
    let text = round_trip(&g);
    insta::assert_snapshot!("sparse_graph", text);
}

#[test]
fn parsed_weights_keep_facts_and_small_data() {
    let g = sparse_graph();
    let back = parse(&print(&g)).expect("parses");
    let num = Numbering::new(&back);
    let weights: Vec<(&str, bool)> = num
        .weights()
        .iter()
        .map(|&w| {
            let has_data = back.weight(w).expect("is a weight").data.is_some();
            (back.value(w).name.as_str(), has_data)
        })
        .collect();
    assert_eq!(
        weights,
        vec![
            ("fc.w24", false),
            ("fc.zero_rows", false),
            ("scale", true),
            ("sizes", true),
            ("blocks", false),
            ("unstructured", false),
        ]
    );
    let scale = num.weights()[2];
    assert_eq!(
        back.const_data(scale).and_then(Tensor::as_f32),
        Some(&[0.5, -1.0, 1e-7, 3.25][..])
    );
    let facts = |g: &Graph, k: usize| g.weight(Numbering::new(g).weights()[k]).map(|w| w.facts);
    for k in 0..6 {
        assert_eq!(facts(&back, k), facts(&g, k), "weight {k}");
    }
}

#[test]
fn dead_values_are_skipped_and_numbers_stay_dense() {
    let mut g = Graph::new("dead");
    let ty = TensorType::known(DType::F32, &[2]);
    let x = g.add_input("x", ty.clone());
    let unused = g.add_weight("unused", Tensor::from_f32(&[2], vec![1.0, 2.0]));
    let a = node(&mut g, "a", Op::Relu {}, &[Some(x)], ty.clone());
    let dead = node(&mut g, "dead", Op::Neg {}, &[Some(a)], ty.clone());
    let b = node(&mut g, "b", Op::Exp {}, &[Some(a)], ty.clone());
    let c = node(&mut g, "c", Op::Add {}, &[Some(a), Some(b)], ty.clone());
    g.set_outputs(vec![c]);
    g.value_mut(c).name = "y".into();
    assert_eq!(g.remove_dead_nodes(), 1);
    let text = round_trip(&g);
    assert_eq!(
        text,
        "graph @dead(%x: f32[2]) -> (%y: f32[2]) {\n\
         \x20 %0 = relu %x : f32[2] \"a\"\n\
         \x20 %1 = exp %0 : f32[2] \"b\"\n\
         \x20 %y = add %0, %1 : f32[2] \"c\"\n\
         \x20 return %y\n\
         }\n"
    );
    let num = Numbering::new(&g);
    assert_eq!(num.value(unused), "%<unprinted>");
    assert_eq!(num.value(dead), "%<unprinted>");
    assert_eq!(verify(&g), Ok(()));
}

#[test]
fn outputs_that_are_inputs_or_weights_print_and_round_trip() {
    let mut g = Graph::new("pass");
    let ty = TensorType::known(DType::F32, &[3]);
    let x = g.add_input("x", ty.clone());
    let big = g.add_weight(
        "table",
        Tensor::from_f32(&[20], (0..20).map(|i| i as f32).collect()),
    );
    let small = g.add_weight("", Tensor::from_i64(&[], vec![-4]));
    g.set_outputs(vec![x, big, small, x]);
    let text = round_trip(&g);
    assert_eq!(
        text,
        "graph @pass(%x: f32[3]) -> (%x: f32[3], @w0: f32[20], @w1: i64[], %x: f32[3]) {\n\
         \x20 @w0 = weight f32[20] nnz=19 density=0.9500 pattern=unstructured zero_rows=0 \"table\"\n\
         \x20 @w1 = const i64[] [-4]\n\
         \x20 return %x, @w0, @w1, %x\n\
         }\n"
    );
}

#[test]
fn unnamed_and_clashing_names_fall_back_to_numbers() {
    let mut g = Graph::new("");
    let ty = TensorType::known(DType::F32, &[2]);
    let a = g.add_input("", ty.clone());
    let b = g.add_input("in", ty.clone());
    let s = node(&mut g, "", Op::Add {}, &[Some(a), Some(b)], ty.clone());
    let t = node(&mut g, "", Op::Relu {}, &[Some(s)], ty.clone());
    g.value_mut(s).name = "in".into();
    g.set_outputs(vec![s, t]);
    let text = round_trip(&g);
    assert_eq!(
        text,
        "graph @\"\"(%0: f32[2], %in: f32[2]) -> (%1: f32[2], %2: f32[2]) {\n\
         \x20 %1 = add %0, %in : f32[2]\n\
         \x20 %2 = relu %1 : f32[2]\n\
         \x20 return %1, %2\n\
         }\n"
    );
}

#[test]
fn numbering_names_nodes_by_their_first_result() {
    let g = sparse_graph();
    let num = Numbering::new(&g);
    let names: Vec<&str> = num.nodes().iter().map(|&n| num.node(n)).collect();
    assert_eq!(names, vec!["%0", "%1", "%2", "%3", "%left", "%5", "%6"]);
    let split = num.nodes()[4];
    assert_eq!(num.value(g.node(split).outputs[1]), "%4");
    assert_eq!(num.value(g.inputs()[0]), "%x");
}

#[test]
fn cyclic_graphs_still_print() {
    let mut g = Graph::new("cycle");
    let ty = TensorType::known(DType::F32, &[2]);
    let x = g.add_input("x", ty.clone());
    let a = node(&mut g, "a", Op::Relu {}, &[Some(x)], ty.clone());
    let b = node(&mut g, "b", Op::Neg {}, &[Some(a)], ty.clone());
    let a_node = g.node_ids()[0];
    g.set_input(a_node, 0, Some(b));
    g.set_outputs(vec![b]);
    g.value_mut(b).name = "y".into();
    assert_eq!(
        print(&g),
        "graph @cycle(%x: f32[2]) -> (%y: f32[2]) {\n\
         \x20 %0 = relu %y : f32[2] \"a\"\n\
         \x20 %y = neg %0 : f32[2] \"b\"\n\
         \x20 return %y\n\
         }\n"
    );
}
