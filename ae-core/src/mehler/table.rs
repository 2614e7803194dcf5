//! Expansions interpolated in the standard deviation from tables built once per activation: an
//! ODE run asks for a new variance at almost every evaluation, and computing its expansion from
//! the activation's values at a few hundred nodes was most of a run's time (docs/theory.md
//! section 5).
//!
//! Every number an expansion holds (the coefficients, energies, tails, the products at
//! correlation 1 and the energies of x g and x g') is an analytic function of s = sqrt(c) for
//! s > 0. The tables hold them at the Chebyshev points of panels of fixed width in ln s, and an
//! expansion is their barycentric interpolant. A panel is built from direct expansions and checked against more of them
//! between its points; a panel that misses the check is not kept, and its variances are
//! expanded directly. What a variance gives depends only on the activation, the order and its
//! panel, never on which variances were asked for before: outputs stay the same bit for bit
//! whatever the order of the runs in a thread.

use std::cell::RefCell;
use std::rc::Rc;

use super::{Expansion, Map, Products};
use crate::quadrature::Smooth;

/// Chebyshev points per panel (both ends included).
const POINTS: usize = 17;

/// A panel's width in ln s: half an octave of the standard deviation. Where a panel misses its
/// check, its halves are tried in its place, down to `LEVELS` halvings (a kink that moves
/// through the nodes quickly as s shrinks, as at x = 0.5 in x + |x - 1/2|^3 / 6, needs them).
const WIDTH: f64 = std::f64::consts::LN_2 / 2.0;

/// How many times a panel may be halved.
const LEVELS: u32 = 2;

/// Standard deviations outside this range are expanded directly.
const RANGE: (f64, f64) = (1e-3, 1e3);

/// A panel is kept when its interpolant meets the direct expansions between its points within
/// this fraction of each quantity's scale (a coefficient's sqrt(E[g^(j)^2]), an energy's
/// E[g^(j)^2]): ten times below the series' own tolerance, so that the coefficients' errors
/// add at most about sqrt(order) 1e-13 of the scale to an average.
const TOLERANCE: f64 = 1e-13;

/// The tails' margin is this many times the largest error of their interpolant between its
/// points (the tails are where the series' bound of their own error comes from).
const TAIL_MARGIN: f64 = 10.0;

/// Panels kept per thread before the tables are emptied (emptying changes no value, only what is
/// built again). A panel of 193 terms holds 17 x 798 numbers, 109 kB, so this caps a thread's
/// tables near 28 MB; a K = 3 run of the paper's range builds 15-25 panels.
const PANELS: usize = 256;

/// One panel's values: `POINTS` rows of `width(order)` numbers in the order of `flatten`.
struct Panel {
    rows: Vec<f64>,
    /// Added to the interpolated tails, for each j.
    tail_margin: [f64; 4],
}

/// (activation, order, halvings, panel index) -> the panel, or None where it failed its check.
type Key = (u64, usize, u32, i64);

thread_local! {
    static TABLES: RefCell<Map<Key, Option<Rc<Panel>>>> = RefCell::new(Map::default());
}

/// Empties this thread's tables.
pub(super) fn clear() {
    TABLES.with(|t| t.borrow_mut().clear());
}

/// The numbers of one expansion in one row: coef[j][0..=order] for j = 0..3, then, from
/// `scalars(order)` on, the four energies, the four tails, the sixteen products (a, b) at
/// `PRODUCTS + 4 a + b` and the two energies of x g and x g'.
fn width(order: usize) -> usize {
    scalars(order) + X_ENERGY + 2
}

/// Where a row's numbers after the coefficients start.
fn scalars(order: usize) -> usize {
    4 * (order + 1)
}

/// Offsets from `scalars(order)`.
const ENERGY: usize = 0;
const TAIL: usize = 4;
const PRODUCTS: usize = 8;
const X_ENERGY: usize = 24;

fn flatten(e: &Expansion) -> Vec<f64> {
    let mut row = Vec::with_capacity(width(e.order));
    for c in &e.coef {
        row.extend_from_slice(c);
    }
    row.extend_from_slice(&e.energy);
    row.extend_from_slice(&e.tail());
    for a in 0..4 {
        for b in 0..4 {
            row.push(e.product(a, b));
        }
    }
    row.extend_from_slice(&e.x_energy);
    row
}

