//! The static memory planner: places every intermediate buffer of a plan at a fixed offset of one
//! arena, so that buffers whose lifetimes overlap never share bytes and buffers whose lifetimes
//! are disjoint can reuse the same memory.
//!
//! The algorithm is greedy best-fit by decreasing size: buffers are placed largest first; each goes
//! into the smallest free gap left between the already placed buffers that are live at the same
//! time as it, or on top of them when no gap is large enough. Every offset is a multiple of
//! [`ALIGN`](crate::buffer::ALIGN), and the arena is never larger than the sum of the buffer sizes
//! rounded up to that alignment.

use crate::buffer::ALIGN;
use crate::error::RuntimeError;

/// A buffer to place: its size and the steps during which it is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferLife {
    /// Size in bytes.
    pub size: usize,
    /// First step that uses it (usually the step that writes it).
    pub first: usize,
    /// Last step that uses it, inclusive.
    pub last: usize,
}

impl BufferLife {
    /// Whether the two buffers are live during a common step.
    pub fn overlaps(&self, other: &BufferLife) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Where the planner put each buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaLayout {
    /// Byte offset of each buffer, in the order the buffers were given; all multiples of
    /// [`ALIGN`](crate::buffer::ALIGN).
    pub offsets: Vec<usize>,
    /// Arena size in bytes (the end of the highest placed buffer).
    pub size: usize,
}

/// Rounds `n` up to a multiple of [`ALIGN`], or `None` on overflow.
fn align_up(n: usize) -> Option<usize> {
    Some(n.checked_add(ALIGN - 1)? / ALIGN * ALIGN)
}

/// Plans the arena for `buffers`; fails when a buffer's interval is reversed or the sizes overflow.
pub fn plan_arena(buffers: &[BufferLife]) -> Result<ArenaLayout, RuntimeError> {
    let mut total: usize = 0;
    for (index, b) in buffers.iter().enumerate() {
        if b.first > b.last {
            return Err(RuntimeError::BadArenaBuffer {
                index,
                reason: format!("live interval [{}, {}] is reversed", b.first, b.last),
            });
        }
        total = align_up(b.size)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| RuntimeError::BadArenaBuffer {
                index,
                reason: format!("size {} overflows the arena", b.size),
            })?;
    }

