//! Rodas4 (Hairer & Wanner, "Solving ODEs II", section IV.7): a stiffly accurate, L-stable
//! Rosenbrock method of order 4 with an embedded order-3 estimate. Long runs of the
//! autoencoder equations get stiff as the decoder norm grows (docs/theory.md section 7): explicit
//! steppers become step-limited there, this one is not.
//!
//! Form (autonomous systems): with `W = I/(h γ) - J`,
//! `W K_i = f(y + Σ_j a_ij K_j) + Σ_j (c_ij / h) K_j`, `y1 = y + Σ m_i K_i`,
//! error `Σ e_i K_i`. The Jacobian is the caller's exact one if given (generated kernels emit
//! one by symbolic differentiation), else by finite differences.

use std::cell::RefCell;

use super::error::{non_finite_entry, non_finite_jacobian, step_collapse};
use super::{recording_rhs, IntegrationError, Run};

/// Method coefficients (the published Rodas4 tableau), lower-triangular entries row by row:
/// `A(i,j) = A[(i-1)(i-2)/2 + j]` for 1-based i > j.
const GAMMA: f64 = 0.25;
const A: [f64; 15] = [
    1.544,
    0.946_678_528_081_582_6,
    0.255_701_169_898_328_4,
    3.314_825_187_068_521,
    2.896_124_015_972_201,
    0.998_641_913_997_781_7,
    1.221_224_509_226_641,
    6.019_134_481_288_629,
    12.537_083_329_320_87,
    -0.687_886_036_105_895,
    1.221_224_509_226_641,
    6.019_134_481_288_629,
    12.537_083_329_320_87,
    -0.687_886_036_105_895,
    1.0,
];
const C: [f64; 15] = [
    -5.6688,
    -2.430_093_356_833_875,
    -0.206_359_915_709_191_5,
    -0.107_352_905_815_137_5,
    -9.594_562_251_023_355,
    -20.470_286_148_096_16,
    7.496_443_313_967_647,
    -10.246_804_314_643_52,
    -33.999_903_528_199_05,
    11.708_908_932_061_6,
    8.083_246_795_921_522,
    -7.981_132_988_064_893,
    -31.521_594_328_743_71,
    16.319_305_431_231_36,
    -6.058_818_238_834_054,
];
const M: [f64; 6] = [
    1.221_224_509_226_641,
    6.019_134_481_288_629,
    12.537_083_329_320_87,
    -0.687_886_036_105_895,
    1.0,
    1.0,
];
const E: [f64; 6] = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
const STAGES: usize = 6;
/// Order of the error estimate plus one, for the step-size controller.
const ELO: f64 = 4.0;

fn tri(i: usize, j: usize) -> usize {
    // 0-based stage i > j.
    i * (i - 1) / 2 + j
}

/// Why a step sequence stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum RodasFailure {
    /// Non-finite derivative or state: (index, t, value, is_state).
    NonFinite(usize, f64, f64, bool),
    /// The step size fell below rounding at t.
    StepUnderflow(f64),
    /// More steps than allowed; stopped at t.
    TooManySteps(f64),
    /// W = I/(hγ) - J was singular at t.
    Singular(f64),
    /// The exact Jacobian had a non-finite entry: (row, column, t, value).
    NonFiniteJacobian(usize, usize, f64, f64),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RodasStats {
    pub evaluations: u64,
    pub jacobians: u64,
    pub accepted: u64,
    pub rejected: u64,
}

/// The Jacobian of `f` at `y`, column-major, into `jac`.
pub type JacobianFn<'a> = &'a dyn Fn(&[f64], &mut [f64]);

/// In-place LU factorisation with partial pivoting of a column-major `n x n` matrix. Written
/// out rather than nalgebra's generic one because a Rodas4 step factorises once and solves six
/// times on states of tens of entries, where nalgebra's allocation and generic column
/// operations cost more than the arithmetic (measured: LU and solves were 48% of a run).
#[derive(Debug, Clone, Default)]
pub struct DenseLu {
    n: usize,
    a: Vec<f64>,
    pivots: Vec<usize>,
}

impl DenseLu {
    /// Factorises `a` (column-major, `n x n`, consumed as the factor storage). False if a pivot
    /// is zero or not finite: the matrix is singular to working precision.
    pub fn factor(&mut self, n: usize) -> bool {
        // The same operations in the same order either way (no fused multiply-adds, no
        // reassociation), so the results are bit-identical; AVX2 only widens the vectors.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.factor_avx2(n) };
        }
        self.factor_portable(n)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn factor_avx2(&mut self, n: usize) -> bool {
        self.factor_portable(n)
    }

