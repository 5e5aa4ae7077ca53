//! The thin runtime of sparsec: execution plans, arena, thread pool and kernel ABI (grows with the codegen work).

#![warn(missing_docs)]
