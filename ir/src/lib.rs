//! The sparse-aware IR of sparsec.
//!
//! A [`Graph`] holds values (graph inputs, weights, node results) and nodes (an [`Op`] applied to
//! an ordered list of operands). Weights carry their data and [`SparsityFacts`] from the moment
//! they are created. The graph has a stable text form ([`print()`], [`parse()`]) and a [`verify()`]
//! function that checks its invariants.

#![warn(missing_docs)]

pub mod attr;
pub mod op;
pub mod sparsity;
pub mod tensor;
pub mod types;

pub use attr::{AttrText, Scalar};
pub use op::{Arity, Family, Op};
pub use sparsity::{Pattern, SparsityFacts};
pub use tensor::{Tensor, TensorData, TensorError};
pub use types::{DType, Dim, TensorType};
pub mod graph;
pub use graph::{Graph, Node, NodeId, Value, ValueDef, ValueId, Weight};
pub mod shape;
pub mod text;
pub use text::{parse, print, Numbering, ParseError};
pub mod verify;
pub use verify::{verify, VerifyError};
