//! Where an activation comes nearer a complex singularity than the quadrature's rules assume,
//! estimated once per activation from the decay of its Chebyshev coefficients on short
//! intervals (docs/theory.md section 5).
//!
//! The rules size their panels for a g whose nearest singularity is no nearer the real axis
//! than tanh's poles at +-i pi/2, over the point where g's argument changes sign (or which has
//! none). On an interval [c - h, c + h] the Chebyshev coefficients of g fall like rho^-k, where
//! rho is the parameter of the largest Bernstein ellipse about the interval inside which g is
//! analytic; its semi-minor axis h (rho - 1/rho) / 2 is the distance from c to the nearest
//! singularity when that lies above c. Scanning c across the range the averages integrate over
//! and keeping the local minima of that distance finds each near singularity: where it stands
//! (its real part) and how near it comes (its distance to the axis).

use std::f64::consts::{FRAC_PI_2, PI};

/// Half-width of the intervals: tanh's poles (at pi/2 = 3.1 h) leave rho = 6.4, so their
/// coefficients reach the floor within 16 terms, and a singularity at h / 2 still leaves
/// rho = 1.6, measurable over 32.
const HALF: f64 = 0.5;
/// Spacing of the intervals' centres: a singularity between two centres is seen from the
/// nearer at a distance of at most sqrt(y^2 + (STEP / 2)^2), which the safety factor covers
/// for y down to 0.1.
const STEP: f64 = 0.125;
/// The scan covers |x| <= RANGE: 8.5 standard deviations (the rules' range) at variances up
/// to 56.
const RANGE: f64 = 64.0;
/// Chebyshev points per interval, less one.
const ORDER: usize = 32;
/// An interval with no coefficient from this index on above the floor says nothing of
/// singularities (see `distance`).
const MIN_TERMS: usize = 6;
/// Coefficients below this fraction of g's size are left out: the averages are held to 1e-10,
/// and a part of g smaller than that cannot move them by more, however fast it varies (GELU's
/// x (1 - Phi(x)) at x = 6.5, 3e-10 of its size, varies on the Gaussian's scale 1/6.5).
const FLOOR: f64 = 1e-10;
/// The distance the rules assume, over the point where g's argument changes sign.
const ASSUMED: f64 = FRAC_PI_2;
/// A singularity is listed when its estimated distance is below this fraction of the assumed
/// one (tanh's, which the rules were checked on, estimates at 1.0 of it).
const LISTED_BELOW: f64 = 0.75;
/// A listed singularity is given this fraction of its estimated distance: the estimate is an
/// upper bound off the ellipse's axis (see `STEP`), and a branch point's coefficients carry an
/// algebraic factor (k^-3/2 for a square root's) that steepens their fall over 32 terms:
/// sqrt(x^2 + 0.01) estimates at 1.35 times its distance.
const SAFETY: f64 = 0.6;
/// At most this many singularities are listed (the nearest), each adding graded panels.
const MAX_LISTED: usize = 8;

