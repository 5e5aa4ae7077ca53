//! Arithmetic on dimensions that may be symbolic: broadcasting, unification, products and sums.
//!
//! A named symbol (`batch`) stands for one unknown size; the symbol `?` stands for a size nobody
//! knows, and two `?` dimensions are not assumed equal.

use crate::types::Dim;

/// The symbol of a dimension that cannot be known at compile time.
pub(crate) const UNKNOWN: &str = "?";

/// A dimension that cannot be known at compile time.
pub(crate) fn unknown() -> Dim {
    Dim::Sym(UNKNOWN.to_string())
}

/// True for the `?` dimension.
pub(crate) fn is_unknown(d: &Dim) -> bool {
    matches!(d, Dim::Sym(s) if s == UNKNOWN)
}

/// Formats dimensions as `[a,b,c]`.
pub(crate) fn fmt_dims(dims: &[Dim]) -> String {
    let items: Vec<String> = dims.iter().map(Dim::to_string).collect();
    format!("[{}]", items.join(","))
}

/// The numpy broadcast of two dimensions; `None` when two known sizes disagree.
///
/// A symbol against 1 or against itself keeps the symbol; against a known size other than 1 the
/// known size wins (the symbol must be that size or 1); against another symbol the result is `?`.
pub(crate) fn broadcast_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => {
            if x == y || *y == 1 {
                Some(Dim::Known(*x))
            } else if *x == 1 {
                Some(Dim::Known(*y))
            } else {
                None
            }
        }
        (Dim::Known(1), s @ Dim::Sym(_)) | (s @ Dim::Sym(_), Dim::Known(1)) => Some(s.clone()),
        (Dim::Known(n), Dim::Sym(_)) | (Dim::Sym(_), Dim::Known(n)) => Some(Dim::Known(*n)),
        (Dim::Sym(x), Dim::Sym(y)) if x == y => Some(a.clone()),
        (Dim::Sym(_), Dim::Sym(_)) => Some(unknown()),
    }
}

/// The numpy (multidirectional) broadcast of two shapes; `None` when they do not broadcast.
pub(crate) fn broadcast(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    let r = a.len().max(b.len());
    let one = Dim::Known(1);
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r {
                &a[i + a.len() - r]
            } else {
                &one
            };
            let db = if i + b.len() >= r {
                &b[i + b.len() - r]
            } else {
                &one
            };
            broadcast_dim(da, db)
        })
        .collect()
}

/// True when `from` broadcasts to `to` without changing `to` (unidirectional broadcasting): every
/// dimension of `from`, aligned right, is 1 or equal to `to`'s, as far as is known.
pub(crate) fn broadcasts_to(from: &[Dim], to: &[Dim]) -> bool {
    if from.len() > to.len() {
        return false;
    }
    let off = to.len() - from.len();
    from.iter()
        .enumerate()
        .all(|(i, f)| match (f, &to[off + i]) {
            (Dim::Known(x), Dim::Known(y)) => x == y || *x == 1,
            _ => true,
        })
}

/// Two dimensions that must be equal; `None` when they are known and differ. The result is the
/// known size if either is known, else the named symbol if either is named, else `?`.
pub(crate) fn unify(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => (x == y).then(|| a.clone()),
        (Dim::Known(_), Dim::Sym(_)) => Some(a.clone()),
        (Dim::Sym(_), Dim::Known(_)) => Some(b.clone()),
        (Dim::Sym(_), Dim::Sym(_)) => Some(if is_unknown(a) { b.clone() } else { a.clone() }),
    }
}

/// The product of dimensions: known when every factor is known (or one is 0), the symbol itself
/// when exactly one factor is symbolic and the rest are 1, else `?`.
pub(crate) fn product(dims: &[Dim]) -> Dim {
    if dims.iter().any(|d| d.known() == Some(0)) {
        return Dim::Known(0);
    }
    let syms: Vec<&Dim> = dims.iter().filter(|d| d.known().is_none()).collect();
    let known: Option<usize> = dims
        .iter()
        .filter_map(Dim::known)
        .try_fold(1usize, |acc, n| acc.checked_mul(n));
    match (syms.as_slice(), known) {
        ([], Some(n)) => Dim::Known(n),
        ([s], Some(1)) => (*s).clone(),
        _ => unknown(),
    }
}

