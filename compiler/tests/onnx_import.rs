//! Integration tests of the ONNX frontend: models built in memory with a small `ModelProto`
//! builder, imported, and checked value by value.

#[path = "onnx_import/builder.rs"]
mod builder;
#[path = "onnx_import/nodes.rs"]
mod nodes;
#[path = "onnx_import/tensors.rs"]
mod tensors;