    #[inline(always)]
    fn factor_portable(&mut self, n: usize) -> bool {
        self.n = n;
        self.pivots.resize(n, 0);
        let a = &mut self.a;
        for k in 0..n {
            let col = &a[k * n..(k + 1) * n];
            let mut p = k;
            let mut best = col[k].abs();
            for (i, v) in col.iter().enumerate().skip(k + 1) {
                if v.abs() > best {
                    best = v.abs();
                    p = i;
                }
            }
            if best == 0.0 || !best.is_finite() {
                return false;
            }
            self.pivots[k] = p;
            if p != k {
                for j in 0..n {
                    a.swap(j * n + k, j * n + p);
                }
            }
            let inv = 1.0 / a[k * n + k];
            for v in &mut a[k * n + k + 1..(k + 1) * n] {
                *v *= inv;
            }
            // Right-looking update, one contiguous column at a time.
            let (left, right) = a.split_at_mut((k + 1) * n);
            let lk = &left[k * n + k + 1..(k + 1) * n];
            for j in 0..n - k - 1 {
                let cj = &mut right[j * n..(j + 1) * n];
                let ukj = cj[k];
                if ukj != 0.0 {
                    for (c, l) in cj[k + 1..].iter_mut().zip(lk) {
                        *c -= ukj * l;
                    }
                }
            }
        }
        true
    }

    /// The matrix to factorise next, column-major `n x n` (resized as needed).
    pub fn matrix_mut(&mut self, n: usize) -> &mut [f64] {
        self.a.resize(n * n, 0.0);
        &mut self.a[..n * n]
    }

    /// Solves `A x = b` in place with the last factorisation.
    pub fn solve(&self, b: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.solve_avx2(b) };
        }
        self.solve_portable(b)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn solve_avx2(&self, b: &mut [f64]) {
        self.solve_portable(b)
    }

    #[inline(always)]
    fn solve_portable(&self, b: &mut [f64]) {
        let (n, a) = (self.n, &self.a);
        for k in 0..n {
            b.swap(k, self.pivots[k]);
        }
        for k in 0..n {
            let bk = b[k];
            if bk != 0.0 {
                for (bi, l) in b[k + 1..n].iter_mut().zip(&a[k * n + k + 1..(k + 1) * n]) {
                    *bi -= bk * l;
                }
            }
        }
        for k in (0..n).rev() {
            b[k] /= a[k * n + k];
            let bk = b[k];
            if bk != 0.0 {
                for (bi, u) in b[..k].iter_mut().zip(&a[k * n..k * n + k]) {
                    *bi -= bk * u;
                }
            }
        }
    }
}

/// Buffers of a Rodas4 run, kept across calls so that a run with many output times allocates
/// once.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    fy: Vec<f64>,
    k: Vec<f64>,
    stage_y: Vec<f64>,
    stage_f: Vec<f64>,
    y_new: Vec<f64>,
    jac: Vec<f64>,
    lu: DenseLu,
}

impl Workspace {
    fn resize(&mut self, n: usize) {
        for v in [&mut self.fy, &mut self.stage_y, &mut self.stage_f, &mut self.y_new] {
            v.resize(n, 0.0);
        }
        self.k.resize(STAGES * n, 0.0);
        self.jac.resize(n * n, 0.0);
    }
}

/// `f` with the checks every evaluation gets: counted, and a non-finite derivative is an error.
struct Rhs<'a> {
    f: &'a dyn Fn(&[f64], &mut [f64]),
}

impl Rhs<'_> {
    fn eval(&self, x: &[f64], out: &mut [f64], t: f64, stats: &mut RodasStats) -> Result<(), RodasFailure> {
        (self.f)(x, out);
        stats.evaluations += 1;
        match out.iter().position(|v| !v.is_finite()) {
            Some(i) => Err(RodasFailure::NonFinite(i, t, out[i], false)),
            None => Ok(()),
        }
    }
}

/// The first step: 1% of the scaled derivative's inverse norm, within the interval.
#[allow(clippy::too_many_arguments)]
fn initial_step(
    rhs: &Rhs,
    y: &[f64],
    fy: &mut [f64],
    t0: f64,
    t1: f64,
    rtol: f64,
    atol: f64,
    stats: &mut RodasStats,
) -> Result<f64, RodasFailure> {
    let n = y.len();
    rhs.eval(y, fy, t0, stats)?;
    let norm = (0..n)
        .map(|i| (fy[i] / (atol + rtol * y[i].abs())).powi(2))
        .sum::<f64>()
        .sqrt()
        / (n as f64).sqrt();
    let guess = if norm > 0.0 {
        (0.01 / norm).min(t1 - t0)
    } else {
        (t1 - t0) * 1e-3
    };
    // At tight tolerances the guess can fall below what t itself resolves (1e-16 at
    // t = 628 for rtol 1e-14), which would read as a collapsed step before the first one:
    // start at the smallest step t can take instead, and let the controller go on.
    let resolvable = 1e3 * f64::EPSILON * t0.abs().max(t1.abs());
    Ok(guess.max(resolvable).min(t1 - t0))
}

