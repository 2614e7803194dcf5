//! The series themselves: sums over two expansions' coefficients, each taken only where its
//! bound on the terms it leaves out meets the tolerance.

use super::{Expansion, TOLERANCE};

/// sum_k r^k x_k y_k over the pairs given.
fn power_sum<'a>(pairs: impl Iterator<Item = (&'a f64, &'a f64)>, r: f64) -> f64 {
    let (mut sum, mut rk) = (0.0, 1.0);
    for (x, y) in pairs {
        sum += rk * x * y;
        rk *= r;
    }
    sum
}

/// Whether a series of `order` terms could meet the tolerance at correlation r for every pair
/// (a, b) of `pairs`, where `e1`, `e2` of a shorter order did not: each one's energy left out
/// is extrapolated from its last half of terms as falling geometrically at the rate it fell
/// over them, and the series' bound with those energies is held to the tolerance. A wrong
/// prediction only costs time (the quadrature takes what no series does); a margin of 1000
/// over the tolerance let GELU try 193 terms at 1234 covariances of a run where they failed,
/// against 178 without it, and gave up none of the 832 that converged but 4.
pub(super) fn promising(e1: &Expansion, e2: &Expansion, r: f64, order: usize, pairs: &[(usize, usize)]) -> bool {
    let rn = r.abs().powi(order as i32 + 1);
    if rn <= TOLERANCE {
        return true;
    }
    let predicted = |e: &Expansion, j: usize| {
        let n = e.order;
        let left = e.quick_tail[j];
        let last_half: f64 = e.coef[j][n / 2 + 1..=n].iter().map(|c| c * c).sum();
        let rate = (left / (left + last_half)).powf(1.0 / (n - n / 2) as f64);
        left * rate.powi((order - n) as i32)
    };
    pairs.iter().all(|&(a, b)| {
        let scale = (e1.energy[a] * e2.energy[b]).sqrt();
        rn * (predicted(e1, a) * predicted(e2, b)).sqrt() <= TOLERANCE * scale
    })
}

/// E[g^(a)(x1) g^(b)(x2)] as a series, if its bound on the terms left out meets the tolerance.
pub(super) fn series(e1: &Expansion, e2: &Expansion, r: f64, a: usize, b: usize) -> Option<f64> {
    let n = e1.order.min(e2.order);
    let rn = r.abs().powi(n as i32 + 1);
    let scale = (e1.energy[a] * e2.energy[b]).sqrt();
    // The energies left out are at most the whole energies: the bound is met without them,
    // or with the quick bounds, before the residuals are summed.
    let met = |t1: f64, t2: f64| rn * (t1 * t2).sqrt() <= TOLERANCE * scale;
    if !(rn <= TOLERANCE || met(e1.quick_tail[a], e2.quick_tail[b]) || met(e1.tail()[a], e2.tail()[b])) {
        return None;
    }
    Some(power_sum(e1.coef[a][..=n].iter().zip(&e2.coef[b][..=n]), r))
}

/// E[(x g^(a))(x1) g^(b)(x2)] as a series, x1 of the expansion `ex` and x2 of `e`: the
/// coefficients of x f(x) at x = s z are s (sqrt(n + 1) f_(n+1) + sqrt(n) f_(n-1)) (from
/// z He_n = He_(n+1) + n He_(n-1)), one fewer than f's. With it an I3 needs no derivative of g beyond g', which is what an activation
/// whose g' jumps has (Stein's lemma would need g'', with a Dirac part at each jump).
pub(super) fn series_x(ex: &Expansion, e: &Expansion, r: f64, a: usize, b: usize) -> Option<f64> {
    let f = &ex.coef[a];
    let n = ex.order.min(e.order);
    let weighted: Vec<f64> = (0..n)
        .map(|k| {
            let below = if k == 0 { 0.0 } else { (k as f64).sqrt() * f[k - 1] };
            ex.s * (((k + 1) as f64).sqrt() * f[k + 1] + below)
        })
        .collect();
    // The energies beyond the n terms: x f's from its energy less the kept squares (with a
    // margin for that difference's rounding over a few hundred terms), g^(b)'s from its tail
    // and its coefficients from n on.
    let x_energy = ex.x_energy[a];
    let x_tail = (x_energy - weighted.iter().map(|c| c * c).sum::<f64>()).max(0.0) + 1e-13 * x_energy;
    let tail = e.tail()[b] + e.coef[b][n..].iter().map(|c| c * c).sum::<f64>();
    let scale = (x_energy * e.energy[b]).sqrt();
    let bound = r.abs().powi(n as i32) * (x_tail * tail).sqrt();
    if bound.is_nan() || scale.is_nan() || bound > TOLERANCE * scale {
        return None;
    }
    Some(power_sum(weighted.iter().zip(&e.coef[b]), r))
}

/// s1 E[g''''(x1) g(x2)], the one average of a gradient beyond g''': the coefficients of g''''
/// are those of g''' shifted, sqrt(n + 1) coef3[n + 1] / s1, and s1 cancels.
pub(super) fn series_fourth(e1: &Expansion, e2: &Expansion, r: f64) -> Option<f64> {
    let n = e1.order.min(e2.order);
    // Left out: n' >= n, where |r|^n' sqrt(n' + 1) is largest at n' = n while it decreases.
    let ra = r.abs();
    if ra * ((n + 2) as f64 / (n + 1) as f64).sqrt() > 1.0 {
        return None;
    }
    let weight = ra.powi(n as i32) * ((n + 1) as f64).sqrt();
    let t1 = e1.tail()[3];
    let t2 = e2.tail()[0] + e2.coef[0][n] * e2.coef[0][n];
    let scale = (e1.energy[3] * e2.energy[0]).sqrt();
    // Written so that a NaN bound refuses the series.
    if weight * (t1 * t2).sqrt() > TOLERANCE * scale || scale.is_nan() || (t1 * t2).is_nan() {
        return None;
    }
    let (mut sum, mut rk) = (0.0, 1.0);
    for k in 0..n {
        sum += rk * ((k + 1) as f64).sqrt() * e1.coef[3][k + 1] * e2.coef[0][k];
        rk *= r;
    }
    Some(sum)
}
