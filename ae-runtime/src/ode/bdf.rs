//! The stiff stage by diffsol's variable-order BDF: the Jacobian and its factorisation are
//! reused across steps while Newton converges, which is what makes it cheaper than Rodas4 (one
//! Jacobian and LU every step) on the long stiff tails of these runs.

use std::cell::{Cell, RefCell};

use diffsol::{NalgebraLU, NalgebraMat, OdeBuilder, OdeSolverMethod, OdeSolverStopReason, Vector};

use super::error::{fastest_changing, non_finite_entry, non_finite_jacobian};
use super::rosenbrock::JacobianFn;
use super::{recording_rhs, IntegrationError, Run};

type Matrix = NalgebraMat<f64>;
type Lu = NalgebraLU<f64>;

/// Why a BDF run stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum BdfFailure {
    /// Non-finite derivative or state: (index, t, value, is_state).
    NonFinite(usize, f64, f64, bool),
    /// The exact Jacobian had a non-finite entry: (row, column, t, value).
    NonFiniteJacobian(usize, usize, f64, f64),
    /// diffsol gave up (the step size collapsed or Newton failed at every step size) at t,
    /// with the last accepted state; its message.
    Failed(f64, Vec<f64>, String),
    /// More than the allowed steps between two outputs; stopped at t.
    TooManySteps(f64),
}

/// Receives each output time and state; an error stops the run.
pub type OutputFn<'a, E> = dyn FnMut(f64, &[f64]) -> Result<(), E> + 'a;

/// Counts of one BDF run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BdfStats {
    pub accepted: u64,
    pub rejected: u64,
    pub evaluations: u64,
    /// Jacobian and LU setups.
    pub jacobians: u64,
}

