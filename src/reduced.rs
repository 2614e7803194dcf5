//! Full against reduced long-time equations: integrate the full equations from a random start,
//! detect when the units have aligned with the spikes, continue with the reduced equations
//! from that aligned state, and measure where the two coincide and the long-time power laws.
//!
//! # The long-time exponents for erf, derived from `equations/reduced.ae`
//!
//! Write `c = sqrt(2/pi)`, `g(x) = erf(x/sqrt 2)`, `u ~ N(0, rho)` and `Q = rho a^2`. The erf
//! closed forms give, exactly,
//!
//! ```text
//! E[u^2 g'(a u)] = c rho A(Q),      A = (1+Q)^(-3/2)
//! E[u g g'(a u)] = c^2 rho a C(Q),  C = (1+Q)^(-1) (1+2Q)^(-1/2)
//! E[u g(a u)]    = c rho a G(Q),    G = (1+Q)^(-1/2)
//! E[g(a u)^2]    = c^2 H(Q),        H = asin(Q/(1+Q))
//! ```
//!
//! so that with the gain `s = c a b` (the slope of `u -> b g(a u)` at 0) and `eta = 1`:
//!
//! ```text
//! da/dt = c rho b     [A - s C]     =: c rho b F_a
//! db/dt = c rho a     [G - s H/Q]   =: c rho a F_b
//! ds/dt = c^2 rho (b^2 F_a + a^2 F_b)
//! ```
//!
//! At long times `a -> 0`, `b -> oo`: the gain relaxes at the fast rate `c^2 rho b^2` onto the
//! slow manifold `F_a ~ 0`, i.e. `s* = A/C = 1 + Q/2 - 5Q^2/8 + O(Q^3)`. To first order in Q
//! both brackets vanish together there (`F_a - F_b = Q (s - 1) + O(Q^2)`), so the drift is
//! an O(Q^2) effect: expanding `A = 1 - 3Q/2 + 15Q^2/8`, `C = 1 - 2Q + 7Q^2/2`,
//! `G = 1 - Q/2 + 3Q^2/8`, `H/Q = 1 - Q + 7Q^2/6` gives `F_b(s*) = Q^2/3`. Staying on the
//! manifold (`ds/dt ~ d s*/dt`, negligible against `c^2 rho b^2 F_a`) forces
//! `F_a = -(a^2/b^2) F_b = -c^2 a^4 Q^2/3` (using `b = 1/(c a)` to leading order). Hence
//!
//! ```text
//! da/dt = -(c^2 rho^3 / 3) a^7   =>   a(t)^6 = pi / (4 rho^3 eta t)   (a ~ t^(-1/6))
//! db/dt = (c rho^3 / 3) a^5      =>   b = 1/(c a)                     (b ~ t^(+1/6))
//! ```
//!
//! (the two lines are consistent: `d(1/(c a))/dt = -a'/(c a^2) = c rho^3 a^5/3`). The excess
//! error of unit k is `(rho/2) (1 - 2 s G + s^2 H/Q) = (rho/2) Q^2/6` at `s*`, so
//!
//! ```text
//! eg - eg_PCA(K) = sum_k rho_k^3 a_k^4 / 12 = (pi/(4 eta t))^(2/3) sum_k rho_k / 12   (~ t^(-2/3))
//! ```
//!
//! The exponents are therefore alpha = beta = 1/6 and gamma = 2/3, with relative corrections
//! of order Q ~ t^(-1/3). (For linear g the reduced equations converge exponentially onto
//! `a b = 1`; there is no power law.)

use ae_core::averages::ActivationKind;
use ae_runtime::ode::log_times;

use crate::error::RunError;
use crate::run::{ModelHandle, OdeJob, OdeRun};
use crate::schema;
use crate::source::InitChoice;
use ae_dsl::ir::Input;
use ae_runtime::init;

/// The power laws a ~ t^-alpha, b ~ t^beta, eg - eg_PCA ~ t^-gamma.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponents {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
}

/// The exponents derived in this module's documentation (erf only).
pub fn predicted_exponents(activation: &str) -> Option<Exponents> {
    (activation == ActivationKind::Erf.name()).then_some(Exponents {
        alpha: 1.0 / 6.0,
        beta: 1.0 / 6.0,
        gamma: 2.0 / 3.0,
    })
}