/// The sum of dimensions: known when every term is known, the symbol itself when exactly one
/// term is symbolic and the rest are 0, else `?`.
pub(crate) fn sum(dims: &[Dim]) -> Dim {
    let syms: Vec<&Dim> = dims.iter().filter(|d| d.known().is_none()).collect();
    let known: Option<usize> = dims
        .iter()
        .filter_map(Dim::known)
        .try_fold(0usize, |acc, n| acc.checked_add(n));
    match (syms.as_slice(), known) {
        ([], Some(n)) => Dim::Known(n),
        ([s], Some(0)) => (*s).clone(),
        _ => unknown(),
    }
}

/// `d + delta`: known when `d` is, `d` itself when `delta` is 0, else `?`. `None` when the result
/// would be negative.
pub(crate) fn add(d: &Dim, delta: i64) -> Option<Dim> {
    match d {
        Dim::Known(n) => {
            let r = *n as i128 + delta as i128;
            (r >= 0).then_some(Dim::Known(r as usize))
        }
        Dim::Sym(_) if delta == 0 => Some(d.clone()),
        Dim::Sym(_) => Some(unknown()),
    }
}

/// `d * k` for a non-negative constant `k`: known when `d` is, `d` when `k` is 1, 0 when `k` is 0.
pub(crate) fn scale(d: &Dim, k: usize) -> Dim {
    match d {
        Dim::Known(n) => n.checked_mul(k).map_or_else(unknown, Dim::Known),
        Dim::Sym(_) if k == 1 => d.clone(),
        Dim::Sym(_) if k == 0 => Dim::Known(0),
        Dim::Sym(_) => unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Dim {
        Dim::Sym(n.to_string())
    }

    fn k(n: usize) -> Dim {
        Dim::Known(n)
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_dim(&k(3), &k(1)), Some(k(3)));
        assert_eq!(broadcast_dim(&k(1), &k(3)), Some(k(3)));
        assert_eq!(broadcast_dim(&k(2), &k(3)), None);
        assert_eq!(broadcast_dim(&s("b"), &k(1)), Some(s("b")));
        assert_eq!(broadcast_dim(&k(1), &s("b")), Some(s("b")));
        assert_eq!(broadcast_dim(&s("b"), &s("b")), Some(s("b")));
        assert_eq!(broadcast_dim(&s("b"), &k(5)), Some(k(5)));
        assert_eq!(broadcast_dim(&s("a"), &s("b")), Some(unknown()));
        assert_eq!(
            broadcast(&[s("batch"), k(64)], &[k(64)]),
            Some(vec![s("batch"), k(64)])
        );
        assert_eq!(broadcast(&[k(2), k(3)], &[k(4)]), None);
        assert_eq!(broadcast(&[], &[k(2)]), Some(vec![k(2)]));
    }

    #[test]
    fn products_and_sums() {
        assert_eq!(product(&[k(2), k(3)]), k(6));
        assert_eq!(product(&[]), k(1));
        assert_eq!(product(&[s("b"), k(1)]), s("b"));
        assert_eq!(product(&[s("b"), k(2)]), unknown());
        assert_eq!(product(&[s("b"), k(0)]), k(0));
        assert_eq!(sum(&[k(2), k(3)]), k(5));
        assert_eq!(sum(&[s("n"), k(0)]), s("n"));
        assert_eq!(sum(&[s("n"), k(1)]), unknown());
        assert_eq!(unify(&s("?"), &s("b")), Some(s("b")));
        assert_eq!(unify(&k(2), &k(3)), None);
        assert_eq!(add(&k(2), -3), None);
        assert_eq!(add(&s("n"), 0), Some(s("n")));
        assert_eq!(scale(&s("n"), 1), s("n"));
        assert!(broadcasts_to(&[k(1), k(3)], &[s("b"), k(2), k(3)]));
        assert!(!broadcasts_to(&[k(2)], &[k(3)]));
    }
}
