//! Activations as every part of the program sees them: a built-in one (closed forms, or tanh's
//! converged quadrature), or one of the user's, declared in an equation file
//! (`activation g(x) = ...`), evaluated by compiled code and averaged by Mehler series and
//! quadrature (or, when piecewise linear, by closed forms).

use std::hash::{Hash, Hasher};

use ae_dsl::ir::Avg;

use crate::averages::{ActivationKind, Evaluate};
use crate::jumps::{Continuous, Jumps};
use crate::mehler::Series;
use crate::piecewise::PiecewiseLinear;
use crate::quadrature::{Quad, Smooth};
use crate::ramp::Ramp;
use crate::resolution::widest_panel;
use crate::singularities::near_singularities;

/// g and its derivatives, evaluated by code compiled from a user's activation.
pub trait ScalarFunction: Send + Sync {
    fn g(&self, x: f64) -> f64;
    /// (g, g') at x: what a step of the simulator needs.
    fn g_dg(&self, x: f64) -> (f64, f64);
    /// g, g', g'', g''' at x: what the quadrature of the averages and their gradients needs.
    fn derivatives(&self, x: f64) -> [f64; 4];
    /// `derivatives` at each of `xs`, into `out` (as long as `xs`): one call for the nodes of
    /// a rule, where the compiled code writes each result in place.
    fn derivatives_many(&self, xs: &[f64], out: &mut [[f64; 4]]) {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = self.derivatives(x);
        }
    }
}

/// Average `avg` at arguments `c` through `engine` (`Quad` or `Series`, which have the same
/// methods but no common trait: both are used by value, monomorphised).
macro_rules! average {
    ($engine:expr, $avg:expr, $c:expr) => {{
        let (q, c) = ($engine, $c);
        match $avg {
            Avg::I2 => q.i2(c[0], c[1], c[2]),
            Avg::J2 => q.j2(c[0], c[1], c[2]),
            Avg::I21 => q.i21(c[0], c[1], c[2]),
            Avg::I22 => q.i22(c[0], c[1], c[2]),
            Avg::I3 => q.i3(c[0], c[1], c[2], c[3], c[4], c[5]),
        }
    }};
}

/// The gradient of average `avg` through `engine`, as [`average!`].
macro_rules! gradient {
    ($engine:expr, $avg:expr, $c:expr) => {{
        let (q, c) = ($engine, $c);
        match $avg {
            Avg::I2 => q.i2_grad(c[0], c[1], c[2]).to_vec(),
            Avg::J2 => q.j2_grad(c[0], c[1], c[2]).to_vec(),
            Avg::I21 => q.i21_grad(c[0], c[1], c[2]).to_vec(),
            Avg::I22 => q.i22_grad(c[0], c[1], c[2]).to_vec(),
            Avg::I3 => q.i3_grad(c[0], c[1], c[2], c[3], c[4], c[5]).to_vec(),
        }
    }};
}

/// An activation of the user's: its name, its compiled code, and where g' jumps.
pub struct UserActivation {
    pub name: String,
    /// Identifies the activation (its file's text and its name): equal activations, equal ids.
    pub id: u64,
    function: Box<dyn ScalarFunction>,
    kinks: Vec<f64>,
    /// How many of g, g', g'', g''' are continuous at every kink (see
    /// [`Smooth::continuous_derivatives`]), measured from the compiled derivatives.
    continuous_derivatives: usize,
    /// Set when g is positively homogeneous: then its averages are ReLU's closed forms.
    ramp: Option<Ramp>,
    /// Set when g is continuous and piecewise linear otherwise: then its averages are sums of
    /// bivariate normal probabilities.
    piecewise: Option<PiecewiseLinear>,
    /// Where g itself jumps, and [`Smooth::continuous_derivatives`] of g less its jumps.
    jumps: Jumps,
    continuous_without_jumps: usize,
    /// Where g comes nearer a complex singularity than the rules assume (see
    /// [`Smooth::singularities`]), estimated once here.
    singularities: Vec<(f64, f64)>,
    /// The widest panel g allows, in x ([`Smooth::widest_panel`]), estimated once here.
    widest_panel: f64,
}