/// Integrates `dy/dt = f(y)` from `(t0, y0)` through every time of `outputs` (increasing, after
/// t0), handing each output time and state to `output`. Without `jacobian`, Jacobians are
/// forward differences of `f`. At most `max_steps` steps between two outputs.
#[allow(clippy::too_many_arguments)]
pub fn integrate<E>(
    f: &dyn Fn(&[f64], &mut [f64]),
    jacobian: Option<JacobianFn>,
    t0: f64,
    y0: &[f64],
    outputs: &[f64],
    rtol: f64,
    atol: f64,
    max_steps: u32,
    stats: &mut BdfStats,
    output: &mut OutputFn<E>,
) -> Result<(), OutputOrFailure<E>> {
    let n = y0.len();
    if outputs.is_empty() {
        return Ok(());
    }
    let evaluations = Cell::new(0u64);
    // The first non-finite derivative, from the first state that produced one.
    let bad: Cell<Option<(usize, f64)>> = Cell::new(None);
    let rhs = |x: &[f64], dx: &mut [f64]| {
        evaluations.set(evaluations.get() + 1);
        f(x, dx);
        if bad.get().is_none() {
            if let Some(i) = dx.iter().position(|v| !v.is_finite()) {
                bad.set(Some((i, dx[i])));
            }
        }
    };
    // diffsol asks for Jacobian-vector products and assembles its matrix from the products
    // with unit vectors: form the Jacobian once per state (exact, or by forward differences
    // of f) and answer every product at that state from it.
    let cache = RefCell::new(JacobianCache::new(n));
    let jac_mul = |x: &[f64], v: &[f64], y: &mut [f64]| cache.borrow_mut().product(x, v, y, jacobian, &rhs);
    let failed = |t: f64, y: Vec<f64>, e: diffsol::error::DiffsolError| {
        OutputOrFailure::Failure(BdfFailure::Failed(t, y, e.to_string()))
    };
    let problem = OdeBuilder::<Matrix>::new()
        .t0(t0)
        .rtol(rtol)
        .atol([atol])
        .rhs_implicit(
            |x: &[f64], _p: &[f64], _t: f64, dx: &mut [f64]| rhs(x, dx),
            |x: &[f64], _p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| jac_mul(x, v, y),
        )
        .init(|_p: &[f64], _t: f64, y: &mut [f64]| y.copy_from_slice(y0), n)
        .build()
        .map_err(|e| failed(t0, y0.to_vec(), e))?;
    let mut solver = problem.bdf::<Lu>().map_err(|e| failed(t0, y0.to_vec(), e))?;
    let record = |solver: &diffsol::Bdf<'_, _, Lu>, stats: &mut BdfStats| {
        let s = solver.get_statistics();
        stats.accepted = s.number_of_steps as u64;
        stats.rejected = s.number_of_error_test_failures as u64;
        stats.jacobians = s.number_of_linear_solver_setups as u64;
        stats.evaluations = evaluations.get();
    };
    // diffsol caps a whole run at 5000 steps by default; the limit here is per output
    // interval (`max_steps`), as for the other steppers.
    solver.config_mut().maximum_number_timesteps = usize::MAX;
    let last_t = *outputs.last().unwrap_or(&t0);
    solver.set_stop_time(last_t).map_err(|e| failed(t0, y0.to_vec(), e))?;
    let mut next = 0;
    let mut steps_since_output = 0u32;
    while next < outputs.len() {
        // Outputs inside the last step come from its interpolant.
        while next < outputs.len() && outputs[next] <= solver.state().t {
            let t = outputs[next];
            let y = if t == solver.state().t {
                solver.state().y.clone_as_vec()
            } else {
                solver
                    .interpolate(t)
                    .map_err(|e| failed(t, solver.state().y.clone_as_vec(), e))?
                    .clone_as_vec()
            };
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return Err(OutputOrFailure::Failure(BdfFailure::NonFinite(i, t, y[i], true)));
            }
            record(&solver, stats);
            output(t, &y).map_err(OutputOrFailure::Output)?;
            next += 1;
            steps_since_output = 0;
        }
        if next == outputs.len() {
            break;
        }
        if steps_since_output >= max_steps {
            record(&solver, stats);
            return Err(OutputOrFailure::Failure(BdfFailure::TooManySteps(solver.state().t)));
        }
        let step = solver.step();
        steps_since_output += 1;
        let t = solver.state().t;
        let bad_derivative = jacobian.is_none().then(|| bad.get()).flatten();
        if let Some(failure) = jacobian_failure(cache.borrow().bad_entry, bad_derivative, t) {
            record(&solver, stats);
            return Err(OutputOrFailure::Failure(failure));
        }
        match step {
            Ok(OdeSolverStopReason::InternalTimestep | OdeSolverStopReason::TstopReached) => {}
            Ok(OdeSolverStopReason::RootFound(..)) => unreachable!("no root function was given"),
            Err(e) => {
                record(&solver, stats);
                if let Some((i, value)) = bad.get() {
                    return Err(OutputOrFailure::Failure(BdfFailure::NonFinite(i, t, value, false)));
                }
                return Err(failed(t, solver.state().y.clone_as_vec(), e));
            }
        }
    }
    record(&solver, stats);
    Ok(())
}

/// The failure a non-finite Jacobian entry (`bad_entry`) stands for. A Jacobian by differences
/// is non-finite where the right-hand side was at a nudged state (`bad_derivative`): that
/// derivative, whose cause can be traced, is the error to report.
fn jacobian_failure(
    bad_entry: Option<(usize, usize, f64)>,
    bad_derivative: Option<(usize, f64)>,
    t: f64,
) -> Option<BdfFailure> {
    let (row, col, value) = bad_entry?;
    Some(match bad_derivative {
        Some((i, value)) => BdfFailure::NonFinite(i, t, value, false),
        None => BdfFailure::NonFiniteJacobian(row, col, t, value),
    })
}