/// The Jacobian at `y` into `work.jac` (`work.fy` holds f(y)): the exact one, or forward
/// differences, one column per state entry.
fn form_jacobian(
    jacobian: Option<JacobianFn>,
    rhs: &Rhs,
    y: &[f64],
    t: f64,
    work: &mut Workspace,
    stats: &mut RodasStats,
) -> Result<(), RodasFailure> {
    let n = y.len();
    let Workspace {
        fy,
        stage_y,
        stage_f,
        jac,
        ..
    } = work;
    match jacobian {
        Some(exact) => {
            exact(y, jac);
            if let Some(i) = jac.iter().position(|v| !v.is_finite()) {
                return Err(RodasFailure::NonFiniteJacobian(i % n, i / n, t, jac[i]));
            }
        }
        None => {
            stage_y.copy_from_slice(y);
            for j in 0..n {
                let delta = f64::EPSILON.sqrt() * y[j].abs().max(1e-5);
                stage_y[j] = y[j] + delta;
                rhs.eval(stage_y, stage_f, t, stats)?;
                stage_y[j] = y[j];
                for (entry, (fj, f0)) in jac[j * n..(j + 1) * n].iter_mut().zip(stage_f.iter().zip(fy.iter())) {
                    *entry = (fj - f0) / delta;
                }
            }
        }
    }
    stats.jacobians += 1;
    Ok(())
}

/// One attempted step of size `hs` from `y` (with f(y) and the Jacobian in `work`): the
/// stages, the new state in `work.y_new`, and the scaled error norm (at most 1: accepted).
#[allow(clippy::too_many_arguments)]
fn attempt(
    rhs: &Rhs,
    y: &[f64],
    t: f64,
    hs: f64,
    rtol: f64,
    atol: f64,
    work: &mut Workspace,
    stats: &mut RodasStats,
) -> Result<f64, RodasFailure> {
    let n = y.len();
    let Workspace {
        fy,
        k,
        stage_y,
        y_new,
        jac,
        lu,
        ..
    } = work;
    let w = lu.matrix_mut(n);
    for (wi, ji) in w.iter_mut().zip(jac.iter()) {
        *wi = -ji;
    }
    for i in 0..n {
        w[i * n + i] += 1.0 / (hs * GAMMA);
    }
    if !lu.factor(n) {
        return Err(RodasFailure::Singular(t));
    }
    for s in 0..STAGES {
        let (done, rest) = k.split_at_mut(s * n);
        let ks = &mut rest[..n];
        if s == 0 {
            ks.copy_from_slice(fy);
        } else {
            stage_y.copy_from_slice(y);
            for j in 0..s {
                let a = A[tri(s, j)];
                if a != 0.0 {
                    for (sy, kj) in stage_y.iter_mut().zip(&done[j * n..(j + 1) * n]) {
                        *sy += a * kj;
                    }
                }
            }
            rhs.eval(stage_y, ks, t, stats)?;
        }
        for j in 0..s {
            let c = C[tri(s, j)] / hs;
            for (r, kj) in ks.iter_mut().zip(&done[j * n..(j + 1) * n]) {
                *r += c * kj;
            }
        }
        // A stage that overflows makes the error estimate NaN: the step is rejected.
        lu.solve(ks);
    }
    let mut err = 0.0;
    for i in 0..n {
        let mut yi = y[i];
        let mut ei = 0.0;
        for s in 0..STAGES {
            yi += M[s] * k[s * n + i];
            ei += E[s] * k[s * n + i];
        }
        y_new[i] = yi;
        let sc = atol + rtol * y[i].abs().max(yi.abs());
        err += (ei / sc).powi(2);
    }
    Ok((err / n as f64).sqrt())
}

