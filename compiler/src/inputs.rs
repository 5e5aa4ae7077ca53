//! Matching user-supplied tensors to a graph's inputs, with the checks that keep bad input from
//! reaching any kernel: every input given once, no extra names, dtypes equal, ranks equal, known
//! dims equal, and each symbolic dim bound to one size across all inputs.

use sparsec_ir::{Dim, Graph, Tensor};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why the given tensors do not fit the graph's inputs.
#[derive(Debug, Error, PartialEq)]
pub enum InputError {
    /// A graph input has no tensor.
    #[error("missing input `{name}` ({ty})")]
    Missing {
        /// Input name.
        name: String,
        /// Its declared type.
        ty: String,
    },
    /// A tensor names no graph input.
    #[error("the model has no input named `{name}` (inputs: {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// The model's input names.
        known: String,
    },
    /// Dtype or shape mismatch.
    #[error("input `{name}`: {message}")]
    Mismatch {
        /// Input name.
        name: String,
        /// What differs.
        message: String,
    },
}

/// Orders `given` by the graph's inputs and checks each against its declared type. Returns the
/// tensors in graph-input order and the sizes bound to symbolic dims.
pub fn bind_inputs(
    graph: &Graph,
    given: Vec<(String, Tensor)>,
) -> Result<(Vec<Tensor>, BTreeMap<String, usize>), InputError> {
    let names: Vec<String> = graph
        .inputs()
        .iter()
        .map(|&v| graph.value(v).name.clone())
        .collect();
    let mut by_name: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in given {
        if !names.contains(&name) {
            return Err(InputError::Unknown {
                name,
                known: names.join(", "),
            });
        }
        if by_name.insert(name.clone(), t).is_some() {
            return Err(InputError::Mismatch {
                name,
                message: "given more than once".into(),
            });
        }
    }
    let mut syms: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(names.len());
    for (&v, name) in graph.inputs().iter().zip(&names) {
        let ty = &graph.value(v).ty;
        let t = by_name.remove(name).ok_or_else(|| InputError::Missing {
            name: name.clone(),
            ty: ty.to_string(),
        })?;
        let mismatch = |message: String| InputError::Mismatch {
            name: name.clone(),
            message,
        };
        let shown = || format!("{}{:?}", t.dtype(), t.shape());
        if t.dtype() != ty.dtype {
            return Err(mismatch(format!("expected {ty}, got {}", shown())));
        }
        if t.rank() != ty.rank() {
            return Err(mismatch(format!(
                "expected rank {} ({ty}), got {}",
                ty.rank(),
                shown()
            )));
        }
        for (axis, (d, &n)) in ty.dims.iter().zip(t.shape()).enumerate() {
            match d {
                Dim::Known(k) if *k != n => {
                    return Err(mismatch(format!(
                        "dim {axis} must be {k} ({ty}), got {}",
                        shown()
                    )));
                }
                Dim::Sym(s) if s != "?" => {
                    if let Some(&prev) = syms.get(s) {
                        if prev != n {
                            return Err(mismatch(format!(
                                "dim {axis} (`{s}`) is {n}, but another input bound `{s}` to {prev}"
                            )));
                        }
                    } else {
                        syms.insert(s.clone(), n);
                    }
                }
                _ => {}
            }
        }
        out.push(t);
    }
    Ok((out, syms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparsec_ir::{DType, TensorType};

    fn graph() -> Graph {
        let mut g = Graph::new("g");
        let ty = |d: Vec<Dim>| TensorType {
            dtype: DType::F32,
            dims: d,
        };
        g.add_input("a", ty(vec![Dim::Sym("n".into()), Dim::Known(2)]));
        g.add_input("b", ty(vec![Dim::Sym("n".into())]));
        g
    }

    #[test]
    fn binds_and_orders() {
        let (ts, syms) = bind_inputs(
            &graph(),
            vec![
                ("b".into(), Tensor::from_f32(&[3], vec![0.; 3])),
                ("a".into(), Tensor::from_f32(&[3, 2], vec![0.; 6])),
            ],
        )
        .unwrap();
        assert_eq!(ts[0].shape(), &[3, 2]);
        assert_eq!(syms.get("n"), Some(&3));
    }

    #[test]
    fn rejects_bad_inputs() {
        let a = || ("a".to_string(), Tensor::from_f32(&[3, 2], vec![0.; 6]));
        let e = bind_inputs(&graph(), vec![a()]).unwrap_err();
        assert_eq!(e.to_string(), "missing input `b` (f32[n])");
        let e = bind_inputs(&graph(), vec![a(), ("c".into(), Tensor::scalar_f32(1.))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the model has no input named `c` (inputs: a, b)"
        );
        let e = bind_inputs(
            &graph(),
            vec![a(), ("b".into(), Tensor::from_f32(&[4], vec![0.; 4]))],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input `b`: dim 0 (`n`) is 4, but another input bound `n` to 3"
        );
        let e = bind_inputs(
            &graph(),
            vec![
                ("a".into(), Tensor::from_f32(&[3, 5], vec![0.; 15])),
                ("b".into(), Tensor::from_f32(&[3], vec![0.; 3])),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "input `a`: dim 1 must be 2 (f32[n,2]), got f32[3, 5]"
        );
        let e = bind_inputs(
            &graph(),
            vec![
                ("a".into(), Tensor::from_i64(&[3, 2], vec![0; 6])),
                ("b".into(), Tensor::from_f32(&[3], vec![0.; 3])),
            ],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "input `a`: expected f32[n,2], got i64[3, 2]");
    }
}