fn unflatten(row: &[f64], order: usize, s: f64, tail_margin: &[f64; 4]) -> Expansion {
    let n = order + 1;
    let coef: [Vec<f64>; 4] = std::array::from_fn(|j| row[j * n..(j + 1) * n].to_vec());
    let at = scalars(order);
    let energy: [f64; 4] = std::array::from_fn(|j| row[at + ENERGY + j]);
    let tail: [f64; 4] = std::array::from_fn(|j| row[at + TAIL + j].max(0.0) + tail_margin[j]);
    let products: Products = std::array::from_fn(|a| std::array::from_fn(|b| row[at + PRODUCTS + 4 * a + b]));
    let x_energy = [row[at + X_ENERGY], row[at + X_ENERGY + 1]];
    Expansion::tabulated(order, s, coef, energy, x_energy, tail, products)
}

/// A panel: its number of halvings and its index among the panels of that width.
#[derive(Clone, Copy)]
struct Place {
    level: u32,
    index: i64,
}

/// The width in ln s of a panel halved `level` times.
fn level_width(level: u32) -> f64 {
    WIDTH / f64::from(1u32 << level)
}

impl Place {
    /// The panel of `level` that holds ln s, and where in it: x in [-1, 1].
    fn locate(s: f64, level: u32) -> (Place, f64) {
        let u = s.ln() / level_width(level);
        let index = u.floor();
        (
            Place {
                level,
                index: index as i64,
            },
            2.0 * (u - index) - 1.0,
        )
    }

    /// The standard deviation at x in this panel.
    fn deviation(self, x: f64) -> f64 {
        ((self.index as f64 + (x + 1.0) / 2.0) * level_width(self.level)).exp()
    }
}

/// cos(t pi / (POINTS - 1)): the Chebyshev points at t = 0, 1, ..., POINTS - 1 (x = 1 first),
/// and the checks between them at t = 1/2, 3/2, ...
fn chebyshev(t: f64) -> f64 {
    (t * std::f64::consts::PI / (POINTS - 1) as f64).cos()
}

/// The Chebyshev points, computed once (every interpolation needs all of them).
fn chebyshev_points() -> &'static [f64; POINTS] {
    static POINTS_X: std::sync::OnceLock<[f64; POINTS]> = std::sync::OnceLock::new();
    POINTS_X.get_or_init(|| std::array::from_fn(|j| chebyshev(j as f64)))
}

/// The barycentric interpolant of the rows at x (Chebyshev points of the second kind: weights
/// (-1)^j, halved at both ends), into `out`.
fn interpolate(rows: &[f64], x: f64, out: &mut [f64]) {
    let w = out.len();
    let points = chebyshev_points();
    if let Some(j) = points.iter().position(|&p| p == x) {
        out.copy_from_slice(&rows[j * w..(j + 1) * w]);
        return;
    }
    let mut lambda = [0.0; POINTS];
    for (j, (l, p)) in lambda.iter_mut().zip(points).enumerate() {
        let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
        let end = if j == 0 || j == POINTS - 1 { 0.5 } else { 1.0 };
        *l = sign * end / (x - p);
    }
    let total: f64 = lambda.iter().sum();
    out.fill(0.0);
    for (row, l) in rows.chunks_exact(w).zip(lambda) {
        let l = l / total;
        for (o, v) in out.iter_mut().zip(row) {
            *o += l * v;
        }
    }
}

