//! Symbolic passes on the typed IR: the exact, ratio-free form of the encoder's `1/S` term.
//!
//! docs/theory.md section 6: with `x2 = (C12/C11) x1 + z`, `z` independent of `x1`,
//!
//! ```text
//! [ I21 (C22 u - C12 v) + I22 (C11 v - C12 u) ] / (C11 C22 - C12^2)
//!     = (C12 / C11^2) E[g'(x) x^2] u + E[g'(x)] (v - C12 u / C11),   x ~ N(0, C11)
//! ```
//!
//! The right side has no `0/0` on the aligned manifold (`S = 0`). Both one-dimensional averages
//! are expressed with the five named ones: `E[g'(x) x^2] = I22(C11, C11, C11)` and, by Stein's
//! lemma, `E[g'(x)] = J2(C11, C11, C11) / C11`.

use crate::ir::{Avg, Expr, Model};

/// Rewrites every matching ratio in all equations, lets and observables; returns the count.
pub fn rewrite_ratios(model: &mut Model) -> usize {
    let mut count = 0;
    let mut pass = |e: &Expr| {
        e.rewrite(&mut |node| match &node {
            Expr::Div(num, den) => match match_ratio(num, den) {
                Some(r) => {
                    count += 1;
                    r
                }
                None => node,
            },
            _ => node,
        })
    };
    for s in &mut model.states {
        s.rhs = pass(&s.rhs);
    }
    for l in &mut model.lets {
        l.body = pass(&l.body);
    }
    for o in &mut model.observables {
        o.body = pass(&o.body);
    }
    model.ratio_rewrites += count;
    count
}

/// `a * b` in either order.
fn product(e: &Expr) -> Option<(&Expr, &Expr)> {
    match e {
        Expr::Mul(a, b) => Some((a, b)),
        _ => None,
    }
}

/// Matches `e` against `c * x` (either order) and returns `x`.
fn times<'e>(e: &'e Expr, c: &Expr) -> Option<&'e Expr> {
    let (a, b) = product(e)?;
    if a == c {
        Some(b)
    } else if b == c {
        Some(a)
    } else {
        None
    }
}

/// Matches `avg(args) * x` (either order) and returns `(args, x)`.
fn avg_times(e: &Expr, which: Avg) -> Option<(&[Expr], &Expr)> {
    let (a, b) = product(e)?;
    match (a, b) {
        (Expr::Avg(w, args), x) | (x, Expr::Avg(w, args)) if *w == which => Some((args, x)),
        _ => None,
    }
}

/// Matches `c11 * c22 - c12^2` (or `c12 * c12`), products in either order.
fn is_determinant(den: &Expr, c11: &Expr, c12: &Expr, c22: &Expr) -> bool {
    let Expr::Sub(diag, off) = den else { return false };
    let diag_ok = times(diag, c11) == Some(c22) || times(diag, c22) == Some(c11);
    let off_ok = match &**off {
        Expr::Powi(x, 2) => **x == *c12,
        Expr::Mul(a, b) => **a == *c12 && **b == *c12,
        _ => false,
    };
    diag_ok && off_ok
}

fn match_ratio(num: &Expr, den: &Expr) -> Option<Expr> {
    let Expr::Add(p, q) = num else { return None };
    let (args21, x, args22, y) = match (avg_times(p, Avg::I21), avg_times(q, Avg::I22)) {
        (Some((a1, x)), Some((a2, y))) => (a1, x, a2, y),
        _ => {
            let (a1, x) = avg_times(q, Avg::I21)?;
            let (a2, y) = avg_times(p, Avg::I22)?;
            (a1, x, a2, y)
        }
    };
    if args21 != args22 {
        return None;
    }
    let (c11, c12, c22) = (&args21[0], &args21[1], &args21[2]);
    if !is_determinant(den, c11, c12, c22) {
        return None;
    }
    // x = c22 u - c12 v,  y = c11 v - c12 u
    let (Expr::Sub(x1, x2), Expr::Sub(y1, y2)) = (x, y) else {
        return None;
    };
    let u = times(x1, c22)?;
    let v = times(x2, c12)?;
    if times(y1, c11)? != v || times(y2, c12)? != u {
        return None;
    }
    let b = |e: &Expr| Box::new(e.clone());
    let diag = vec![c11.clone(), c11.clone(), c11.clone()];
    // (c12 / c11^2) * I22(c11,c11,c11) * u
    let aligned = Expr::Mul(
        Box::new(Expr::Mul(
            Box::new(Expr::Div(b(c12), Box::new(Expr::Powi(b(c11), 2)))),
            Box::new(Expr::Avg(Avg::I22, diag.clone())),
        )),
        b(u),
    );
    // (J2(c11,c11,c11) / c11) * (v - c12 * u / c11)
    let transverse = Expr::Mul(
        Box::new(Expr::Div(Box::new(Expr::Avg(Avg::J2, diag)), b(c11))),
        Box::new(Expr::Sub(
            b(v),
            Box::new(Expr::Div(Box::new(Expr::Mul(b(c12), b(u))), b(c11))),
        )),
    );
    Some(Expr::Add(Box::new(aligned), Box::new(transverse)))
}