    // Largest first; ties by start step then index, so the result is deterministic.
    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(buffers[i].size), buffers[i].first, i));

    let mut offsets = vec![0usize; buffers.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(buffers.len());
    let mut size = 0usize;
    // Memory ranges `[start, end)` of placed buffers live at the same time as the current one.
    let mut busy: Vec<(usize, usize)> = Vec::new();
    for &i in &order {
        let b = buffers[i];
        if b.size == 0 {
            continue;
        }
        busy.clear();
        busy.extend(
            placed
                .iter()
                .filter(|&&j| buffers[j].overlaps(&b))
                .map(|&j| (offsets[j], offsets[j] + buffers[j].size)),
        );
        busy.sort_unstable();

        // Walk the gaps between busy ranges; keep the smallest one that fits.
        let mut best: Option<(usize, usize)> = None; // (gap size, offset)
        let mut cursor = 0usize; // aligned start of the current gap
        for &(start, end) in &busy {
            if start >= cursor {
                let gap = start - cursor;
                if gap >= b.size && best.is_none_or(|(g, _)| gap < g) {
                    best = Some((gap, cursor));
                }
            }
            // Offsets and sizes are bounded by `total`, which did not overflow.
            cursor = cursor.max(align_up(end).unwrap_or(end));
        }
        let offset = best.map_or(cursor, |(_, o)| o);
        offsets[i] = offset;
        size = size.max(offset + b.size);
        placed.push(i);
    }
    Ok(ArenaLayout { offsets, size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn life(size: usize, first: usize, last: usize) -> BufferLife {
        BufferLife { size, first, last }
    }

    /// Checks the layout's invariants; returns a message on the first violation.
    fn check(buffers: &[BufferLife], layout: &ArenaLayout) -> Result<(), String> {
        if layout.offsets.len() != buffers.len() {
            return Err("one offset per buffer".into());
        }
        let aligned_sum: usize = buffers.iter().map(|b| align_up(b.size).unwrap()).sum();
        if layout.size > aligned_sum {
            return Err(format!("arena {} > aligned sum {aligned_sum}", layout.size));
        }
        for (i, (a, &oa)) in buffers.iter().zip(&layout.offsets).enumerate() {
            if oa % ALIGN != 0 {
                return Err(format!("buffer {i} at unaligned offset {oa}"));
            }
            if oa + a.size > layout.size {
                return Err(format!("buffer {i} ends past the arena"));
            }
            for (j, (b, &ob)) in buffers.iter().zip(&layout.offsets).enumerate().skip(i + 1) {
                let mem = oa < ob + b.size && ob < oa + a.size;
                if a.size > 0 && b.size > 0 && a.overlaps(b) && mem {
                    return Err(format!("buffers {i} {a:?}@{oa} and {j} {b:?}@{ob} collide"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn empty_and_zero_sized() {
        assert_eq!(
            plan_arena(&[]).unwrap(),
            ArenaLayout {
                offsets: vec![],
                size: 0
            }
        );
        let bufs = [life(0, 0, 3), life(10, 1, 2), life(0, 2, 2)];
        let l = plan_arena(&bufs).unwrap();
        check(&bufs, &l).unwrap();
        assert_eq!(l.size, 10);
    }

    #[test]
    fn disjoint_lifetimes_share_memory() {
        // A chain a -> b -> c -> d: each buffer is live from its producer to its consumer.
        let bufs = [
            life(4096, 0, 1),
            life(4096, 1, 2),
            life(4096, 2, 3),
            life(4096, 3, 4),
        ];
        let l = plan_arena(&bufs).unwrap();
        check(&bufs, &l).unwrap();
        assert_eq!(l.size, 2 * 4096, "{l:?}");
        assert_eq!(l.offsets[0], l.offsets[2]);
    }

    #[test]
    fn all_live_together_stack_up() {
        let bufs = [life(100, 0, 5), life(30, 0, 5), life(64, 2, 3)];
        let l = plan_arena(&bufs).unwrap();
        check(&bufs, &l).unwrap();
        assert_eq!(l.offsets, vec![0, 192, 128]);
        assert_eq!(l.size, 222);
    }

    #[test]
    fn best_fit_uses_the_smallest_gap() {
        // Long-lived buffers leave two holes where short-lived ones were (448 bytes at 512, 256
        // bytes at 1280); a later 100-byte buffer takes the smaller hole, not the first one.
        let bufs = [
            life(512, 0, 9),
            life(400, 0, 0),
            life(300, 0, 9),
            life(250, 0, 0),
            life(200, 0, 9),
            life(100, 5, 6),
        ];
        let l = plan_arena(&bufs).unwrap();
        check(&bufs, &l).unwrap();
        assert_eq!(l.offsets, vec![0, 512, 960, 1280, 1536, 1280]);
        assert_eq!(l.size, 1736);
    }

    #[test]
    fn bad_buffers_are_errors() {
        let e = plan_arena(&[life(1, 0, 0), life(8, 3, 2)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "arena buffer 1: live interval [3, 2] is reversed"
        );
        assert!(plan_arena(&[life(usize::MAX, 0, 0)]).is_err());
        assert!(plan_arena(&[life(usize::MAX / 2, 0, 0), life(usize::MAX / 2, 1, 1)]).is_err());
    }

    fn buffers_strategy(max_size: usize) -> impl Strategy<Value = Vec<BufferLife>> {
        prop::collection::vec((0..max_size, 0usize..30, 0usize..10), 0..40).prop_map(|v| {
            v.into_iter()
                .map(|(size, first, len)| life(size, first, first + len))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn random_layouts_are_valid(bufs in buffers_strategy(5000)) {
            let l = plan_arena(&bufs).unwrap();
            prop_assert!(check(&bufs, &l).is_ok(), "{}", check(&bufs, &l).unwrap_err());
        }

        #[test]
        fn aligned_sizes_never_exceed_their_sum(units in prop::collection::vec((1usize..50, 0usize..20, 0usize..6), 1..30)) {
            let bufs: Vec<BufferLife> = units.iter().map(|&(u, f, n)| life(u * ALIGN, f, f + n)).collect();
            let l = plan_arena(&bufs).unwrap();
            prop_assert!(check(&bufs, &l).is_ok(), "{}", check(&bufs, &l).unwrap_err());
            prop_assert!(l.size <= bufs.iter().map(|b| b.size).sum::<usize>());
            // Never below the largest set of buffers live during one step.
            let peak = (0..30).map(|s| bufs.iter().filter(|b| b.first <= s && s <= b.last).map(|b| b.size).sum::<usize>()).max().unwrap_or(0);
            prop_assert!(l.size >= peak);
        }
    }
}