/// Integrates `f` from `t0` to `t1` starting at `y`; `h` is the initial step (0 picks one) and
/// receives the last accepted step for the next call. Without `jacobian`, finite differences.
/// `work` holds the buffers, so that a run with many output times allocates once.
#[allow(clippy::too_many_arguments)]
pub fn integrate(
    f: &dyn Fn(&[f64], &mut [f64]),
    jacobian: Option<JacobianFn>,
    t0: f64,
    t1: f64,
    y: &mut [f64],
    h: &mut f64,
    rtol: f64,
    atol: f64,
    max_steps: u32,
    stats: &mut RodasStats,
    work: &mut Workspace,
) -> Result<(), RodasFailure> {
    let n = y.len();
    work.resize(n);
    let rhs = Rhs { f };
    if *h <= 0.0 {
        *h = initial_step(&rhs, y, &mut work.fy, t0, t1, rtol, atol, stats)?;
    }
    let mut t = t0;
    let mut fac_max = 6.0;
    let mut steps = 0u32;
    while t < t1 {
        if steps >= max_steps {
            return Err(RodasFailure::TooManySteps(t));
        }
        steps += 1;
        let mut hs = h.min(t1 - t);
        if t + hs >= t1 * (1.0 - 1e-14) {
            hs = t1 - t;
        }
        if hs <= f64::EPSILON * t.abs().max(1e-300) * 10.0 {
            return Err(RodasFailure::StepUnderflow(t));
        }
        rhs.eval(y, &mut work.fy, t, stats)?;
        form_jacobian(jacobian, &rhs, y, t, work, stats)?;
        // A rejected step retries with a smaller h at the same y: the Jacobian is still exact
        // there, only W = I/(h gamma) - J is formed and factorised again.
        loop {
            let err = attempt(&rhs, y, t, hs, rtol, atol, work, stats)?;
            let fac = if err.is_finite() {
                (0.9 / err.max(1e-10).powf(1.0 / ELO)).clamp(0.2, fac_max)
            } else {
                0.2
            };
            if err <= 1.0 {
                if let Some(i) = work.y_new.iter().position(|v| !v.is_finite()) {
                    return Err(RodasFailure::NonFinite(i, t + hs, work.y_new[i], true));
                }
                y.copy_from_slice(&work.y_new[..n]);
                t += hs;
                stats.accepted += 1;
                // Keep the last full step for the next call rather than a shortened final one.
                if t < t1 || hs * fac > *h {
                    *h = hs * fac;
                }
                fac_max = 6.0;
                break;
            }
            stats.rejected += 1;
            fac_max = 1.0;
            hs *= fac;
            *h = hs;
            if hs <= f64::EPSILON * t.abs().max(1e-300) * 10.0 {
                return Err(RodasFailure::StepUnderflow(t));
            }
        }
    }
    Ok(())
}

/// The Rodas4 stage: from `state` at `times[next - 1]` through every later output, one
/// interval at a time, keeping its step size and buffers from one to the next.
pub(super) fn run(run: &mut Run, exact: bool, next: usize, state: Vec<f64>) -> Result<(), IntegrationError> {
    let (kernel, times, solver) = (run.kernel, run.times, run.solver);
    let jacobian = |x: &[f64], jac: &mut [f64]| {
        kernel.jacobian(x, jac);
    };
    let (mut y, mut h, mut work) = (state, 0.0, Workspace::default());
    for index in next - 1..times.len() - 1 {
        let (from, to) = (times[index], times[index + 1]);
        if to <= from {
            continue;
        }
        let mut rs = RodasStats::default();
        let bad_input: RefCell<Option<Vec<f64>>> = RefCell::new(None);
        let f = recording_rhs(kernel, &bad_input);
        let res = integrate(
            &f,
            exact.then_some(&jacobian as JacobianFn),
            from,
            to,
            &mut y,
            &mut h,
            solver.rtol,
            solver.atol,
            solver.max_steps,
            &mut rs,
            &mut work,
        );
        let stats = &mut run.trajectory.stats;
        stats.evaluations += rs.evaluations;
        stats.accepted += rs.accepted;
        stats.rejected += rs.rejected;
        stats.stiff_accepted += rs.accepted;
        stats.jacobians += rs.jacobians;
        let name = |i: usize| run.name(i);
        match res {
            Ok(()) => {}
            Err(RodasFailure::NonFinite(i, t, value, is_state)) => {
                return Err(non_finite_entry(i, t, value, is_state, &name, || {
                    run.cause(bad_input.borrow_mut().take())
                }));
            }
            Err(RodasFailure::NonFiniteJacobian(row, col, t, value)) => {
                return Err(non_finite_jacobian(row, col, t, value, &name));
            }
            Err(RodasFailure::StepUnderflow(t)) | Err(RodasFailure::Singular(t)) => {
                return Err(step_collapse(kernel, &y, t, solver, &name));
            }
            Err(RodasFailure::TooManySteps(t)) => {
                return Err(IntegrationError::TooManySteps {
                    steps: solver.max_steps,
                    from,
                    to,
                    t,
                })
            }
        }
        run.output(to, &y)?;
    }
    Ok(())
}
