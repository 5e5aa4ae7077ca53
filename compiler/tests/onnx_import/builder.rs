//! A small builder of ONNX `ModelProto`s for the import tests, plus helpers to find values in
//! the imported graph and to make scratch folders.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::{
    tensor_shape_proto, type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto,
    OperatorSetIdProto, SparseTensorProto, StringStringEntryProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use protobuf::MessageField;
use sparsec::onnx::{import_bytes, ImportError, ImportOptions};
use sparsec_ir::{Graph, Node, Op, Tensor, ValueId};

/// ONNX element type codes used by the tests.
pub const FLOAT: i32 = 1;
pub const UINT8: i32 = 2;
pub const INT8: i32 = 3;
pub const UINT16: i32 = 4;
pub const INT32: i32 = 6;
pub const INT64: i32 = 7;
pub const STRING: i32 = 8;
pub const BOOL: i32 = 9;
pub const FLOAT16: i32 = 10;
pub const DOUBLE: i32 = 11;
pub const BFLOAT16: i32 = 16;

/// One dimension of a graph input's declared shape.
pub enum D {
    /// `dim_value`.
    V(i64),
    /// `dim_param`.
    P(&'static str),
    /// Neither field set.
    Unknown,
}

/// Builds a model with one graph.
pub struct ModelBuilder {
    model: ModelProto,
}

/// A model importing the default domain at `opset`.
pub fn model(opset: i64) -> ModelBuilder {
    let mut model = ModelProto::new();
    model.ir_version = 8;
    let mut o = OperatorSetIdProto::new();
    o.version = opset;
    model.opset_import.push(o);
    model.graph = MessageField::some(GraphProto::new());
    ModelBuilder { model }
}

impl ModelBuilder {
    fn graph(&mut self) -> &mut GraphProto {
        self.model.graph.mut_or_insert_default()
    }

    /// Adds a graph input with the given element type and dims.
    pub fn input(mut self, name: &str, elem: i32, dims: Vec<D>) -> Self {
        let vi = value_info(name, elem, Some(dims));
        self.graph().input.push(vi);
        self
    }

    /// Adds a graph input whose type has no shape.
    pub fn input_no_shape(mut self, name: &str, elem: i32) -> Self {
        let vi = value_info(name, elem, None);
        self.graph().input.push(vi);
        self
    }

    /// Adds a graph output (its type is not used by the importer).
    pub fn output(mut self, name: &str) -> Self {
        let vi = value_info(name, FLOAT, Some(vec![]));
        self.graph().output.push(vi);
        self
    }

    /// Adds an initializer.
    pub fn init(mut self, t: TensorProto) -> Self {
        self.graph().initializer.push(t);
        self
    }

    /// Adds a sparse initializer.
    pub fn sparse_init(mut self, t: SparseTensorProto) -> Self {
        self.graph().sparse_initializer.push(t);
        self
    }

    /// Adds a node of the default domain with an empty name.
    pub fn node(
        self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Self {
        self.named_node("", "", op, inputs, outputs, attrs)
    }

    /// Adds a node with a name and a domain.
    pub fn named_node(
        mut self,
        name: &str,
        domain: &str,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> Self {
        let mut n = NodeProto::new();
        n.name = name.to_string();
        n.domain = domain.to_string();
        n.op_type = op.to_string();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = outputs.iter().map(|s| s.to_string()).collect();
        n.attribute = attrs;
        self.graph().node.push(n);
        self
    }

    /// The serialized model.
    pub fn bytes(&self) -> Vec<u8> {
        self.model.write_to_bytes().expect("serialize test model")
    }

    /// Imports the model with default options and no base folder.
    pub fn import(&self) -> Result<Graph, ImportError> {
        import_bytes(&self.bytes(), None, &ImportOptions::default())
    }

    /// Imports the model with the given options.
    pub fn import_with(&self, opts: &ImportOptions) -> Result<Graph, ImportError> {
        import_bytes(&self.bytes(), None, opts)
    }
}

fn value_info(name: &str, elem: i32, dims: Option<Vec<D>>) -> ValueInfoProto {
    let mut t = type_proto::Tensor::new();
    t.elem_type = elem;
    if let Some(dims) = dims {
        let mut shape = TensorShapeProto::new();
        for d in dims {
            let mut dim = tensor_shape_proto::Dimension::new();
            match d {
                D::V(n) => dim.set_dim_value(n),
                D::P(s) => dim.set_dim_param(s.to_string()),
                D::Unknown => {}
            }
            shape.dim.push(dim);
        }
        t.shape = MessageField::some(shape);
    }
    let mut tp = TypeProto::new();
    tp.value = Some(type_proto::Value::TensorType(t));
    let mut vi = ValueInfoProto::new();
    vi.name = name.to_string();
    vi.type_ = MessageField::some(tp);
    vi
}

/// An attribute of type `ty` with the fields set by `f`.
fn attr(name: &str, ty: AttributeType, f: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_string();
    a.type_ = ty.into();
    f(&mut a);
    a
}

/// An `INT` attribute.
pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    attr(name, AttributeType::INT, |a| a.i = i)
}

/// A `FLOAT` attribute.
pub fn attr_f(name: &str, f: f32) -> AttributeProto {
    attr(name, AttributeType::FLOAT, |a| a.f = f)
}

/// An `INTS` attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    attr(name, AttributeType::INTS, |a| a.ints = v.to_vec())
}

/// A `FLOATS` attribute.
pub fn attr_floats(name: &str, v: &[f32]) -> AttributeProto {
    attr(name, AttributeType::FLOATS, |a| a.floats = v.to_vec())
}

/// A `STRING` attribute.
pub fn attr_s(name: &str, s: &str) -> AttributeProto {
    attr(name, AttributeType::STRING, |a| a.s = s.as_bytes().to_vec())
}

/// A `TENSOR` attribute.
pub fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    attr(name, AttributeType::TENSOR, |a| a.t = MessageField::some(t))
}