impl UserActivation {
    /// `kinks`: the points where g' may jump (the zeros of `abs`'s arguments), any order.
    pub fn new(name: &str, id: u64, function: Box<dyn ScalarFunction>, mut kinks: Vec<f64>) -> UserActivation {
        kinks.sort_by(f64::total_cmp);
        kinks.dedup();
        let derivatives = |x: f64| function.derivatives(x);
        let jumps = jumps(derivatives, &kinks);
        let continuous_without_jumps = continuous_derivatives(
            |x: f64| {
                let mut all = function.derivatives(x);
                all[0] -= jumps.value(x);
                all
            },
            &kinks,
        );
        let continuous_derivatives = continuous_derivatives(derivatives, &kinks);
        let ramp = Ramp::of(|x| function.g(x));
        let piecewise = match ramp {
            Some(_) => None,
            None => PiecewiseLinear::of(|x| function.g(x), &kinks),
        };
        // Linear between kinks, a ramp or a piecewise-linear g has no singularity off the axis,
        // and any panel between its kinks integrates it exactly.
        let (singularities, widest_panel) = match (ramp, &piecewise) {
            (None, None) => {
                let singularities = near_singularities(|x| function.g(x), &kinks);
                let widest = widest_panel(|x| function.g(x), &kinks, &singularities);
                (singularities, widest)
            }
            _ => (Vec::new(), f64::INFINITY),
        };
        UserActivation {
            name: name.to_string(),
            id,
            function,
            kinks,
            continuous_derivatives,
            ramp,
            piecewise,
            jumps,
            continuous_without_jumps,
            singularities,
            widest_panel,
        }
    }

    /// g less its jumps, a continuous function with g's derivatives between them.
    fn without_jumps(&self) -> Continuous<'_, Self> {
        Continuous {
            g: self,
            jumps: &self.jumps,
            continuous_derivatives: self.continuous_without_jumps,
            // Its own expansions and tables, apart from g's.
            id: self.id ^ 0x6a75_6d70_7320_6f66,
        }
    }

    /// Whether the averages' gradients are exact: by Price's theorem they are averages of g''
    /// and g''', which have Dirac parts at a kink where g' or g'' jumps that the quadrature
    /// does not see; such an activation gets finite-difference Jacobians instead, unless it is
    /// piecewise linear (a ramp or not), whose gradients are closed forms.
    pub fn has_exact_gradients(&self) -> bool {
        self.continuous_derivatives >= 3 || self.ramp.is_some() || self.piecewise.is_some()
    }

    pub fn kinks(&self) -> &[f64] {
        &self.kinks
    }

    /// Average `avg` at covariance entries `c`: a ramp's or a piecewise-linear function's
    /// closed form, or by Mehler series where they converge (and the quadrature elsewhere,
    /// such as a piecewise-linear function's zero variances).
    pub fn average(&self, avg: Avg, c: &[f64]) -> f64 {
        if let Some(ramp) = self.ramp {
            return ramp.average(avg, c);
        }
        if !self.jumps.is_empty() {
            // Where g jumps, I2, I3 and J2 split off its jumps (and `piecewise`, for continuous
            // functions only, is None). I21 and I22 hold only g', which is h' pointwise.
            let h = self.without_jumps();
            let split = match (avg, c) {
                (Avg::I2, &[c11, c12, c22]) => self.jumps.i2(&h, c11, c12, c22),
                (Avg::J2, &[c11, c12, c22]) => self.jumps.j2(&h, c11, c12, c22),
                (Avg::I21, &[c11, c12, c22]) => Some(Series(&h).i21(c11, c12, c22)),
                (Avg::I22, &[c11, c12, c22]) => Some(Series(&h).i22(c11, c12, c22)),
                (Avg::I3, &[c11, c12, c13, c22, c23, c33]) => self.jumps.i3(&h, [c11, c12, c13, c22, c23, c33]),
                _ => None,
            };
            if let Some(v) = split {
                return v;
            }
        }
        self.piecewise
            .as_ref()
            .and_then(|p| p.average(avg, c))
            .unwrap_or_else(|| average!(Series(self), avg, c))
    }

    /// The gradient of average `avg`, as [`UserActivation::average`] computes it.
    pub fn gradient(&self, avg: Avg, c: &[f64]) -> Vec<f64> {
        if let Some(ramp) = self.ramp {
            return ramp.gradient(avg, c);
        }
        self.piecewise
            .as_ref()
            .and_then(|p| p.gradient(avg, c))
            .unwrap_or_else(|| gradient!(Series(self), avg, c))
    }

    /// Average `avg` by quadrature alone (the series' oracle).
    pub fn average_by_quadrature(&self, avg: Avg, c: &[f64]) -> f64 {
        average!(Quad(self), avg, c)
    }

    /// The gradient of average `avg` by quadrature alone.
    pub fn gradient_by_quadrature(&self, avg: Avg, c: &[f64]) -> Vec<f64> {
        gradient!(Quad(self), avg, c)
    }
}

