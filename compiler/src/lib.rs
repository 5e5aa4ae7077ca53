//! sparsec: ONNX frontend, passes, reference interpreter and the `sparsec` command line.

#![warn(missing_docs)]

pub mod interp;
pub mod onnx;
pub mod tensor_io;