/// The leading long-time asymptotes derived above for erf: `a_k(t)` per unit and
/// `eg - eg_PCA(K)`, for learning rate `lr` and spikes `rho` (rescaled eigenvalues).
pub fn predicted_asymptotes(rho: &[f64], lr: f64, t: f64) -> (Vec<f64>, f64) {
    let pi = std::f64::consts::PI;
    let a = rho
        .iter()
        .map(|r| (pi / (4.0 * r.powi(3) * lr * t)).powf(1.0 / 6.0))
        .collect();
    let excess = (pi / (4.0 * lr * t)).powf(2.0 / 3.0) * rho.iter().sum::<f64>() / 12.0;
    (a, excess)
}

/// Where the full run has aligned: unit `k` sits on spike `mode[k]` with overlaps `a`, `b`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Index into the full run's output times.
    pub index: usize,
    pub t: f64,
    /// The largest share of any unit's encoder variance or decoder norm off its spike.
    pub misalignment: f64,
    pub mode: Vec<usize>,
    /// Per spike (not per unit): the reduced equations' initial a and b.
    pub a: Vec<f64>,
    pub b: Vec<f64>,
}

pub struct ReducedJob {
    /// The full run (vanilla equations, random start); its times end at the full run's end.
    pub full: OdeJob,
    /// Equations of the reduced run.
    pub reduced_equations: String,
    /// The reduced run continues to here.
    pub t_reduced_end: f64,
    /// Output times of the reduced run beyond the full one.
    pub points: usize,
    /// Alignment threshold on the misalignment.
    pub align_tol: f64,
}

pub struct ReducedRun {
    pub full: OdeRun,
    /// Misalignment at each of the full run's output times (NaN before any assignment exists).
    pub misalignment: Vec<f64>,
    pub alignment: Alignment,
    /// Starts at the alignment time, shares the full run's later output times, then goes on.
    pub reduced: OdeRun,
    pub pca_error: f64,
    /// Largest |eg_full - eg_reduced| / (eg_full - eg_PCA) at the shared times after alignment.
    pub max_excess_deviation: f64,
    /// Largest |eg_full - eg_reduced| / eg_full at the shared times after alignment.
    pub max_relative_deviation: f64,
    /// Log-slopes over the last decade of the reduced run (mean over units for a and b).
    pub fitted: Exponents,
}

/// Where the reduced-vs-full comparison reads the full run: Q's diagonal among the
/// observables, and the states that carry omega, varpi and T0.
struct FullColumns {
    q_diag: Vec<usize>,
    omega: usize,
    varpi: usize,
    t0: usize,
}

impl FullColumns {
    fn find(handle: &ModelHandle) -> Result<FullColumns, RunError> {
        const JOB: &str = "reduced-vs-full";
        let q = handle.require_pair_observable("Q", JOB)?;
        Ok(FullColumns {
            q_diag: (0..handle.k).map(|a| q[a][a]).collect(),
            omega: handle.require_carrier(Input::Omega0, JOB)?,
            varpi: handle.require_carrier(Input::Varpi0, JOB)?,
            t0: handle.require_carrier(Input::T00, JOB)?,
        })
    }
}

impl ReducedJob {
    /// Misalignment of one state of the full run and the unit-to-spike assignment it implies.
    fn misalignment(
        &self,
        handle: &ModelHandle,
        cols: &FullColumns,
        run: &OdeRun,
        i: usize,
        rho: &[f64],
    ) -> (f64, Vec<usize>) {
        let k = self.full.k;
        let y = &run.trajectory.states[i];
        let obs = &run.trajectory.observables[i];
        let at = |state: usize, hidden: &[usize], tau: Option<usize>| y[handle.layout.index(state, hidden, tau)];
        let mut worst: f64 = 0.0;
        let mut mode = Vec::with_capacity(k);
        for unit in 0..k {
            let q = obs[cols.q_diag[unit]];
            let t0 = at(cols.t0, &[unit, unit], None);
            let mut best = (0, f64::NEG_INFINITY);
            for (tau, r) in rho.iter().enumerate() {
                let w = at(cols.omega, &[unit], Some(tau));
                if r * w * w > best.1 {
                    best = (tau, r * w * w);
                }
            }
            let tau = best.0;
            let v = at(cols.varpi, &[unit], Some(tau));
            let enc = 1.0 - best.1 / q;
            let dec = 1.0 - v * v / t0;
            worst = worst.max(enc.abs()).max(dec.abs());
            mode.push(tau);
        }
        let mut sorted = mode.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() < k {
            worst = 1.0; // two units on one spike: a rotation, not an alignment
        }
        (worst, mode)
    }