impl Smooth for UserActivation {
    fn g(&self, x: f64) -> f64 {
        self.function.g(x)
    }
    fn dg(&self, x: f64) -> f64 {
        self.function.g_dg(x).1
    }
    fn d2g(&self, x: f64) -> f64 {
        self.function.derivatives(x)[2]
    }
    fn d3g(&self, x: f64) -> f64 {
        self.function.derivatives(x)[3]
    }
    fn kinks(&self) -> &[f64] {
        &self.kinks
    }
    fn continuous_derivatives(&self) -> usize {
        self.continuous_derivatives
    }
    fn singularities(&self) -> &[(f64, f64)] {
        &self.singularities
    }
    fn widest_panel(&self) -> f64 {
        self.widest_panel
    }
    fn all(&self, x: f64) -> [f64; 4] {
        self.function.derivatives(x)
    }
    fn all_many(&self, xs: &[f64], out: &mut [[f64; 4]]) {
        self.function.derivatives_many(xs, out)
    }
    fn cache_id(&self) -> u64 {
        self.id
    }
}

/// How many of g, g', g'', g''' are continuous at every one of `kinks`: a derivative jumps at
/// k where its one-sided limits differ by more than 1e-10 of their size (a smaller jump would
/// move an average by less than the 1e-10 they are held to). Each limit is extrapolated from
/// the values at h, 2h and 3h on its side, `3 f(h) - 3 f(2h) + f(3h)`, whose error is
/// `h³ f'''` (1e-12 at h = 1e-4 for a derivative that varies on scale 1): a steeper one is
/// taken for a jump, which only sends its averages to the quadrature.
fn continuous_derivatives(derivatives: impl Fn(f64) -> [f64; 4], kinks: &[f64]) -> usize {
    kinks
        .iter()
        .map(|&k| {
            let (left, right) = (one_sided(&derivatives, k, -1.0), one_sided(&derivatives, k, 1.0));
            (0..4).find(|&j| jumps_between(left[j], right[j])).unwrap_or(4)
        })
        .min()
        .unwrap_or(4)
}

/// Where g itself jumps among `kinks`, and by how much, by the limits of
/// `continuous_derivatives`.
fn jumps(derivatives: impl Fn(f64) -> [f64; 4], kinks: &[f64]) -> Jumps {
    Jumps(
        kinks
            .iter()
            .filter_map(|&k| {
                let (left, right) = (one_sided(&derivatives, k, -1.0)[0], one_sided(&derivatives, k, 1.0)[0]);
                jumps_between(left, right).then_some((k, right - left))
            })
            .collect(),
    )
}

/// g, g', g'', g''' extrapolated to `k` from the side `side` (+-1).
fn one_sided(derivatives: &impl Fn(f64) -> [f64; 4], k: f64, side: f64) -> [f64; 4] {
    let h = 1e-4 * k.abs().max(1.0);
    let at = |m: f64| derivatives(k + side * m * h);
    let (near, middle, far) = (at(1.0), at(2.0), at(3.0));
    std::array::from_fn(|j| 3.0 * near[j] - 3.0 * middle[j] + far[j])
}

fn jumps_between(left: f64, right: f64) -> bool {
    (right - left).abs() > 1e-10 * left.abs().max(right.abs()).max(1.0)
}

impl std::fmt::Debug for UserActivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserActivation({}, kinks {:?})", self.name, self.kinks)
    }
}

