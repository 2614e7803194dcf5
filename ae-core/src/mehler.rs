//! Gaussian averages of a quadrature activation as Mehler series: the Hermite coefficients of
//! g, g', g'', g''' at a variance are computed once and kept, and a two-variable average is
//! then a sum over them (docs/theory.md section 5). The quadrature of `crate::quadrature`
//! takes the averages whose series would not reach 1e-13 of their scale within its terms.
//!
//! For (x1, x2) Gaussian with variances c11, c22 and correlation r (Mehler's formula),
//!
//!   E[f1(x1) f2(x2)] = sum_n r^n a_n b_n,  a_n = E[f1(s1 z) He_n(z)] / sqrt(n!),
//!
//! and likewise b_n for f2 at s2 = sqrt(c22). By Cauchy-Schwarz the terms beyond n = N sum to
//! at most |r|^(N+1) sqrt(A B), where A and B are the energies of f1 and f2 that the first N + 1
//! coefficients leave out: a bound computed, not assumed, so a series is taken only where it
//! is known to have converged. Every average of the equations reduces to such pairs of
//! g, g', g'', g''' by Stein's lemma (I3 = c12 E[g''(x1) g(x3)] + c23 E[g'(x1) g'(x3)]) and to
//! the coefficients' first entries (J2 = c12 E[g'(x2)]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::quadrature::{
    chol2, expect2_factored, feature_width, features, gauss_legendre, panel_rule, singular_features, widest_panel,
    Grading, QuadratureRule, Smooth,
};

/// The series' lengths, tried in turn: 33 terms serve small correlations at little cost, 97
/// terms correlations up to about 0.9 at the variances of the paper's runs, and 193 terms tanh's
/// correlations up to 0.95 there (the late phase of a K = 3 run), which otherwise took the
/// two-variable quadrature at about a hundred times the cost of a series.
const ORDERS: [usize; 3] = [32, 96, 192];

/// A series is taken when its bound on the terms left out is below this fraction of
/// sqrt(E[f1^2] E[f2^2]), the Cauchy-Schwarz bound of the average itself: 100 times below the
/// 1e-10 the averages are held to.
const TOLERANCE: f64 = 1e-12;

/// Expansions kept per thread before the cache is emptied (each holds a few tens of kB; a
/// right-hand side of K units asks for K variances, a wide K-generic one for up to 2K).
const CACHE_ENTRIES: usize = 512;

/// The rule the coefficients are computed with at `order`: 16 Gauss-Legendre nodes per panel,
/// panels graded towards the activation's features as in the quadrature, at most 12/sqrt(N+1)
/// wide so that each resolves He_N's oscillations (local wavenumber at most sqrt(N + 1/2);
/// 16 nodes integrate cos(kz) over a width h to rounding while kh < 15), over |z| <= 13, where
/// |He_n(z)| phi(z) / sqrt(n!) < 1e-18 for every n (it is at most ~exp(-z^2/4)).
fn rule(order: usize) -> QuadratureRule {
    QuadratureRule {
        panel_nodes: 16,
        max_panel: (12.0 / ((order + 1) as f64).sqrt()).min(3.0),
        first_panel: 0.5,
        z_max: 13.0,
        ..QuadratureRule::DEFAULT
    }
}

/// The Hermite coefficients of g^(j)(s z), j = 0..3, for one variance s^2.
pub struct Expansion {
    order: usize,
    s: f64,
    /// coef[j][n] = E[g^(j)(s z) He_n(z)] / sqrt(n!), n = 0..=order.
    coef: [Vec<f64>; 4],
    /// E[g^(j)(s z)^2].
    energy: [f64; 4],
    /// E[(x g^(j)(x))^2], x = s z, for j = 0, 1: the energies of x g and x g', whose
    /// coefficients follow from g's and g''s (`sums::series_x`).
    x_energy: [f64; 2],
    /// An upper bound on the energies the coefficients leave out, from the energy less the
    /// coefficients' squares (with a margin for that difference's rounding); a tabulated
    /// expansion's tails.
    quick_tail: [f64; 4],
    source: Source,
}