/// A `SPARSE_TENSOR` attribute.
pub fn attr_sparse(name: &str, t: SparseTensorProto) -> AttributeProto {
    attr(name, AttributeType::SPARSE_TENSOR, |a| {
        a.sparse_tensor = MessageField::some(t)
    })
}

/// A tensor proto with name, element type and dims, and no data yet.
pub fn tp(name: &str, elem: i32, dims: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.data_type = elem;
    t.dims = dims.to_vec();
    t
}

/// A tensor proto holding `raw` as `raw_data`.
pub fn tp_raw(name: &str, elem: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    let mut t = tp(name, elem, dims);
    t.raw_data = raw;
    t
}

/// An `f32` tensor proto in `float_data`.
pub fn tp_f32(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    let mut t = tp(name, FLOAT, dims);
    t.float_data = v.to_vec();
    t
}

/// An `i64` tensor proto in `int64_data`.
pub fn tp_i64(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    let mut t = tp(name, INT64, dims);
    t.int64_data = v.to_vec();
    t
}

/// A tensor proto whose data lives in an external file.
pub fn tp_external(
    name: &str,
    dims: &[i64],
    location: &str,
    offset: Option<u64>,
    length: Option<u64>,
) -> TensorProto {
    let mut t = tp(name, FLOAT, dims);
    t.data_location = DataLocation::EXTERNAL.into();
    let mut kv = |k: &str, v: String| {
        let mut e = StringStringEntryProto::new();
        e.key = k.to_string();
        e.value = v;
        t.external_data.push(e);
    };
    kv("location", location.to_string());
    if let Some(o) = offset {
        kv("offset", o.to_string());
    }
    if let Some(l) = length {
        kv("length", l.to_string());
    }
    t
}

/// A COO sparse tensor proto.
pub fn sparse(values: TensorProto, indices: TensorProto, dims: &[i64]) -> SparseTensorProto {
    let mut s = SparseTensorProto::new();
    s.values = MessageField::some(values);
    s.indices = MessageField::some(indices);
    s.dims = dims.to_vec();
    s
}

/// Little-endian bytes of `f32` values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The data of graph output `k`, which must be a weight.
pub fn output_data(g: &Graph, k: usize) -> &Tensor {
    let v = g.outputs()[k];
    g.const_data(v)
        .unwrap_or_else(|| panic!("output {k} (`{}`) is not a weight", g.value(v).name))
}

/// Every node of the graph in topological order.
pub fn nodes(g: &Graph) -> Vec<&Node> {
    g.topo_order().into_iter().map(|n| g.node(n)).collect()
}

/// The only node of the graph.
pub fn single_node(g: &Graph) -> &Node {
    let ns = nodes(g);
    assert_eq!(ns.len(), 1, "expected one node, found {:?}", ns);
    ns[0]
}

/// The constant data of operand `k` of `node`.
pub fn operand_data<'g>(g: &'g Graph, node: &Node, k: usize) -> &'g Tensor {
    let v = node.inputs[k].unwrap_or_else(|| panic!("operand {k} is omitted"));
    g.const_data(v)
        .unwrap_or_else(|| panic!("operand {k} is not a constant"))
}

/// The name of operand `k` of `node` (or `_` when omitted).
pub fn operand_name(g: &Graph, node: &Node, k: usize) -> String {
    node.inputs[k].map_or("_".to_string(), |v: ValueId| g.value(v).name.clone())
}

/// The op of the only node.
pub fn single_op(g: &Graph) -> Op {
    single_node(g).op.clone()
}

/// A fresh scratch folder under the system temp folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "sparsec-onnx-test-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch folder");
    d
}