/// Builds panel `index` and checks it at the points halfway (in angle) between its own; None
/// if a value is not finite or the interpolant misses a direct expansion.
fn build<S: Smooth + ?Sized>(g: &S, order: usize, place: Place) -> Option<Panel> {
    let w = width(order);
    let mut rows = Vec::with_capacity(POINTS * w);
    for &p in chebyshev_points() {
        let s = place.deviation(p);
        rows.extend(flatten(&Expansion::new(g, s * s, order)));
    }
    if !rows.iter().all(|v| v.is_finite()) {
        return None;
    }
    let (n, at) = (order + 1, scalars(order));
    // Each quantity's scale: the largest energy of its function over the panel's points.
    let largest = |k: usize| rows.chunks_exact(w).map(|r| r[k]).fold(0.0, f64::max);
    let scale: [f64; 4] = std::array::from_fn(|j| largest(at + ENERGY + j));
    let x_scale: [f64; 2] = std::array::from_fn(|j| largest(at + X_ENERGY + j));
    let mut tail_error = [0.0f64; 4];
    let mut interpolated = vec![0.0; w];
    for j in 0..POINTS - 1 {
        let x = chebyshev(j as f64 + 0.5);
        let s = place.deviation(x);
        let direct = flatten(&Expansion::new(g, s * s, order));
        interpolate(&rows, x, &mut interpolated);
        let error = |k: usize| (interpolated[k] - direct[k]).abs();
        for (d, sd) in scale.iter().enumerate() {
            let coefficients = (d * n..(d + 1) * n).all(|k| error(k) <= TOLERANCE * sd.sqrt());
            let products = (0..4).all(|b| error(at + PRODUCTS + 4 * d + b) <= TOLERANCE * (sd * scale[b]).sqrt());
            if !(coefficients && products && error(at + ENERGY + d) <= TOLERANCE * sd) {
                return None;
            }
            if d < 2 && error(at + X_ENERGY + d) > TOLERANCE * x_scale[d] {
                return None;
            }
            tail_error[d] = tail_error[d].max(error(at + TAIL + d));
        }
    }
    Some(Panel {
        rows,
        tail_margin: tail_error.map(|e| TAIL_MARGIN * e),
    })
}

/// The expansion of `g` at variance `c` from its table, or None where the variance is outside
/// the tables' range or its panel failed its check.
pub(super) fn expansion<S: Smooth + ?Sized>(g: &S, c: f64, order: usize) -> Option<Expansion> {
    let s = c.sqrt();
    if !(RANGE.0..=RANGE.1).contains(&s) {
        return None;
    }
    (0..=LEVELS).find_map(|level| {
        let (place, x) = Place::locate(s, level);
        let panel = panel(g, order, place)?;
        let mut row = vec![0.0; width(order)];
        interpolate(&panel.rows, x, &mut row);
        Some(unflatten(&row, order, s, &panel.tail_margin))
    })
}