/// g's singularities nearer the real axis than the rules assume: (real part, distance to the
/// real axis) in x, nearest first, with the safety factor already taken off the distance. Intervals
/// that hold a kink (where g' or g jumps, a singularity on the axis that the rules already
/// place a panel edge at) are skipped.
pub(crate) fn near_singularities(g: impl Fn(f64) -> f64, kinks: &[f64]) -> Vec<(f64, f64)> {
    let (nodes, cosines) = chebyshev_points(ORDER);
    let typical = typical_size(&g);
    let count = (2.0 * RANGE / STEP) as usize;
    let distances: Vec<Option<f64>> = (0..=count)
        .map(|i| {
            let c = -RANGE + i as f64 * STEP;
            let holds_kink = kinks.iter().any(|k| (k - c).abs() <= HALF * (1.0 + 1e-9));
            if holds_kink {
                return None;
            }
            let values: Vec<f64> = nodes.iter().map(|t| g(c + HALF * t)).collect();
            distance(&values, &cosines, typical)
        })
        .collect();
    let mut found: Vec<(f64, f64)> = Vec::new();
    for i in 0..=count {
        let Some(b) = distances[i] else { continue };
        // A minimum needs measured neighbours on both sides: where the part of g that varies
        // falls below the floor (an entire g's Gaussian tail), the distances shrink towards
        // the unmeasured side without any singularity there.
        let (Some(Some(left)), Some(Some(right))) =
            (i.checked_sub(1).map(|j| distances[j]), distances.get(i + 1).copied())
        else {
            continue;
        };
        let (lower_left, lower_right) = (left < b, right <= b);
        if !lower_left && !lower_right && b < LISTED_BELOW * ASSUMED {
            found.push((-RANGE + i as f64 * STEP, SAFETY * b));
        }
    }
    // One singularity seen from neighbouring centres gives several minima (the estimate wavers
    // by a few per cent): the nearest stands for all within twice its distance.
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut listed: Vec<(f64, f64)> = Vec::new();
    for (c, d) in found {
        if listed.len() < MAX_LISTED && listed.iter().all(|&(x, e)| (x - c).abs() > 2.0 * e.max(d)) {
            listed.push((c, d));
        }
    }
    listed
}

/// The distance from the interval's centre to g's nearest singularity, from g's values at the
/// Chebyshev points: the semi-minor axis of the Bernstein ellipse whose parameter is the rate
/// at which the coefficients fall. None where g is negligible or not finite on the interval.
fn distance(values: &[f64], cosines: &[Vec<f64>], typical: f64) -> Option<f64> {
    let local = values.iter().fold(0.0, |m: f64, v| m.max(v.abs()));
    if !local.is_finite() || local < FLOOR * typical || local == 0.0 {
        return None;
    }
    let coefficients = chebyshev(values, cosines, 0);
    let floor = FLOOR * local.max(typical);
    // The envelope: the largest coefficient from k on, so that the zeros of an even or odd g
    // do not read as decay.
    let mut envelope = vec![0.0; coefficients.len()];
    let mut largest: f64 = 0.0;
    for k in (0..coefficients.len()).rev() {
        largest = largest.max(coefficients[k].abs());
        envelope[k] = largest;
    }
    // The rate over the later half of the terms above the floor: an entire function that
    // varies fast (tanh's tail, e^-2x at x = 7) has coefficients that fall ever faster, and
    // their early terms would read as a near singularity. No term from k = MIN_TERMS on above
    // the floor: g is, to the averages' accuracy, a polynomial of degree below MIN_TERMS there,
    // which every panel integrates exactly.
    let last = envelope.iter().rposition(|&e| e > floor).unwrap_or(0);
    if last < MIN_TERMS {
        return None;
    }
    let first = last / 2;
    let mut rho = (envelope[first] / envelope[last]).powf(1.0 / (last - first) as f64);
    if last < ORDER {
        // Coefficients that reached the floor fall at least this fast from the first half on.
        rho = rho.max((envelope[first] / floor).powf(1.0 / (last + 1 - first) as f64));
    }
    Some(HALF * (rho - 1.0 / rho) / 2.0)
}

/// The points cos(pi j / n), j = 0..=n, and `cosines[k][j]` = cos(pi j k / n): what
/// `chebyshev` needs.
pub(crate) fn chebyshev_points(n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let nodes = (0..=n).map(|j| (PI * j as f64 / n as f64).cos()).collect();
    let cosines = (0..=n)
        .map(|k| (0..=n).map(|j| (PI * (j * k) as f64 / n as f64).cos()).collect())
        .collect();
    (nodes, cosines)
}