/// An activation: built in, or the user's (compiled once per process and kept for its life:
/// kernels and simulators refer to it by reference, as they do to a built-in one by value).
#[derive(Clone, Copy, Debug)]
pub enum Activation {
    Builtin(ActivationKind),
    User(&'static UserActivation),
}

impl From<ActivationKind> for Activation {
    fn from(kind: ActivationKind) -> Self {
        Activation::Builtin(kind)
    }
}

impl PartialEq for Activation {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Activation::Builtin(a), Activation::Builtin(b)) => a == b,
            (Activation::User(a), Activation::User(b)) => a.id == b.id,
            _ => false,
        }
    }
}

impl PartialEq<ActivationKind> for Activation {
    fn eq(&self, other: &ActivationKind) -> bool {
        *self == Activation::Builtin(*other)
    }
}

impl Eq for Activation {}

impl Hash for Activation {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Activation::Builtin(a) => a.hash(state),
            Activation::User(u) => u.id.hash(state),
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Activation {
    pub fn name(&self) -> &str {
        match self {
            Activation::Builtin(a) => a.name(),
            Activation::User(u) => &u.name,
        }
    }

    /// The built-in activation, if this is one.
    pub fn builtin(self) -> Option<ActivationKind> {
        match self {
            Activation::Builtin(a) => Some(a),
            Activation::User(_) => None,
        }
    }

    /// Whether the averages' gradients are exact (see [`ActivationKind::has_exact_gradients`]
    /// and [`UserActivation::has_exact_gradients`]).
    pub fn has_exact_gradients(self) -> bool {
        match self {
            Activation::Builtin(a) => a.has_exact_gradients(),
            Activation::User(u) => u.has_exact_gradients(),
        }
    }

    /// Whether the averages are closed forms (a user's never are).
    pub fn has_closed_forms(self) -> bool {
        matches!(self, Activation::Builtin(a) if a.has_closed_forms())
    }

    /// Whether `g(c x) = c g(x)` for every `c > 0` (linear, ReLU, a user's ramp): then the
    /// flow has a flat direction `w -> c w`, `v -> v / c` that SGD drifts along at finite D
    /// (docs/theory.md section 10). In one dimension that makes g a ramp, `b x + k relu(x)`,
    /// which [`Ramp::of`] checks numerically, so it holds for a user's activation written in
    /// any form (a user's is checked once, when it is compiled).
    pub fn is_positively_homogeneous(self) -> bool {
        match self {
            Activation::Builtin(a) => Ramp::of(|x| a.g(x)).is_some(),
            Activation::User(u) => u.ramp.is_some(),
        }
    }

    /// (g, g') at x.
    #[inline]
    pub fn g_dg(self, x: f64) -> (f64, f64) {
        match self {
            Activation::Builtin(a) => (a.g(x), a.dg(x)),
            Activation::User(u) => u.function.g_dg(x),
        }
    }
}

impl Evaluate for Activation {
    fn g(self, x: f64) -> f64 {
        match self {
            Activation::Builtin(a) => a.g(x),
            Activation::User(u) => u.function.g(x),
        }
    }

    fn dg(self, x: f64) -> f64 {
        self.g_dg(x).1
    }

    fn average(self, avg: Avg, c: &[f64]) -> f64 {
        match self {
            Activation::Builtin(a) => a.average(avg, c),
            Activation::User(u) => u.average(avg, c),
        }
    }

    fn average_grad(self, avg: Avg, c: &[f64]) -> Vec<f64> {
        match self {
            Activation::Builtin(a) => a.average_grad(avg, c),
            Activation::User(u) => u.gradient(avg, c),
        }
    }

    fn average_grad_by_quadrature(self, avg: Avg, c: &[f64]) -> Vec<f64> {
        match self {
            Activation::Builtin(a) => a.average_grad_by_quadrature(avg, c),
            Activation::User(u) => u.gradient_by_quadrature(avg, c),
        }
    }

    fn average_by_quadrature(self, avg: Avg, c: &[f64]) -> f64 {
        match self {
            Activation::Builtin(a) => a.average_by_quadrature(avg, c),
            Activation::User(u) => u.average_by_quadrature(avg, c),
        }
    }
}