    /// The reduced equations' job: the full run's, from a placeholder aligned start (`run`
    /// starts it from the state where the full run aligns).
    fn reduced_ode_job(&self) -> OdeJob {
        let k = self.full.k;
        OdeJob {
            equations: self.reduced_equations.clone(),
            init: InitChoice::Aligned {
                a: vec![0.0; k],
                b: vec![0.0; k],
            },
            ..self.full.clone()
        }
    }

    /// The columns of the two files (full run, reduced run), found by loading both sets of
    /// equations, without running.
    pub fn headers(&self) -> Result<(Vec<String>, Vec<String>), RunError> {
        let full = self.full.load()?;
        let reduced = self.reduced_ode_job().load()?;
        Ok((
            full_header(&full.observable_names),
            crate::run::ode_header(
                &reduced.observable_names,
                Some((&reduced.state_names, &reduced.state_columns)),
            ),
        ))
    }

    pub fn run(&self, mut progress: impl FnMut(&str, f64)) -> Result<ReducedRun, RunError> {
        let k = self.full.k;
        let Some(data) = self.full.source.as_spiked() else {
            return Err(RunError::Input(
                "reduced-vs-full runs on the spiked model, not --data".into(),
            ));
        };
        let m = data.spikes.len();
        if k != m {
            return Err(RunError::Input(format!(
                "the reduced equations have one unit per spike: --k ({k}) must equal the number of --spikes ({m})"
            )));
        }
        let t_full = self.full.times.last().copied().unwrap_or(0.0);
        if self.t_reduced_end.is_nan() || self.t_reduced_end < t_full {
            return Err(RunError::Input(format!(
                "the reduced run must reach at least the full run's end (t = {t_full})"
            )));
        }
        // Both sets of equations compiled once, and checked before anything runs.
        let full_handle = self.full.load()?;
        let cols = FullColumns::find(&full_handle)?;
        let eg_col = full_handle.require_eg("reduced-vs-full")?;
        let reduced_handle = self.reduced_ode_job().load()?;
        let eg_red = reduced_handle.require_eg("reduced-vs-full")?;
        let scales = ReducedColumns::find(&reduced_handle)?;
        let full = full_handle.integrate(&self.full.times, &self.full.solver, |t| progress("full", t))?;
        let rho = data.spike_rho();
        let mut misalignment = Vec::with_capacity(full.trajectory.times.len());
        let mut found = None;
        for i in 0..full.trajectory.times.len() {
            let (mis, mode) = self.misalignment(&full_handle, &cols, &full, i, &rho);
            misalignment.push(mis);
            if found.is_none() && mis < self.align_tol && full.trajectory.times[i] > 0.0 {
                found = Some((i, mis, mode));
            }
        }
        let Some((index, mis, mode)) = found else {
            let last = misalignment.last().copied().unwrap_or(f64::NAN);
            return Err(RunError::Input(format!(
                "the full run did not align by t = {t_full} (misalignment {last:.3e} > {:.1e}); \
                 run longer, raise --align-tol, use K = M = 1, or --equations truncated (with several units vanilla SGD learns a rotation of the spikes)",
                self.align_tol
            )));
        };
        let y = &full.trajectory.states[index];
        let (mut a, mut b) = (vec![0.0; m], vec![0.0; m]);
        for (unit, &tau) in mode.iter().enumerate() {
            a[tau] = y[full_handle.layout.index(cols.omega, &[unit], Some(tau))];
            b[tau] = y[full_handle.layout.index(cols.varpi, &[unit], Some(tau))];
        }
        let alignment = Alignment {
            index,
            t: full.trajectory.times[index],
            misalignment: mis,
            mode,
            a: a.clone(),
            b: b.clone(),
        };
        let mut times: Vec<f64> = full.trajectory.times[index..].to_vec();
        if self.t_reduced_end > t_full {
            let more = log_times(t_full, self.t_reduced_end, self.points);
            times.extend(more.into_iter().filter(|t| *t > t_full * (1.0 + 1e-9)));
        }
        let y0 = reduced_handle.state_of(&init::aligned(reduced_handle.rho.len(), &a, &b));
        let reduced = reduced_handle.integrate_from(y0, &times, &self.full.solver, |t| progress("reduced", t))?;
        let pca_error = data.pca_error(k);
        let (mut max_excess, mut max_rel) = (0.0f64, 0.0f64);
        for (j, i) in (index..full.trajectory.times.len()).enumerate() {
            let ef = full.trajectory.observables[i][eg_col];
            let er = reduced.trajectory.observables[j][eg_red];
            max_excess = max_excess.max((ef - er).abs() / (ef - pca_error).abs());
            max_rel = max_rel.max((ef - er).abs() / ef.abs());
        }
        let fitted = fit_last_decade(&reduced_handle, &scales, &reduced, m, pca_error, eg_red);
        Ok(ReducedRun {
            full,
            misalignment,
            alignment,
            reduced,
            pca_error,
            max_excess_deviation: max_excess,
            max_relative_deviation: max_rel,
            fitted,
        })
    }
}

