//! Native selection and mask kernels: `Where` (any element type), `IsNaN` (f32, f64) and the
//! boolean `And`, `Or`, `Xor`, `Not`, with numpy broadcasting.
//!
//! Each is a [`Kernel::Host`] closure specialized on the shapes known at compile time. The output
//! is walked in rows (`strided.rs`); an operand that is not contiguous along a row (broadcast or
//! strided) is first gathered into a per-call scratch row, so the inner loop always runs over
//! contiguous slices and vectorizes. The parallel dimension is the output's rows.

use super::dense::{operand, result, unsupported};
use super::movement::typed_shape;
use super::strided::{broadcast_strides, grain_for_bytes, Rows};
use super::{Arg, CodegenError, LoweredKernel};
use sparsec_ir::{DType, Graph, NodeId, Op};
use sparsec_runtime::Kernel;

/// Lowers a selection or mask node (see the module doc) to a host kernel; any other node, or one
/// whose types or shapes do not fit, is `Unsupported`.
///
/// Arguments: the operands in order, then the result.
pub fn lower_select(graph: &Graph, n: NodeId) -> Result<LoweredKernel, CodegenError> {
    let node = graph.node(n);
    if node.outputs.len() != 1 || node.inputs.iter().any(Option::is_none) {
        return Err(unsupported(graph, n, "missing operand or extra result"));
    }
    let yv = result(graph, n)?;
    let (dy, out) = typed_shape(graph, n, yv)?;
    let mut dtypes = Vec::new();
    let mut strides = Vec::new();
    let mut args = Vec::new();
    for k in 0..node.inputs.len() {
        let v = operand(graph, n, k)?;
        let (d, s) = typed_shape(graph, n, v)?;
        let st = broadcast_strides(&s, &out).ok_or_else(|| {
            unsupported(
                graph,
                n,
                format!("operand {k} of shape {s:?} does not broadcast to {out:?}"),
            )
        })?;
        dtypes.push(d);
        strides.push(st);
        args.push(Arg::Value(v));
    }
    args.push(Arg::Value(yv));
    let bools = |k: usize| dtypes[..k].iter().all(|&d| d == DType::Bool) && dy == DType::Bool;
    let kind = match node.op {
        Op::Where {} if dtypes.len() == 3 => {
            if dtypes[0] != DType::Bool || dtypes[1] != dy || dtypes[2] != dy {
                return Err(unsupported(graph, n, "operand types do not fit"));
            }
            Kind::Where(dy.size_bytes())
        }
        Op::IsNaN {} if dtypes.len() == 1 && dy == DType::Bool => match dtypes[0] {
            DType::F32 => Kind::IsNan32,
            DType::F64 => Kind::IsNan64,
            d => return Err(unsupported(graph, n, format!("operand of type {d}"))),
        },
        Op::Not {} if dtypes.len() == 1 && bools(1) => Kind::Not,
        Op::And {} if dtypes.len() == 2 && bools(2) => Kind::Logic(Logic::And),
        Op::Or {} if dtypes.len() == 2 && bools(2) => Kind::Logic(Logic::Or),
        Op::Xor {} if dtypes.len() == 2 && bools(2) => Kind::Logic(Logic::Xor),
        _ => {
            return Err(unsupported(
                graph,
                n,
                "not a selection op of supported types",
            ))
        }
    };
    let numel = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(numel) = numel else {
        return Err(unsupported(graph, n, "result is too large"));
    };
    let rows = Rows::new(&out, &strides);
    let bytes_per_elem: usize =
        dtypes.iter().map(|d| d.size_bytes()).sum::<usize>() + dy.size_bytes();
    let work = if numel == 0 { 0 } else { rows.rows() };
    let grain = grain_for_bytes(rows.len() * bytes_per_elem, work);
    let kernel = Kernel::Host(Box::new(move |p: &[*mut u8], begin, end| {
        // SAFETY: the runtime passes buffers of the graph's types and shapes in argument order;
        // the strides address each operand inside its buffer and rows `begin..end` are this
        // call's.
        unsafe { kind.run(&rows, p, begin, end) }
    }));
    Ok(LoweredKernel {
        kernel,
        args,
        work,
        grain,
        op: node.op.name().to_string(),
        layout: "dense".into(),
    })
}

/// A boolean binary op.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Logic {
    And,
    Or,
    Xor,
}

/// What a kernel computes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `Where` over elements of this many bytes.
    Where(usize),
    /// `IsNaN` of f32.
    IsNan32,
    /// `IsNaN` of f64.
    IsNan64,
    /// `Not`.
    Not,
    /// `And`, `Or`, `Xor`.
    Logic(Logic),
}

impl Kind {
    /// Computes rows `begin..end`.
    ///
    /// # Safety
    /// As for the kernel: `p` holds the operands and the result for the walk `rows`.
    unsafe fn run(self, rows: &Rows, p: &[*mut u8], begin: usize, end: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match self {
                Kind::Where(1) => where_rows::<u8>(rows, p, begin, end),
                Kind::Where(2) => where_rows::<u16>(rows, p, begin, end),
                Kind::Where(4) => where_rows::<u32>(rows, p, begin, end),
                Kind::Where(_) => where_rows::<u64>(rows, p, begin, end),
                Kind::IsNan32 => map_rows::<f32>(rows, p, begin, end, |x| x.is_nan() as u8),
                Kind::IsNan64 => map_rows::<f64>(rows, p, begin, end, |x| x.is_nan() as u8),
                Kind::Not => map_rows::<u8>(rows, p, begin, end, |x| (x == 0) as u8),
                Kind::Logic(l) => logic_rows(rows, p, begin, end, l),
            }
        }
    }
}

