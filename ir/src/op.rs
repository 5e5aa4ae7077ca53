//! The closed set of IR ops: one table defines each op's name, family, arity and attributes.
//!
//! Ops mirror the ONNX operators sparsec supports, with attributes normalized at import to the
//! newest opset's form (for example `Squeeze` axes are always an input, never an attribute). Each
//! attribute has a default; the text form prints only attributes that differ from it. An empty
//! list attribute (`pads=[]`, `strides=[]`, ...) means "the ONNX default".

use crate::attr::{AttrText, Scalar};
use crate::types::DType;

/// The op families; each has one module in the reference interpreter and in shape inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// Elementwise ops of one tensor.
    Unary,
    /// Elementwise ops of two broadcast tensors.
    Binary,
    /// Elementwise ops of any number of broadcast tensors (`Sum`, `Max`, ...).
    Variadic,
    /// `Gemm`, `MatMul`, `Einsum`.
    MatMul,
    /// `Conv`, `ConvTranspose`.
    Conv,
    /// Pooling.
    Pool,
    /// Normalizations and softmax.
    Norm,
    /// Reductions, arg-reductions, `TopK`, `CumSum`.
    Reduce,
    /// Data movement and shape computation.
    Shape,
    /// Gathers and scatters.
    Index,
    /// Everything else (`Cast`, `Where`, `Clip`, `Dropout`, `Trilu`, ...).
    Misc,
}

/// How many operands and results an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arity {
    /// Fewest operands (trailing optional operands may be missing).
    pub min_inputs: usize,
    /// Most operands (`usize::MAX` for variadic ops).
    pub max_inputs: usize,
    /// Most results (`usize::MAX` for `Split`); every op has at least one.
    pub max_outputs: usize,
}

/// Variadic marker for the table.
const MANY: usize = usize::MAX;

macro_rules! define_ops {
    ($(
        $(#[doc = $doc:literal])*
        $v:ident $name:literal $fam:ident ($min:expr, $max:expr, $outs:expr)
            { $( $f:ident : $t:ty = $d:expr ),* $(,)? } ;
    )*) => {
        /// An IR op with its attributes.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Op {
            $(
                $(#[doc = $doc])*
                $v {
                    $(
                        #[doc = concat!("Attribute `", stringify!($f), "`.")]
                        $f: $t,
                    )*
                },
            )*
        }

        impl Op {
            /// Every op name, in table order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The op's name in the text form (`conv`, `reduce_mean`, ...).
            pub fn name(&self) -> &'static str {
                match self { $( Op::$v { .. } => $name, )* }
            }

            /// The op's family.
            pub fn family(&self) -> Family {
                match self { $( Op::$v { .. } => Family::$fam, )* }
            }

            /// Operand and result counts.
            pub fn arity(&self) -> Arity {
                match self {
                    $( Op::$v { .. } => Arity { min_inputs: $min, max_inputs: $max, max_outputs: $outs }, )*
                }
            }

            /// Attributes that differ from their defaults, as `(name, text)` pairs in table order.
            pub fn attrs(&self) -> Vec<(&'static str, String)> {
                #[allow(unused_mut)]
                let mut out = Vec::new();
                match self {
                    $( Op::$v { $($f),* } => {
                        $(
                            let default: $t = $d;
                            if *$f != default {
                                out.push((stringify!($f), AttrText::write_attr($f)));
                            }
                        )*
                    } )*
                }
                out
            }

            /// Builds an op from its name and attribute texts; missing attributes take defaults.
            pub fn from_text(name: &str, attrs: &[(String, String)]) -> Result<Op, String> {
                #[allow(unused_variables)]
                let find = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
                match name {
                    $( $name => {
                        let known: &[&str] = &[$(stringify!($f)),*];
                        if let Some((k, _)) = attrs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
                            return Err(format!("op `{}` has no attribute `{}`", $name, k));
                        }
                        $(
                            let $f: $t = match find(stringify!($f)) {
                                Some(s) => <$t as AttrText>::parse_attr(s)
                                    .map_err(|e| format!("attribute `{}` of `{}`: {e}", stringify!($f), $name))?,
                                None => $d,
                            };
                        )*
                        Ok(Op::$v { $($f),* })
                    } )*
                    _ => Err(format!("unknown op `{name}`")),
                }
            }
        }
    };
}

/// Default `auto_pad`.
fn notset() -> String {
    "NOTSET".to_string()
}