/// The BDF stage: from `state` at `t0` through the outputs from `times[next]` on, in one go (BDF
/// keeps its history across outputs). Adds its counts to those of the stages before it.
pub(super) fn run(run: &mut Run, exact: bool, t0: f64, state: &[f64], next: usize) -> Result<(), IntegrationError> {
    let kernel = run.kernel;
    let bad_input: RefCell<Option<Vec<f64>>> = RefCell::new(None);
    let f = recording_rhs(kernel, &bad_input);
    let (times, solver) = (run.times, run.solver);
    let from = times[next - 1];
    let before = run.trajectory.stats;
    let mut bs = BdfStats::default();
    let jacobian = |x: &[f64], jac: &mut [f64]| {
        kernel.jacobian(x, jac);
    };
    let res = integrate(
        &f,
        exact.then_some(&jacobian as JacobianFn),
        t0,
        state,
        &times[next..],
        solver.rtol,
        solver.atol,
        solver.max_steps,
        &mut bs,
        &mut |t: f64, state: &[f64]| run.output(t, state),
    );
    let stats = &mut run.trajectory.stats;
    stats.evaluations = before.evaluations + bs.evaluations;
    stats.accepted = before.accepted + bs.accepted;
    stats.rejected = before.rejected + bs.rejected;
    stats.stiff_accepted = bs.accepted;
    stats.jacobians = bs.jacobians;
    let name = |i: usize| run.name(i);
    match res {
        Ok(()) => Ok(()),
        Err(OutputOrFailure::Output(e)) => Err(e),
        Err(OutputOrFailure::Failure(failure)) => Err(match failure {
            BdfFailure::NonFinite(i, t, value, is_state) => non_finite_entry(i, t, value, is_state, &name, || {
                run.cause(bad_input.borrow_mut().take())
            }),
            BdfFailure::NonFiniteJacobian(row, col, t, value) => non_finite_jacobian(row, col, t, value, &name),
            BdfFailure::Failed(t, last, message) => {
                let (state, value, derivative) = fastest_changing(kernel, &last, solver, &name);
                IntegrationError::BdfFailed {
                    t,
                    message,
                    state,
                    value,
                    derivative,
                }
            }
            BdfFailure::TooManySteps(t) => {
                let from = times.iter().copied().filter(|x| *x <= t).fold(from, f64::max);
                let to = times.iter().copied().find(|x| *x > t).unwrap_or(t);
                IntegrationError::TooManySteps {
                    steps: solver.max_steps,
                    from,
                    to,
                    t,
                }
            }
        }),
    }
}

/// A failure of the integration, or the error an output callback returned.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputOrFailure<E> {
    Failure(BdfFailure),
    Output(E),
}

/// The Jacobian at the state `at`, column-major.
struct JacobianCache {
    at: Vec<f64>,
    jac: Vec<f64>,
    f0: Vec<f64>,
    shifted: Vec<f64>,
    f1: Vec<f64>,
    /// The first non-finite entry seen: (row, column, value).
    bad_entry: Option<(usize, usize, f64)>,
}

impl JacobianCache {
    fn new(n: usize) -> JacobianCache {
        JacobianCache {
            at: vec![f64::NAN; n],
            jac: vec![0.0; n * n],
            f0: vec![0.0; n],
            shifted: vec![0.0; n],
            f1: vec![0.0; n],
            bad_entry: None,
        }
    }

    /// `y = J(x) v`, forming J at `x` only if the cached one is at another state.
    fn product(
        &mut self,
        x: &[f64],
        v: &[f64],
        y: &mut [f64],
        jacobian: Option<JacobianFn>,
        f: &dyn Fn(&[f64], &mut [f64]),
    ) {
        if self.at.as_slice() != x {
            self.form(x, jacobian, f);
        }
        let n = x.len();
        y.iter_mut().for_each(|yi| *yi = 0.0);
        for (column, vj) in self.jac.chunks_exact(n).zip(v) {
            if *vj != 0.0 {
                for (yi, jij) in y.iter_mut().zip(column) {
                    *yi += jij * vj;
                }
            }
        }
    }

    fn form(&mut self, x: &[f64], jacobian: Option<JacobianFn>, f: &dyn Fn(&[f64], &mut [f64])) {
        let n = x.len();
        self.at.copy_from_slice(x);
        match jacobian {
            Some(exact) => exact(x, &mut self.jac),
            None => {
                // Forward differences, one column per entry (as Rodas4 does without one).
                f(x, &mut self.f0);
                self.shifted.copy_from_slice(x);
                for (j, (xj, column)) in x.iter().zip(self.jac.chunks_exact_mut(n)).enumerate() {
                    let h = f64::EPSILON.sqrt() * xj.abs().max(1e-5);
                    self.shifted[j] = xj + h;
                    f(&self.shifted, &mut self.f1);
                    self.shifted[j] = *xj;
                    for ((c, f1), f0) in column.iter_mut().zip(&self.f1).zip(&self.f0) {
                        *c = (f1 - f0) / h;
                    }
                }
            }
        }
        if self.bad_entry.is_none() {
            if let Some(k) = self.jac.iter().position(|v| !v.is_finite()) {
                self.bad_entry = Some((k % n, k / n, self.jac[k]));
            }
        }
    }
}