/// Operand `k`'s part of a row as a contiguous slice: the buffer itself when the operand is
/// contiguous along rows, else its elements gathered into `scratch`.
///
/// # Safety
/// `base + off + j * stride` must be inside the operand's buffer for every `j < len`.
unsafe fn row_of<T: Copy>(
    base: *const T,
    off: usize,
    stride: usize,
    len: usize,
    scratch: &mut Vec<T>,
) -> &[T] {
    // SAFETY: the caller's contract.
    unsafe {
        let from = base.add(off);
        if stride == 1 {
            return std::slice::from_raw_parts(from, len);
        }
        scratch.clear();
        if stride == 0 {
            scratch.resize(len, *from);
        } else {
            scratch.extend((0..len).map(|j| *from.add(j * stride)));
        }
        scratch
    }
}

/// The result row `r` of a walk with rows of `len` elements.
///
/// # Safety
/// The result buffer must hold the row and no other thread may write it.
unsafe fn out_row<'a, T>(p: *mut u8, r: usize, len: usize) -> &'a mut [T] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut((p as *mut T).add(r * len), len) }
}

/// An element of `Where` seen as its bits, so the selection is a branch-free mask.
trait Bits: Copy + std::ops::BitAnd<Output = Self> + std::ops::BitOr<Output = Self> {
    /// All ones when `c` is nonzero, else all zeros.
    fn mask(c: u8) -> Self;
    /// The bitwise complement.
    fn flip(self) -> Self;
}

macro_rules! bits {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            #[inline(always)]
            fn mask(c: u8) -> $t {
                (0 as $t).wrapping_sub((c != 0) as $t)
            }
            #[inline(always)]
            fn flip(self) -> $t {
                !self
            }
        }
    )*};
}
bits!(u8, u16, u32, u64);

/// `Where` over elements of type `T` (the condition is bytes).
///
/// # Safety
/// As for [`Kind::run`].
unsafe fn where_rows<T: Bits>(rows: &Rows, p: &[*mut u8], begin: usize, end: usize) {
    let len = rows.len();
    let (mut sc, mut sx, mut sy) = (Vec::new(), Vec::new(), Vec::new());
    rows.for_rows(begin, end, |r, o| {
        // SAFETY: the walk addresses every operand inside its buffer; the row is this call's.
        unsafe {
            let c = row_of(p[0] as *const u8, o[0], rows.inner(0), len, &mut sc);
            let x = row_of(p[1] as *const T, o[1], rows.inner(1), len, &mut sx);
            let y = row_of(p[2] as *const T, o[2], rows.inner(2), len, &mut sy);
            let out = out_row::<T>(p[3], r, len);
            for (((o, &c), &x), &y) in out.iter_mut().zip(c).zip(x).zip(y) {
                let m = T::mask(c);
                *o = (x & m) | (y & m.flip());
            }
        }
    });
}

/// A one-operand map from `T` to bytes.
///
/// # Safety
/// As for [`Kind::run`].
unsafe fn map_rows<T: Copy>(
    rows: &Rows,
    p: &[*mut u8],
    begin: usize,
    end: usize,
    f: impl Fn(T) -> u8,
) {
    let len = rows.len();
    let mut sx = Vec::new();
    rows.for_rows(begin, end, |r, o| {
        // SAFETY: as in `where_rows`.
        unsafe {
            let x = row_of(p[0] as *const T, o[0], rows.inner(0), len, &mut sx);
            let out = out_row::<u8>(p[1], r, len);
            for (o, &x) in out.iter_mut().zip(x) {
                *o = f(x);
            }
        }
    });
}

/// A boolean binary op over bytes (nonzero is true; the result is 0 or 1).
///
/// # Safety
/// As for [`Kind::run`].
unsafe fn logic_rows(rows: &Rows, p: &[*mut u8], begin: usize, end: usize, l: Logic) {
    let len = rows.len();
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    rows.for_rows(begin, end, |r, o| {
        // SAFETY: as in `where_rows`.
        unsafe {
            let a = row_of(p[0] as *const u8, o[0], rows.inner(0), len, &mut sa);
            let b = row_of(p[1] as *const u8, o[1], rows.inner(1), len, &mut sb);
            let out = out_row::<u8>(p[2], r, len);
            let pairs = out.iter_mut().zip(a.iter().zip(b));
            match l {
                Logic::And => pairs.for_each(|(o, (&a, &b))| *o = ((a != 0) & (b != 0)) as u8),
                Logic::Or => pairs.for_each(|(o, (&a, &b))| *o = ((a != 0) | (b != 0)) as u8),
                Logic::Xor => pairs.for_each(|(o, (&a, &b))| *o = ((a != 0) ^ (b != 0)) as u8),
            }
        }
    });
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