/// The panel at `place` from this thread's tables, or built; None where it failed its check.
fn panel<S: Smooth + ?Sized>(g: &S, order: usize, place: Place) -> Option<Rc<Panel>> {
    let key = (g.cache_id(), order, place.level, place.index);
    if let Some(panel) = TABLES.with(|t| t.borrow().get(&key).cloned()) {
        return panel;
    }
    let panel = build(g, order, place).map(Rc::new);
    TABLES.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() >= PANELS {
            t.clear();
        }
        t.insert(key, panel.clone());
    });
    panel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::averages::TanhFn;
    use crate::mehler::tests::Static;

    /// An ELU, whose g'' jumps at 0.
    struct Elu;
    impl Smooth for Elu {
        fn g(&self, x: f64) -> f64 {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        fn dg(&self, x: f64) -> f64 {
            if x > 0.0 {
                1.0
            } else {
                x.exp()
            }
        }
        fn d2g(&self, x: f64) -> f64 {
            if x > 0.0 {
                0.0
            } else {
                x.exp()
            }
        }
        fn d3g(&self, x: f64) -> f64 {
            self.d2g(x)
        }
        fn kinks(&self) -> &[f64] {
            &[0.0]
        }
        fn continuous_derivatives(&self) -> usize {
            2
        }
        fn cache_id(&self) -> u64 {
            8
        }
    }

    /// x + |x - 1/2|^3 / 6: g''' jumps at 1/2, a kink that moves through the nodes (at z = 1/(2s))
    /// quickly as s shrinks, where half-octave panels miss their check and their halves serve.
    struct MovingKink;
    impl Smooth for MovingKink {
        fn g(&self, x: f64) -> f64 {
            x + (x - 0.5).abs().powi(3) / 6.0
        }
        fn dg(&self, x: f64) -> f64 {
            1.0 + (x - 0.5) * (x - 0.5).abs() / 2.0
        }
        fn d2g(&self, x: f64) -> f64 {
            (x - 0.5).abs()
        }
        fn d3g(&self, x: f64) -> f64 {
            (x - 0.5).signum()
        }
        fn kinks(&self) -> &[f64] {
            &[0.5]
        }
        fn continuous_derivatives(&self) -> usize {
            3
        }
        fn cache_id(&self) -> u64 {
            9
        }
    }

    /// Standard deviations from 0.05 to 20, none at a panel's points or its checks.
    fn deviations() -> impl Iterator<Item = f64> {
        (0..12).map(|i| 0.05 * (400f64.ln() * (i as f64 + 0.37) / 12.0).exp())
    }

    /// At standard deviations between the points of the panels and between their checks, the
    /// tables serve `g` at every order and meet the direct expansions: coefficients, energies
    /// and products within 1e-12 of their scale (ten times the check's tolerance: between the
    /// checks an analytic function's interpolation error varies by small factors), and the
    /// tails are still bounds of the direct ones.
    fn meets_direct_expansions(name: &str, g: &dyn Smooth) {
        for order in crate::mehler::ORDERS {
            for s in deviations() {
                let at = format!("{name}, order {order}, s = {s}");
                let t = expansion(g, s * s, order).unwrap_or_else(|| panic!("{at}: not served"));
                let d = Expansion::new(g, s * s, order);
                for j in 0..4 {
                    let scale = d.energy[j].sqrt();
                    for (n, (a, b)) in t.coef[j].iter().zip(&d.coef[j]).enumerate() {
                        assert!((a - b).abs() <= 1e-12 * scale, "{at}: coef[{j}][{n}] {a} {b}");
                    }
                    assert!(
                        (t.energy[j] - d.energy[j]).abs() <= 1e-12 * d.energy[j],
                        "{at}: energy {j}"
                    );
                    if j < 2 {
                        let (a, b) = (t.x_energy[j], d.x_energy[j]);
                        assert!((a - b).abs() <= 1e-12 * b, "{at}: energy of x g^({j}): {a} {b}");
                    }
                    assert!(
                        t.tail()[j] >= d.tail()[j],
                        "{at}: tail {j} {:e} < {:e}",
                        t.tail()[j],
                        d.tail()[j]
                    );
                    for k in 0..4 {
                        let scale = (d.energy[j] * d.energy[k]).sqrt();
                        let (a, b) = (t.product(j, k), d.product(j, k));
                        assert!((a - b).abs() <= 1e-12 * scale, "{at}: product {j} {k}: {a} {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn tables_of_a_smooth_activation_meet_direct_expansions() {
        meets_direct_expansions("tanh", &Static::<TanhFn>(std::marker::PhantomData));
    }

    #[test]
    fn tables_of_an_activation_whose_second_derivative_jumps_meet_direct_expansions() {
        meets_direct_expansions("elu", &Elu);
    }

    #[test]
    fn tables_of_a_kink_that_moves_with_the_variance_meet_direct_expansions() {
        meets_direct_expansions("moving kink", &MovingKink);
    }

    /// The moving kink's half-octave panels below s = 0.35 miss their check at 97 terms, and
    /// their halves are what serves there.
    #[test]
    fn a_panel_that_misses_its_check_gives_way_to_its_halves() {
        let (place, _) = Place::locate(0.3, 0);
        assert!(build(&MovingKink, 96, place).is_none());
        let (half, _) = Place::locate(0.3, 1);
        assert!(build(&MovingKink, 96, half).is_some());
        assert!(expansion(&MovingKink, 0.09, 96).is_some());
    }

    /// What a variance gives does not depend on what was asked before: the same bits from
    /// empty tables and from tables that other variances, in its panel and others, filled.
    #[test]
    fn a_variance_gives_the_same_bits_whatever_came_before() {
        let tanh = Static::<TanhFn>(std::marker::PhantomData);
        let bits = |e: &Expansion| e.coef.iter().flatten().map(|c| c.to_bits()).collect::<Vec<_>>();
        clear();
        let first = bits(&expansion(&tanh, 1.3, 32).unwrap());
        clear();
        for c in [0.2, 1.25, 1.31, 7.0] {
            expansion(&tanh, c, 32).unwrap();
        }
        assert_eq!(first, bits(&expansion(&tanh, 1.3, 32).unwrap()));
    }
}