/// Where the reduced run keeps its per-spike scales a and b.
struct ReducedColumns {
    a: usize,
    b: usize,
}

impl ReducedColumns {
    fn find(handle: &ModelHandle) -> Result<ReducedColumns, RunError> {
        const JOB: &str = "reduced-vs-full";
        Ok(ReducedColumns {
            a: handle.require_mode_scalar("a", JOB, "the aligned encoder scale per spike")?,
            b: handle.require_mode_scalar("b", JOB, "the aligned decoder scale per spike")?,
        })
    }
}

/// Log-slopes between the reduced run's last time and the last time at most a tenth of it.
fn fit_last_decade(
    handle: &ModelHandle,
    scales: &ReducedColumns,
    run: &OdeRun,
    m: usize,
    pca_error: f64,
    eg: usize,
) -> Exponents {
    let tr = &run.trajectory;
    let n = tr.times.len();
    let t1 = tr.times[n - 1];
    let i0 = (0..n).rev().find(|&i| tr.times[i] <= t1 / 10.0).unwrap_or(0);
    let t0 = tr.times[i0];
    let slope = |y0: f64, y1: f64| (y1.abs().ln() - y0.abs().ln()) / (t1.ln() - t0.ln());
    let (mut alpha, mut beta) = (0.0, 0.0);
    for tau in 0..m {
        let ia = handle.layout.index(scales.a, &[], Some(tau));
        let ib = handle.layout.index(scales.b, &[], Some(tau));
        alpha -= slope(tr.states[i0][ia], tr.states[n - 1][ia]) / m as f64;
        beta += slope(tr.states[i0][ib], tr.states[n - 1][ib]) / m as f64;
    }
    let gamma = -slope(
        tr.observables[i0][eg] - pca_error,
        tr.observables[n - 1][eg] - pca_error,
    );
    Exponents { alpha, beta, gamma }
}

/// The full run's columns: t, the misalignment, the observables and the rank-K PCA error.
pub fn full_header(observable_names: &[String]) -> Vec<String> {
    let mut header = vec![schema::TIME.to_string(), schema::MISALIGNMENT.to_string()];
    header.extend(observable_names.iter().map(|n| schema::csv_name(n)));
    header.push(schema::EG_PCA.to_string());
    header
}

impl ReducedRun {
    /// The full run as CSV: t, misalignment, its observables (eg first), and eg_PCA(K).
    pub fn write_full_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        writeln!(out, "{}", full_header(&self.full.observable_names).join(","))?;
        let tr = &self.full.trajectory;
        for i in 0..tr.times.len() {
            let mut row = vec![format!("{:e}", tr.times[i]), format!("{:e}", self.misalignment[i])];
            row.extend(tr.observables[i].iter().map(|v| format!("{v:e}")));
            row.push(format!("{:e}", self.pca_error));
            writeln!(out, "{}", row.join(","))?;
        }
        Ok(())
    }

    /// A human-readable report: alignment, agreement, exponents (fitted and, for erf, derived).
    pub fn summary(&self, activation: &str, seconds: f64) -> String {
        let al = &self.alignment;
        let mut s = format!(
            "aligned at t = {:.4e} (misalignment {:.2e}); unit -> spike {:?}\n",
            al.t, al.misalignment, al.mode
        );
        s += &format!(
            "after alignment, full vs reduced eg: max relative deviation {:.2e}, max deviation / (eg - eg_PCA) {:.2e}\n",
            self.max_relative_deviation, self.max_excess_deviation
        );
        let f = &self.fitted;
        s += &format!(
            "last decade of the reduced run: a ~ t^-{:.4}, b ~ t^{:.4}, eg - eg_PCA ~ t^-{:.4} (eg_PCA = {:.6})\n",
            f.alpha, f.beta, f.gamma, self.pca_error
        );
        if let Some(p) = predicted_exponents(activation) {
            s += &format!(
                "derived for erf (src/reduced.rs): alpha = {:.4}, beta = {:.4}, gamma = {:.4}\n",
                p.alpha, p.beta, p.gamma
            );
        }
        s += &format!("in {seconds:.2} s\n");
        s
    }
}
