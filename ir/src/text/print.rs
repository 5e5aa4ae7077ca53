//! The printer: a [`Graph`] to its text form (see the parent module for the format).

use super::{ident_or_quoted, quote, Numbering, CONST_MAX_ELEMENTS};
use crate::graph::{Graph, Node, ValueId, Weight};
use crate::tensor::{Tensor, TensorData};
use crate::types::{Dim, TensorType};
use std::fmt::Write;

/// The text form of `graph`.
pub fn print(graph: &Graph) -> String {
    let num = Numbering::new(graph);
    let mut out = String::new();
    let params = |ids: &[ValueId]| -> String {
        ids.iter()
            .map(|&v| format!("{}: {}", num.value(v), value_type(graph, v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "graph @{}({}) -> ({}) {{",
        ident_or_quoted(&graph.name),
        params(graph.inputs()),
        params(graph.outputs())
    );
    for &w in num.weights() {
        let value = graph.value(w);
        if let Some(weight) = graph.weight(w) {
            let _ = write!(out, "  {} = ", num.value(w));
            write_weight(&mut out, &value.ty, weight);
            write_name(&mut out, &value.name);
            out.push('\n');
        }
    }
    for &n in num.nodes() {
        out.push_str("  ");
        write_node(&mut out, graph, graph.node(n), &num);
        out.push('\n');
    }
    out.push_str("  return");
    for (i, &v) in graph.outputs().iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(num.value(v));
    }
    out.push_str("\n}\n");
    out
}

/// The printed type of a value (a placeholder for an id that is not part of the graph).
fn value_type(graph: &Graph, v: ValueId) -> String {
    if v.index() < graph.value_count() {
        type_text(&graph.value(v).ty)
    } else {
        "?".to_string()
    }
}

/// A type as printed: `f32[batch,64]`, with non-identifier symbolic dims quoted.
pub(crate) fn type_text(ty: &TensorType) -> String {
    let dims: Vec<String> = ty
        .dims
        .iter()
        .map(|d| match d {
            Dim::Known(n) => n.to_string(),
            Dim::Sym(s) if s == "?" => "?".to_string(),
            Dim::Sym(s) => ident_or_quoted(s),
        })
        .collect();
    format!("{}[{}]", ty.dtype, dims.join(","))
}

/// ` "name"` unless the name is empty.
fn write_name(out: &mut String, name: &str) {
    if !name.is_empty() {
        out.push(' ');
        out.push_str(&quote(name));
    }
}

/// `weight TYPE nnz=.. density=.. pattern=.. zero_rows=..` or `const TYPE [..]`.
fn write_weight(out: &mut String, ty: &TensorType, w: &Weight) {
    match w.data.as_deref() {
        Some(t) if t.numel() <= CONST_MAX_ELEMENTS => {
            let _ = write!(out, "const {} [{}]", type_text(ty), elements_text(t));
        }
        _ => {
            let f = &w.facts;
            let _ = write!(
                out,
                "weight {} nnz={} density={:.4} pattern={} zero_rows={}",
                type_text(ty),
                f.nnz,
                f.density(),
                f.pattern,
                f.zero_rows
            );
        }
    }
}

/// The elements of a tensor, comma-separated, floats in shortest round-trip form.
fn elements_text(t: &Tensor) -> String {
    fn join<T>(v: &[T], f: impl Fn(&T) -> String) -> String {
        v.iter().map(f).collect::<Vec<_>>().join(",")
    }
    match t.data() {
        TensorData::F32(v) => join(v, |x| format!("{x:?}")),
        TensorData::F64(v) => join(v, |x| format!("{x:?}")),
        TensorData::F16(v) => join(v, |x| format!("{:?}", x.to_f32())),
        TensorData::I64(v) => join(v, i64::to_string),
        TensorData::I32(v) => join(v, i32::to_string),
        TensorData::I8(v) => join(v, i8::to_string),
        TensorData::U8(v) => join(v, u8::to_string),
        TensorData::Bool(v) => join(v, bool::to_string),
    }
}

/// `%a, %b = op %x, _, @w0 {k=v} : T, T "name"`.
fn write_node(out: &mut String, graph: &Graph, node: &Node, num: &Numbering) {
    if !node.outputs.is_empty() {
        let results: Vec<&str> = node.outputs.iter().map(|&v| num.value(v)).collect();
        let _ = write!(out, "{} = ", results.join(", "));
    }
    out.push_str(node.op.name());
    for (i, v) in node.inputs.iter().enumerate() {
        out.push_str(if i == 0 { " " } else { ", " });
        out.push_str(v.map_or("_", |v| num.value(v)));
    }
    let attrs = node.op.attrs();
    if !attrs.is_empty() {
        let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(out, " {{{}}}", attrs.join(", "));
    }
    for (i, &v) in node.outputs.iter().enumerate() {
        out.push_str(if i == 0 { " : " } else { ", " });
        out.push_str(&value_type(graph, v));
    }
    write_name(out, &node.name);
}
