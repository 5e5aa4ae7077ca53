//! sparsec: ONNX frontend, passes, reference interpreter and the `sparsec` command line.

#![warn(missing_docs)]

pub mod codegen;
pub mod conformance;
pub mod engine;
pub mod inputs;
pub mod inspect;
pub mod interp;
pub mod onnx;
pub mod passes;
pub mod spx;
pub mod tensor_io;