/// The size against which g's Chebyshev coefficients count as rounding: its largest value on
/// [-4, 4], so that a tail where g is itself negligible (GELU at x = -20, whose Gaussian factor
/// varies fast relative to its own tiny size) reads neither as a singularity nor as a g that
/// needs narrow panels: it cannot move the averages.
pub(crate) fn typical_size(g: impl Fn(f64) -> f64) -> f64 {
    (-32..=32)
        .map(|i| g(i as f64 / 8.0).abs())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// The Chebyshev coefficients from index `first` on of the polynomial through `values` at the
/// points cos(pi j / n), with `cosines[k][j]` = cos(pi j k / n).
pub(crate) fn chebyshev(values: &[f64], cosines: &[Vec<f64>], first: usize) -> Vec<f64> {
    let n = values.len() - 1;
    let ends = |j: usize| if j == 0 || j == n { 0.5 } else { 1.0 };
    cosines
        .iter()
        .enumerate()
        .skip(first)
        .map(|(k, row)| {
            let sum: f64 = values
                .iter()
                .zip(row)
                .enumerate()
                .map(|(j, (v, c))| ends(j) * v * c)
                .sum();
            2.0 / n as f64 * ends(k) * sum
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An activation by name, as the tests list them.
    type Named = (&'static str, fn(f64) -> f64);

    /// The listed singularities of `g` (no kinks).
    fn near(g: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        near_singularities(g, &[])
    }

    /// Poles and branch points nearer than tanh's are found where they stand (within two steps
    /// of the scan: the estimate from one side of a pole wavers) and given a distance no larger
    /// than their own (the rules must not be too coarse) and no smaller than a third of it.
    #[test]
    fn near_singularities_are_found_where_they_are() {
        let cases: [(Named, f64, f64); 5] = [
            (("1/(1 + 9x^2)", |x| 1.0 / (1.0 + 9.0 * x * x)), 0.0, 1.0 / 3.0),
            (("1/(1 + x^2)", |x| 1.0 / (1.0 + x * x)), 0.0, 1.0),
            (("1/(1 + (x - 3)^2)", |x| 1.0 / (1.0 + (x - 3.0).powi(2))), 3.0, 1.0),
            (("tanh(2x)", |x| (2.0 * x).tanh()), 0.0, FRAC_PI_2 / 2.0),
            (("sqrt(x^2 + 0.01)", |x| (x * x + 0.01).sqrt()), 0.0, 0.1),
        ];
        for ((name, g), at, distance) in cases {
            let found = near(g);
            let &(x, y) = found.first().unwrap_or_else(|| panic!("{name}: none found"));
            assert!((x - at).abs() <= 4.0 * STEP, "{name}: found at {x}");
            assert!(y <= distance && y >= distance / 3.0, "{name}: distance {y}");
        }
    }

    /// Activations whose singularities are no nearer than tanh's, or which have none, list none
    /// (and so keep the rules they had): tanh, sigmoid and softplus (poles and branch points at
    /// +-i pi), GELU and exp (entire, with Gaussian and exponential tails that vary fast where
    /// they are negligible), a cubic, sin, and ELU and tanh + step about their kinks.
    #[test]
    fn far_or_no_singularities_list_none() {
        let smooth: [Named; 7] = [
            ("tanh", f64::tanh),
            ("sigmoid", |x| 1.0 / (1.0 + (-x).exp())),
            ("softplus", |x| (1.0 + x.exp()).ln()),
            ("GELU", |x| x * 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))),
            ("exp", f64::exp),
            ("x^3", |x| x * x * x),
            ("sin", f64::sin),
        ];
        for (name, g) in smooth {
            assert_eq!(near(g), [], "{name}");
        }
        let elu = |x: f64| if x > 0.0 { x } else { x.exp() - 1.0 };
        assert_eq!(near_singularities(elu, &[0.0]), [], "ELU");
        let tanh_step = |x: f64| x.tanh() + if x > 0.3 { 0.5 } else { -0.5 };
        assert_eq!(near_singularities(tanh_step, &[0.3]), [], "tanh + step");
    }
}