/// Where an expansion's tails and products at correlation 1 come from.
enum Source {
    /// The activation's values at the rule's nodes.
    Nodes {
        /// The energies the coefficients leave out, computed from the residuals when the
        /// quick bound is not enough.
        tail: Cell<Option<[f64; 4]>>,
        /// The recurrence's factors 1/sqrt(n + 1) and sqrt(n / (n + 1)).
        factors: Vec<(f64, f64)>,
        /// The rule's nodes in blocks of `LANES` (the last padded with weight 0), and
        /// g^(j)(s z) at each node.
        blocks: Vec<Block>,
    },
    /// A table's interpolant (`table`): the tails with the table's margin, and the products.
    Table { tail: [f64; 4], products: Products },
}

/// The nodes are taken `LANES` at a time: the Hermite recurrence at one node is a chain of
/// dependent multiplications, at eight independent nodes it fills the vector units (4x faster
/// than node by node).
const LANES: usize = 8;

struct Block {
    z: [f64; LANES],
    w: [f64; LANES],
    values: [[f64; LANES]; 4],
}

/// Calls `visit(n, p)` with p = He_n(z) / sqrt(n!) at a block's nodes, n = 0..=order, by the
/// three-term recurrence with `factors`.
#[inline(always)]
fn hermite(z: &[f64; LANES], factors: &[(f64, f64)], mut visit: impl FnMut(usize, &[f64; LANES])) {
    let (mut previous, mut current) = ([0.0; LANES], [1.0; LANES]);
    for (n, &(a, b)) in factors.iter().enumerate() {
        visit(n, &current);
        let next: [f64; LANES] = std::array::from_fn(|l| z[l] * current[l] * a - b * previous[l]);
        previous = current;
        current = next;
    }
}

/// Adds each block's weighted values times He_n / sqrt(n!) into `lanes[n][j]` (per-lane sums,
/// added up by the caller: every operation of the loop is lane by lane); returns the energies.
#[inline(always)]
fn project(blocks: &[Block], factors: &[(f64, f64)], lanes: &mut [[[f64; LANES]; 4]]) -> [f64; 4] {
    let mut energy = [0.0; 4];
    for b in blocks {
        let wv: [[f64; LANES]; 4] = std::array::from_fn(|j| std::array::from_fn(|l| b.w[l] * b.values[j][l]));
        for ((e, wv), v) in energy.iter_mut().zip(&wv).zip(&b.values) {
            *e += wv.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        }
        hermite(&b.z, factors, |n, p| {
            for (acc, wv) in lanes[n].iter_mut().zip(&wv) {
                for ((a, w), pl) in acc.iter_mut().zip(wv).zip(p) {
                    *a += w * pl;
                }
            }
        });
    }
    energy
}

/// The energies the coefficients `coef` leave out, from the residual at every node.
#[inline(always)]
fn residuals(blocks: &[Block], factors: &[(f64, f64)], coef: &[Vec<f64>; 4]) -> [f64; 4] {
    let mut t = [0.0; 4];
    for b in blocks {
        let mut fitted = [[0.0; LANES]; 4];
        hermite(&b.z, factors, |n, p| {
            for (lanes, coef) in fitted.iter_mut().zip(coef) {
                for (f, pl) in lanes.iter_mut().zip(p) {
                    *f += coef[n] * pl;
                }
            }
        });
        for ((t, values), fitted) in t.iter_mut().zip(&b.values).zip(&fitted) {
            for ((w, v), f) in b.w.iter().zip(values).zip(fitted) {
                *t += w * (v - f) * (v - f);
            }
        }
    }
    t
}

