//! Differential cases of the pooling ops over 1, 2 and 3 spatial axes: windows with strides,
//! dilations, pads, `auto_pad` and `ceil_mode`, `MaxPool` with its indices, and the global pools.

use crate::diff_tests;
use crate::gen::{dims_upto, floats, whole_floats};
use crate::harness::{Builder, Case};
use crate::window::window;
use proptest::prelude::*;
use sparsec_ir::Op;

/// Cases per op.
const N: u32 = 20;

/// Pool inputs: `[N, C, spatial...]` with 1..=3 spatial axes (3 only with small sizes).
fn pool_input() -> impl Strategy<Value = Vec<usize>> {
    (1usize..=2, 1usize..=6, dims_upto(1, 3, 13)).prop_map(|(n, c, sp)| {
        let sp: Vec<usize> = if sp.len() == 3 {
            sp.iter().map(|&d| d.min(6)).collect()
        } else {
            sp
        };
        [vec![n, c], sp].concat()
    })
}

/// Which windowed pool.
#[derive(Clone, Copy)]
enum Kind {
    Max { indices: bool },
    Avg,
    Lp,
}

/// A windowed pool over a random window; `ceil_mode` only with explicit pads or `NOTSET`.
fn windowed(kind: Kind) -> impl Strategy<Value = Case> {
    (pool_input(), any::<u64>(), 0i64..=1, 0i64..=1, 1i64..=3).prop_map(
        move |(s, seed, ceil, flag, p)| {
            let w = window(&s[2..], seed, 4, !matches!(kind, Kind::Lp));
            let ceil_mode = if w.auto_pad == "NOTSET" { ceil } else { 0 };
            let (op, outs) = match kind {
                Kind::Max { indices } => (
                    Op::MaxPool {
                        auto_pad: w.auto_pad.clone(),
                        ceil_mode,
                        dilations: w.dilations.clone(),
                        kernel_shape: w.kernel.clone(),
                        pads: w.pads.clone(),
                        storage_order: if indices { flag } else { 0 },
                        strides: w.strides.clone(),
                    },
                    if indices { 2 } else { 1 },
                ),
                Kind::Avg => (
                    Op::AveragePool {
                        auto_pad: w.auto_pad.clone(),
                        ceil_mode,
                        count_include_pad: flag,
                        dilations: w.dilations.clone(),
                        kernel_shape: w.kernel.clone(),
                        pads: w.pads.clone(),
                        strides: w.strides.clone(),
                    },
                    1,
                ),
                Kind::Lp => (
                    Op::LpPool {
                        auto_pad: w.auto_pad.clone(),
                        ceil_mode,
                        dilations: Vec::new(),
                        kernel_shape: w.kernel.clone(),
                        p,
                        pads: w.pads.clone(),
                        strides: w.strides.clone(),
                    },
                    1,
                ),
            };
            let mut b = Builder::new();
            // Whole numbers make MaxPool ties, which test the index choice.
            let x = b.input(match kind {
                Kind::Max { .. } => whole_floats(seed, &s, -4, 4),
                _ => floats(seed, &s, -3.0, 3.0),
            });
            let r = b.node(op, vec![Some(x)], outs);
            b.finish(r).tol(1e-4, 1e-4)
        },
    )
}

/// A global pool over `[N, C, spatial...]`.
fn global(op: Op) -> impl Strategy<Value = Case> {
    (pool_input(), any::<u64>()).prop_map(move |(s, seed)| {
        let mut b = Builder::new();
        let x = b.input(floats(seed, &s, -3.0, 3.0));
        let r = b.node1(op.clone(), vec![Some(x)]);
        b.finish(vec![r]).tol(1e-4, 1e-4)
    })
}

diff_tests! {
    max_pool => "max_pool", N, windowed(Kind::Max { indices: false });
    max_pool_indices => "max_pool", N, windowed(Kind::Max { indices: true });
    average_pool => "average_pool", N, windowed(Kind::Avg);
    lp_pool => "lp_pool", N, windowed(Kind::Lp);
    global_average_pool => "global_average_pool", N, global(Op::GlobalAveragePool {});
    global_max_pool => "global_max_pool", N, global(Op::GlobalMaxPool {});
    global_lp_pool => "global_lp_pool", N, (1i64..=3).prop_flat_map(|p| global(Op::GlobalLpPool { p }));
}