define_ops! {
    /// `-x`.
    Neg "neg" Unary (1, 1, 1) {};
    /// `|x|`.
    Abs "abs" Unary (1, 1, 1) {};
    /// Square root.
    Sqrt "sqrt" Unary (1, 1, 1) {};
    /// `1 / x`.
    Reciprocal "reciprocal" Unary (1, 1, 1) {};
    /// `e^x`.
    Exp "exp" Unary (1, 1, 1) {};
    /// Natural logarithm.
    Log "log" Unary (1, 1, 1) {};
    /// Gauss error function.
    Erf "erf" Unary (1, 1, 1) {};
    /// Hyperbolic tangent.
    Tanh "tanh" Unary (1, 1, 1) {};
    /// Logistic sigmoid.
    Sigmoid "sigmoid" Unary (1, 1, 1) {};
    /// `max(x, 0)`.
    Relu "relu" Unary (1, 1, 1) {};
    /// Sine.
    Sin "sin" Unary (1, 1, 1) {};
    /// Cosine.
    Cos "cos" Unary (1, 1, 1) {};
    /// Tangent.
    Tan "tan" Unary (1, 1, 1) {};
    /// Arcsine.
    Asin "asin" Unary (1, 1, 1) {};
    /// Arccosine.
    Acos "acos" Unary (1, 1, 1) {};
    /// Arctangent.
    Atan "atan" Unary (1, 1, 1) {};
    /// Hyperbolic sine.
    Sinh "sinh" Unary (1, 1, 1) {};
    /// Hyperbolic cosine.
    Cosh "cosh" Unary (1, 1, 1) {};
    /// Inverse hyperbolic sine.
    Asinh "asinh" Unary (1, 1, 1) {};
    /// Inverse hyperbolic cosine.
    Acosh "acosh" Unary (1, 1, 1) {};
    /// Inverse hyperbolic tangent.
    Atanh "atanh" Unary (1, 1, 1) {};
    /// Round toward minus infinity.
    Floor "floor" Unary (1, 1, 1) {};
    /// Round toward plus infinity.
    Ceil "ceil" Unary (1, 1, 1) {};
    /// Round half to even.
    Round "round" Unary (1, 1, 1) {};
    /// Sign (-1, 0, 1).
    Sign "sign" Unary (1, 1, 1) {};
    /// `x / (1 + |x|)`.
    Softsign "softsign" Unary (1, 1, 1) {};
    /// `ln(1 + e^x)`.
    Softplus "softplus" Unary (1, 1, 1) {};
    /// `x * relu6(x + 3) / 6`.
    HardSwish "hard_swish" Unary (1, 1, 1) {};
    /// `x * tanh(softplus(x))`.
    Mish "mish" Unary (1, 1, 1) {};
    /// Logical not.
    Not "not" Unary (1, 1, 1) {};
    /// True where NaN.
    IsNaN "is_nan" Unary (1, 1, 1) {};
    /// True where infinite (per the detect flags).
    IsInf "is_inf" Unary (1, 1, 1) { detect_negative: i64 = 1, detect_positive: i64 = 1 };
    /// Copy.
    Identity "identity" Unary (1, 1, 1) {};
    /// Leaky ReLU.
    LeakyRelu "leaky_relu" Unary (1, 1, 1) { alpha: f32 = 0.01 };
    /// ELU.
    Elu "elu" Unary (1, 1, 1) { alpha: f32 = 1.0 };
    /// SELU.
    Selu "selu" Unary (1, 1, 1) { alpha: f32 = 1.6732632, gamma: f32 = 1.050701 };
    /// CELU.
    Celu "celu" Unary (1, 1, 1) { alpha: f32 = 1.0 };
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid "hard_sigmoid" Unary (1, 1, 1) { alpha: f32 = 0.2, beta: f32 = 0.5 };
    /// `x` where `x > alpha`, else 0.
    ThresholdedRelu "thresholded_relu" Unary (1, 1, 1) { alpha: f32 = 1.0 };
    /// GELU, exact (`none`) or `tanh` approximation.
    Gelu "gelu" Unary (1, 1, 1) { approximate: String = "none".to_string() };
    /// Shrink.
    Shrink "shrink" Unary (1, 1, 1) { bias: f32 = 0.0, lambd: f32 = 0.5 };

    /// `a + b`.
    Add "add" Binary (2, 2, 1) {};
    /// `a - b`.
    Sub "sub" Binary (2, 2, 1) {};
    /// `a * b`.
    Mul "mul" Binary (2, 2, 1) {};
    /// `a / b` (integer division truncates).
    Div "div" Binary (2, 2, 1) {};
    /// `a ^ b`.
    Pow "pow" Binary (2, 2, 1) {};
    /// Remainder; `fmod=1` takes the sign of the dividend.
    Mod "mod" Binary (2, 2, 1) { fmod: i64 = 0 };
    /// `a == b`.
    Equal "equal" Binary (2, 2, 1) {};
    /// `a > b`.
    Greater "greater" Binary (2, 2, 1) {};
    /// `a < b`.
    Less "less" Binary (2, 2, 1) {};
    /// `a >= b`.
    GreaterOrEqual "greater_or_equal" Binary (2, 2, 1) {};
    /// `a <= b`.
    LessOrEqual "less_or_equal" Binary (2, 2, 1) {};
    /// Logical and.
    And "and" Binary (2, 2, 1) {};
    /// Logical or.
    Or "or" Binary (2, 2, 1) {};
    /// Logical xor.
    Xor "xor" Binary (2, 2, 1) {};
    /// `x` where `x >= 0`, else `slope * x`.
    PRelu "prelu" Binary (2, 2, 1) {};

    /// Elementwise sum of all operands.
    Sum "sum" Variadic (1, MANY, 1) {};
    /// Elementwise maximum.
    Max "max" Variadic (1, MANY, 1) {};
    /// Elementwise minimum.
    Min "min" Variadic (1, MANY, 1) {};
    /// Elementwise mean.
    Mean "mean" Variadic (1, MANY, 1) {};

    /// `alpha * op(A) @ op(B) + beta * C`.
    Gemm "gemm" MatMul (2, 3, 1) { alpha: f32 = 1.0, beta: f32 = 1.0, trans_a: i64 = 0, trans_b: i64 = 0 };
    /// Numpy `matmul` (batched, broadcasting).
    MatMul "matmul" MatMul (2, 2, 1) {};
    /// Einstein summation (matrix-product forms).
    Einsum "einsum" MatMul (1, MANY, 1) { equation: String = String::new() };

    /// N-d convolution: operands `x, w[, b]`.
    Conv "conv" Conv (2, 3, 1) {
        auto_pad: String = notset(), dilations: Vec<i64> = vec![], group: i64 = 1,
        kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![]
    };
    /// N-d transposed convolution: operands `x, w[, b]`.
    ConvTranspose "conv_transpose" Conv (2, 3, 1) {
        auto_pad: String = notset(), dilations: Vec<i64> = vec![], group: i64 = 1,
        kernel_shape: Vec<i64> = vec![], output_padding: Vec<i64> = vec![],
        output_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], strides: Vec<i64> = vec![]
    };

    /// Max pooling; the optional second result holds flat indices.
    MaxPool "max_pool" Pool (1, 1, 2) {
        auto_pad: String = notset(), ceil_mode: i64 = 0, dilations: Vec<i64> = vec![],
        kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![], storage_order: i64 = 0,
        strides: Vec<i64> = vec![]
    };
    /// Average pooling.
    AveragePool "average_pool" Pool (1, 1, 1) {
        auto_pad: String = notset(), ceil_mode: i64 = 0, count_include_pad: i64 = 0,
        dilations: Vec<i64> = vec![], kernel_shape: Vec<i64> = vec![], pads: Vec<i64> = vec![],
        strides: Vec<i64> = vec![]
    };
    /// Lp pooling.
    LpPool "lp_pool" Pool (1, 1, 1) {
        auto_pad: String = notset(), ceil_mode: i64 = 0, dilations: Vec<i64> = vec![],
        kernel_shape: Vec<i64> = vec![], p: i64 = 2, pads: Vec<i64> = vec![],
        strides: Vec<i64> = vec![]
    };
    /// Mean over all spatial positions.
    GlobalAveragePool "global_average_pool" Pool (1, 1, 1) {};
    /// Maximum over all spatial positions.
    GlobalMaxPool "global_max_pool" Pool (1, 1, 1) {};
    /// Lp norm over all spatial positions.
    GlobalLpPool "global_lp_pool" Pool (1, 1, 1) { p: i64 = 2 };

    /// Inference batch normalization: operands `x, scale, bias, mean, var`.
    BatchNormalization "batch_normalization" Norm (5, 5, 1) { epsilon: f32 = 1e-5 };
    /// Layer normalization over the axes from `axis` on: operands `x, scale[, bias]`.
    LayerNormalization "layer_normalization" Norm (2, 3, 3) { axis: i64 = -1, epsilon: f32 = 1e-5, stash_type: i64 = 1 };
    /// Instance normalization: operands `x, scale, bias`.
    InstanceNormalization "instance_normalization" Norm (3, 3, 1) { epsilon: f32 = 1e-5 };
    /// RMS normalization over the axes from `axis` on: operands `x, scale`.
    RmsNormalization "rms_normalization" Norm (2, 2, 1) { axis: i64 = -1, epsilon: f32 = 1e-5, stash_type: i64 = 1 };
    /// Local response normalization across channels.
    Lrn "lrn" Norm (1, 1, 1) { alpha: f32 = 1e-4, beta: f32 = 0.75, bias: f32 = 1.0, size: i64 = 1 };
    /// Mean-variance normalization over `axes`.
    MeanVarianceNormalization "mean_variance_normalization" Norm (1, 1, 1) { axes: Vec<i64> = vec![0, 2, 3] };
    /// Softmax along `axis`; `coerce_2d=1` is the opset < 13 form (flatten at `axis`, then softmax of each row).
    Softmax "softmax" Norm (1, 1, 1) { axis: i64 = -1, coerce_2d: i64 = 0 };
    /// Log of softmax; `coerce_2d` as for `softmax`.
    LogSoftmax "log_softmax" Norm (1, 1, 1) { axis: i64 = -1, coerce_2d: i64 = 0 };
    /// One-hot of the maximum; `coerce_2d` as for `softmax`.
    Hardmax "hardmax" Norm (1, 1, 1) { axis: i64 = -1, coerce_2d: i64 = 0 };

    /// Mean over the axes operand (all axes when absent, unless `noop_with_empty_axes`).
    ReduceMean "reduce_mean" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Sum over axes.
    ReduceSum "reduce_sum" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Maximum over axes.
    ReduceMax "reduce_max" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Minimum over axes.
    ReduceMin "reduce_min" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Product over axes.
    ReduceProd "reduce_prod" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// L1 norm over axes.
    ReduceL1 "reduce_l1" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// L2 norm over axes.
    ReduceL2 "reduce_l2" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Sum of squares over axes.
    ReduceSumSquare "reduce_sum_square" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Log of the sum of exponentials over axes.
    ReduceLogSumExp "reduce_log_sum_exp" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Log of the sum over axes.
    ReduceLogSum "reduce_log_sum" Reduce (1, 2, 1) { keepdims: i64 = 1, noop_with_empty_axes: i64 = 0 };
    /// Index of the maximum along `axis` (i64).
    ArgMax "arg_max" Reduce (1, 1, 1) { axis: i64 = 0, keepdims: i64 = 1, select_last_index: i64 = 0 };
    /// Index of the minimum along `axis` (i64).
    ArgMin "arg_min" Reduce (1, 1, 1) { axis: i64 = 0, keepdims: i64 = 1, select_last_index: i64 = 0 };
    /// The `k` largest (or smallest) values and their indices: operands `x, k`.
    TopK "top_k" Reduce (2, 2, 2) { axis: i64 = -1, largest: i64 = 1, sorted: i64 = 1 };
    /// Cumulative sum along the axis operand: operands `x, axis`.
    CumSum "cum_sum" Reduce (2, 2, 1) { exclusive: i64 = 0, reverse: i64 = 0 };

    /// Reshape to the shape operand (`0` copies, `-1` infers unless `allowzero`).
    Reshape "reshape" Shape (2, 2, 1) { allowzero: i64 = 0 };
    /// Flatten to 2-D at `axis`.
    Flatten "flatten" Shape (1, 1, 1) { axis: i64 = 1 };
    /// Permute axes (`perm=[]` reverses them).
    Transpose "transpose" Shape (1, 1, 1) { perm: Vec<i64> = vec![] };
    /// Remove size-1 axes named by the optional axes operand (all size-1 axes when absent).
    Squeeze "squeeze" Shape (1, 2, 1) {};
    /// Insert size-1 axes named by the axes operand.
    Unsqueeze "unsqueeze" Shape (2, 2, 1) {};
    /// Concatenate along `axis`.
    Concat "concat" Shape (1, MANY, 1) { axis: i64 = 0 };
    /// Split along `axis` by the optional sizes operand (equal parts otherwise).
    Split "split" Shape (1, 2, MANY) { axis: i64 = 0, num_outputs: i64 = 0 };
    /// Slice: operands `x, starts, ends[, axes[, steps]]`.
    Slice "slice" Shape (3, 5, 1) {};
    /// Broadcast to the shape operand.
    Expand "expand" Shape (2, 2, 1) {};
    /// Repeat along each axis by the repeats operand.
    Tile "tile" Shape (2, 2, 1) {};
    /// Pad: operands `x, pads[, constant_value[, axes]]`.
    Pad "pad" Shape (2, 4, 1) { mode: String = "constant".to_string() };
    /// Resize: operands `x[, roi[, scales[, sizes]]]`.
    Resize "resize" Shape (1, 4, 1) {
        antialias: i64 = 0, axes: Vec<i64> = vec![],
        coordinate_transformation_mode: String = "half_pixel".to_string(),
        cubic_coeff_a: f32 = -0.75, exclude_outside: i64 = 0, extrapolation_value: f32 = 0.0,
        keep_aspect_ratio_policy: String = "stretch".to_string(), mode: String = "nearest".to_string(),
        nearest_mode: String = "round_prefer_floor".to_string()
    };
    /// The shape of the operand as i64, dims `start..end`.
    Shape "shape" Shape (1, 1, 1) { start: i64 = 0, end: i64 = i64::MAX };
    /// Number of elements as an i64 scalar.
    Size "size" Shape (1, 1, 1) {};
    /// A tensor of the operand's shape filled with `value`.
    ConstantOfShape "constant_of_shape" Shape (1, 1, 1) { value: Scalar = Scalar { dtype: DType::F32, value: 0.0 } };
    /// `start, start + delta, ...` below `limit`: operands `start, limit, delta`.
    Range "range" Shape (3, 3, 1) {};
    /// Upper or lower triangle: operands `x[, k]`.
    Trilu "trilu" Shape (1, 2, 1) { upper: i64 = 1 };
    /// Move depth blocks into spatial blocks.
    DepthToSpace "depth_to_space" Shape (1, 1, 1) { blocksize: i64 = 1, mode: String = "DCR".to_string() };
    /// Move spatial blocks into depth.
    SpaceToDepth "space_to_depth" Shape (1, 1, 1) { blocksize: i64 = 1 };

    /// Gather slices along `axis` by the indices operand.
    Gather "gather" Index (2, 2, 1) { axis: i64 = 0 };
    /// Gather single elements along `axis`.
    GatherElements "gather_elements" Index (2, 2, 1) { axis: i64 = 0 };
    /// Gather slices by index tuples.
    GatherNd "gather_nd" Index (2, 2, 1) { batch_dims: i64 = 0 };
    /// Scatter updates at index tuples: operands `data, indices, updates`.
    ScatterNd "scatter_nd" Index (3, 3, 1) { reduction: String = "none".to_string() };
    /// Scatter single elements along `axis`: operands `data, indices, updates`.
    ScatterElements "scatter_elements" Index (3, 3, 1) { axis: i64 = 0, reduction: String = "none".to_string() };
    /// One-hot encoding: operands `indices, depth, values`.
    OneHot "one_hot" Index (3, 3, 1) { axis: i64 = -1 };

    /// Convert element type.
    Cast "cast" Misc (1, 1, 1) { to: DType = DType::F32 };
    /// Convert to the element type of the second operand.
    CastLike "cast_like" Misc (2, 2, 1) {};
    /// Clamp to the optional `min`, `max` operands.
    Clip "clip" Misc (1, 3, 1) {};
    /// Select: operands `cond, a, b`.
    Where "where" Misc (3, 3, 1) {};
    /// Inference dropout: identity, with an all-true mask as the optional second result.
    Dropout "dropout" Misc (1, 3, 2) {};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_print_and_parse_back() {
        let op = Op::Gemm {
            alpha: 1.0,
            beta: 0.5,
            trans_a: 0,
            trans_b: 1,
        };
        let attrs: Vec<(String, String)> = op
            .attrs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(
            attrs,
            vec![
                ("beta".into(), "0.5".into()),
                ("trans_b".into(), "1".into())
            ]
        );
        assert_eq!(Op::from_text("gemm", &attrs), Ok(op));
        assert!(Op::from_text("gemm", &[("bogus".into(), "1".into())]).is_err());
        assert!(Op::from_text("nope", &[]).is_err());
    }

    #[test]
    fn names_are_unique() {
        let mut names = Op::NAMES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Op::NAMES.len());
    }
}