/// `project` and `residuals` compiled for 256-bit vectors where the processor has them (AVX:
/// twice the lanes of the baseline's SSE2, and room in registers for a block's weighted
/// values), else for the baseline. Without FMA, so that every operation rounds as in the
/// baseline code: the numbers do not depend on the processor.
macro_rules! dispatch_wide {
    ($name:ident, $wide:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx")]
                fn $wide($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx") {
                    // SAFETY: the processor was just found to support AVX.
                    return unsafe { $wide($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

dispatch_wide!(project_wide, project_avx, project, (blocks: &[Block], factors: &[(f64, f64)], lanes: &mut [[[f64; LANES]; 4]]) -> [f64; 4]);
dispatch_wide!(residuals_wide, residuals_avx, residuals, (blocks: &[Block], factors: &[(f64, f64)], coef: &[Vec<f64>; 4]) -> [f64; 4]);

fn recurrence_factors(order: usize) -> Vec<(f64, f64)> {
    (0..=order)
        .map(|n| {
            let n = n as f64;
            (1.0 / (n + 1.0).sqrt(), (n / (n + 1.0)).sqrt())
        })
        .collect()
}

impl Expansion {
    /// The coefficients of `g` at variance `c` (clamped at 0) up to `order`.
    pub fn new<S: Smooth + ?Sized>(g: &S, c: f64, order: usize) -> Expansion {
        Expansion::with_rule(g, c, order, rule(order))
    }

    fn with_rule<S: Smooth + ?Sized>(g: &S, c: f64, order: usize, rule: QuadratureRule) -> Expansion {
        let s = c.max(0.0).sqrt();
        let legendre = legendre(rule.panel_nodes);
        let mut centers = Vec::new();
        features(s, 0.0, g.kinks(), &mut centers);
        let mut singular = Vec::new();
        singular_features(g, s, 0.0, &mut singular);
        let (mut edges, mut nodes) = (Vec::new(), Vec::new());
        panel_rule(
            &rule,
            &legendre,
            &centers,
            Grading {
                d: feature_width(s),
                singular: &singular,
                widest: widest_panel(g, s),
            },
            &mut edges,
            &mut nodes,
        );
        let factors = recurrence_factors(order);
        let xs: Vec<f64> = nodes.iter().map(|&(z, _)| s * z).collect();
        let mut values = vec![[0.0; 4]; xs.len()];
        g.all_many(&xs, &mut values);
        let blocks: Vec<Block> = nodes
            .chunks(LANES)
            .zip(values.chunks(LANES))
            .map(|(chunk, values)| {
                let mut b = Block {
                    z: [0.0; LANES],
                    w: [0.0; LANES],
                    values: [[0.0; LANES]; 4],
                };
                for (l, (&(z, w), &v)) in chunk.iter().zip(values).enumerate() {
                    (b.z[l], b.w[l]) = (z, w);
                    for (column, value) in b.values.iter_mut().zip(v) {
                        column[l] = value;
                    }
                }
                b
            })
            .collect();
        let mut lanes = vec![[[0.0; LANES]; 4]; order + 1];
        let energy = project_wide(&blocks, &factors, &mut lanes);
        let x_energy = std::array::from_fn(|j| {
            let sum = |b: &Block| {
                (0..LANES)
                    .map(|l| b.w[l] * (b.z[l] * b.values[j][l]).powi(2))
                    .sum::<f64>()
            };
            s * s * blocks.iter().map(sum).sum::<f64>()
        });
        let coef: [Vec<f64>; 4] = std::array::from_fn(|j| lanes.iter().map(|n| n[j].iter().sum()).collect());
        let quick_tail = std::array::from_fn(|j| {
            let kept: f64 = coef[j].iter().map(|c| c * c).sum();
            (energy[j] - kept).max(0.0) + 1e-14 * energy[j]
        });
        Expansion {
            order,
            s,
            coef,
            energy,
            x_energy,
            quick_tail,
            source: Source::Nodes {
                tail: Cell::new(None),
                factors,
                blocks,
            },
        }
    }

    /// An expansion interpolated from a table (`table`), whose tails bound the energies left
    /// out with the table's margin.
    fn tabulated(
        order: usize,
        s: f64,
        coef: [Vec<f64>; 4],
        energy: [f64; 4],
        x_energy: [f64; 2],
        tail: [f64; 4],
        products: Products,
    ) -> Expansion {
        Expansion {
            order,
            s,
            coef,
            energy,
            x_energy,
            quick_tail: tail,
            source: Source::Table { tail, products },
        }
    }

    /// E[g^(j)(x)], x ~ N(0, s^2).
    pub fn mean(&self, j: usize) -> f64 {
        self.coef[j][0]
    }

    /// The energies beyond the coefficients: E[(g^(j)(s z) - sum_n coef[j][n] He_n(z) /
    /// sqrt(n!))^2], summed from the residual at each node (no cancellation against the
    /// total energy, so the bound stays sharp down to rounding).
    fn tail(&self) -> [f64; 4] {
        match &self.source {
            Source::Nodes { tail, factors, blocks } => {
                if let Some(t) = tail.get() {
                    return t;
                }
                let t = residuals_wide(blocks, factors, &self.coef);
                tail.set(Some(t));
                t
            }
            Source::Table { tail, .. } => *tail,
        }
    }

    /// E[g^(a)(x) g^(b)(x)]: the two-variable average at correlation 1.
    fn product(&self, a: usize, b: usize) -> f64 {
        match &self.source {
            Source::Nodes { blocks, .. } => blocks
                .iter()
                .map(|k| {
                    (0..LANES)
                        .map(|l| k.w[l] * k.values[a][l] * k.values[b][l])
                        .sum::<f64>()
                })
                .sum(),
            Source::Table { products, .. } => products[a][b],
        }
    }
}

/// Gauss-Legendre nodes and weights.
type Rule = Rc<(Vec<f64>, Vec<f64>)>;

/// Gauss-Legendre nodes, computed once per thread and size.
fn legendre(n: usize) -> Rule {
    thread_local! {
        static RULES: RefCell<HashMap<usize, Rule>> = RefCell::new(HashMap::new());
    }
    RULES.with(|r| {
        r.borrow_mut()
            .entry(n)
            .or_insert_with(|| Rc::new(gauss_legendre(n)))
            .clone()
    })
}

/// The caches' keys are bit patterns of numbers and ids: a multiplicative hash of each word
/// (SipHash's resistance to chosen keys is not needed here, and took 5% of a run).
#[derive(Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.write_u64(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        for b in words.remainder() {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

pub(crate) type Map<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<WordHasher>>;

/// The value kept under `key` in one of this thread's caches, or else `compute`'s, kept there.
pub(crate) fn remembered<K: std::hash::Hash + Eq, V: Clone>(
    cache: &'static std::thread::LocalKey<RefCell<Map<K, V>>>,
    key: K,
    compute: impl FnOnce() -> V,
) -> V {
    if let Some(v) = cache.with(|cache| cache.borrow().get(&key).cloned()) {
        return v;
    }
    let v = compute();
    keep(cache, key, v.clone());
    v
}

/// Keeps `value` under `key` in one of this thread's caches, which is emptied when it holds
/// `CACHE_ENTRIES` (a run's working set is far smaller; an emptied cache only costs recomputing).
pub(crate) fn keep<K: std::hash::Hash + Eq, V>(
    cache: &'static std::thread::LocalKey<RefCell<Map<K, V>>>,
    key: K,
    value: V,
) {
    cache.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, value);
    });
}

type Key = (u64, u64, usize);

/// E[g^(a)(x1) g^(b)(x2)] for a, b = 0..3.
type Products = [[f64; 4]; 4];

thread_local! {
    static CACHE: RefCell<Map<Key, Rc<Expansion>>> = RefCell::new(Map::default());
    static PRODUCTS: RefCell<Map<[u64; 4], Products>> = RefCell::new(Map::default());
}

/// Every product of g's derivatives at one covariance by one pass of the two-variable
/// quadrature, kept: where the series do not converge, the averages of one pair of units
/// (its I2, both I3 and their transposes, the gradients of I2) share the pass. None for a
/// degenerate covariance (the quadrature's one-variable path takes it).
fn products<S: Smooth + ?Sized>(g: &S, c11: f64, c12: f64, c22: f64) -> Option<Products> {
    let key = [g.cache_id(), c11.to_bits(), c12.to_bits(), c22.to_bits()];
    let swapped = [key[0], key[3], key[2], key[1]];
    let found = PRODUCTS.with(|p| {
        let p = p.borrow();
        let transpose = |m: &Products| std::array::from_fn(|a| std::array::from_fn(|b| m[b][a]));
        p.get(&key).copied().or_else(|| p.get(&swapped).map(transpose))
    });
    if found.is_some() {
        return found;
    }
    let (l11, l21, l22) = chol2(c11, c12, c22);
    if l22 == 0.0 {
        return None;
    }
    let outer = |z1: f64| g.all(l11 * z1);
    let (mut x2, mut values) = (Vec::new(), Vec::new());
    let inner_sums = |z1: f64, nodes: &[(f64, f64)]| {
        x2.clear();
        x2.extend(nodes.iter().map(|&(z2, _)| l21 * z1 + l22 * z2));
        values.resize(x2.len(), [0.0; 4]);
        g.all_many(&x2, &mut values);
        let mut sums = [0.0; 4];
        for (&(_, w2), v) in nodes.iter().zip(&values) {
            for (a, v) in sums.iter_mut().zip(v) {
                *a += w2 * v;
            }
        }
        sums
    };
    let m: Products = expect2_factored(l11, l21, l22, g, outer, inner_sums);
    keep(&PRODUCTS, key, m);
    Some(m)
}

/// Empties this thread's caches of expansions, products and the I2 of activations that jump,
/// so that the averages that follow are computed as in a new process (benchmarks time cold
/// runs with it).
pub fn clear_caches() {
    CACHE.with(|cache| cache.borrow_mut().clear());
    PRODUCTS.with(|products| products.borrow_mut().clear());
    table::clear();
    crate::jumps::clear_cache();
}

/// The expansion of `g` at variance `c` up to `order`, from this thread's cache or computed.
fn expansion<S: Smooth + ?Sized>(g: &S, c: f64, order: usize) -> Rc<Expansion> {
    let key = (g.cache_id(), c.to_bits(), order);
    remembered(&CACHE, key, || {
        Rc::new(table::expansion(g, c, order).unwrap_or_else(|| Expansion::new(g, c, order)))
    })
}

/// A covariance the series take: finite, variances non-negative, correlation at most 1.
fn correlation(c11: f64, c12: f64, c22: f64) -> Option<f64> {
    if !(c11 >= 0.0 && c22 >= 0.0 && c12.is_finite() && c11.is_finite() && c22.is_finite()) {
        return None;
    }
    if c11 == 0.0 || c22 == 0.0 {
        return (c12 == 0.0).then_some(0.0);
    }
    let r = c12 / (c11 * c22).sqrt();
    (r.abs() <= 1.0 + 1e-12).then_some(r.clamp(-1.0, 1.0))
}

/// Whether (c11, c12, c22) is the covariance of one variable with itself (to rounding).
fn same_variable(c11: f64, c22: f64, r: f64) -> bool {
    c11.to_bits() == c22.to_bits() && 1.0 - r <= 1e-13
}

mod averages;
mod sums;
mod table;
pub use averages::Series;
use sums::{series, series_fourth, series_x};

#[cfg(test)]
mod tests;
