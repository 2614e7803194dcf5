//! Adaptive integration (ode_solvers' Dop853 or Dopri5) with output at chosen times and guards:
//! a non-finite value or a collapsing step stops the run with an error naming the state and t.

use std::cell::{Cell, RefCell};

use ode_solvers::{DVector, Dop853, Dopri5, OutputType, System};

use crate::kernel::Kernel;
use crate::rosenbrock::RodasFailure;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Method {
    /// The default: BDF with the exact Jacobian where the kernel has one and the state is
    /// small; otherwise Dop853, handing over to BDF when Hairer's test finds the steps
    /// stability-limited (stiff) and a dense Jacobian is affordable.
    Auto,
    /// Variable-order BDF (diffsol) reusing its Jacobian and LU across steps (the generated
    /// kernels' symbolic Jacobian, finite differences for the interpreter; dense linear
    /// algebra).
    Bdf,
    /// Dormand-Prince 8(5,3).
    Dop853,
    /// Dormand-Prince 5(4).
    Dopri5,
    /// Rodas4, a stiffly accurate Rosenbrock method (the generated kernels' symbolic Jacobian,
    /// finite differences for the interpreter; dense linear algebra: for states of up to a few
    /// hundred entries).
    Rodas4,
}

/// States longer than this are refused by Rodas4 and BDF (their dense Jacobian and LU grow as
/// n^2, n^3).
pub const RODAS_MAX_STATE: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solver {
    pub method: Method,
    pub rtol: f64,
    pub atol: f64,
    /// Steps allowed between two output times.
    pub max_steps: u32,
    /// Rodas4: use a finite-difference Jacobian even when the kernel has an exact one.
    pub fd_jacobian: bool,
}

impl Default for Solver {
    fn default() -> Self {
        Solver {
            method: Method::Auto,
            rtol: DEFAULT_RTOL,
            atol: DEFAULT_ATOL,
            max_steps: 1_000_000,
            fd_jacobian: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntegrationError {
    #[error("{quantity} became {value} at t = {t:.6e}{cause}")]
    NonFinite {
        quantity: String,
        value: f64,
        t: f64,
        /// Where the first non-finite value arose, if it could be found (starts with "; ").
        cause: String,
    },
    #[error("the step size collapsed at t = {t:.6e}; fastest-changing state: {state} (value {value:.6e}, derivative {derivative:.6e})")]
    StepCollapse {
        t: f64,
        state: String,
        value: f64,
        derivative: f64,
    },
    #[error("BDF stopped at t = {t:.6e}: {message}; fastest-changing state: {state} (value {value:.6e}, derivative {derivative:.6e})")]
    BdfFailed {
        t: f64,
        message: String,
        state: String,
        value: f64,
        derivative: f64,
    },
    #[error("more than {steps} steps between t = {from:.6e} and t = {to:.6e} (the problem may be stiff); stopped at t = {t:.6e}")]
    TooManySteps { steps: u32, from: f64, to: f64, t: f64 },
    #[error("{method} is stability-limited at t = {t:.6e} (steps of {h:.3e}): reaching t = {t_end:.6e} would take about {steps:.1e} more steps, beyond the limit of {max_steps}; {hint}")]
    StabilityLimited {
        method: &'static str,
        /// What would finish the run.
        hint: String,
        t: f64,
        h: f64,
        t_end: f64,
        steps: f64,
        max_steps: u32,
    },
    #[error("the state has {len} entries; {method} handles at most {max} (use dop853)")]
    TooLarge {
        len: usize,
        max: usize,
        method: &'static str,
    },
}

/// The state entry that changes fastest relative to its tolerance, which is where to look
/// first when a stepper gives up: (its name, value, derivative).
fn fastest_changing(
    kernel: &dyn Kernel,
    last: &[f64],
    solver: &Solver,
    name: &dyn Fn(usize) -> String,
) -> (String, f64, f64) {
    let mut dy = vec![0.0; last.len()];
    kernel.rhs(last, &mut dy);
    let scale = |i: usize| solver.atol + solver.rtol * last[i].abs();
    let i = (0..last.len())
        .max_by(|a, b| (dy[*a].abs() / scale(*a)).total_cmp(&(dy[*b].abs() / scale(*b))))
        .unwrap_or(0);
    (name(i), last[i], dy[i])
}

/// The error for a collapsed step, naming the fastest-changing state entry.
fn step_collapse(
    kernel: &dyn Kernel,
    last: &[f64],
    t: f64,
    solver: &Solver,
    name: &dyn Fn(usize) -> String,
) -> IntegrationError {
    let (state, value, derivative) = fastest_changing(kernel, last, solver, name);
    IntegrationError::StepCollapse {
        t,
        state,
        value,
        derivative,
    }
}

/// The error for a non-finite value a stiff stepper met: state entry `i` (`is_state`) or its
/// derivative, whose `cause` names where the first non-finite value arose.
fn non_finite_entry(
    i: usize,
    t: f64,
    value: f64,
    is_state: bool,
    name: &dyn Fn(usize) -> String,
    cause: impl FnOnce() -> String,
) -> IntegrationError {
    let (quantity, cause) = if is_state {
        (format!("state {}", name(i)), String::new())
    } else {
        (format!("d{}/dt", name(i)), cause())
    };
    IntegrationError::NonFinite {
        quantity,
        value,
        t,
        cause,
    }
}

/// The error for a non-finite entry (row, col) of the exact Jacobian.
fn non_finite_jacobian(row: usize, col: usize, t: f64, value: f64, name: &dyn Fn(usize) -> String) -> IntegrationError {
    IntegrationError::NonFinite {
        quantity: format!("Jacobian entry d(d{}/dt)/d{}", name(row), name(col)),
        value,
        t,
        cause: String::new(),
    }
}

/// The kernel's right-hand side, keeping the first state that gives a non-finite derivative
/// in `bad_input` (to explain the error later).
fn recording_rhs<'a>(
    kernel: &'a dyn Kernel,
    bad_input: &'a RefCell<Option<Vec<f64>>>,
) -> impl Fn(&[f64], &mut [f64]) + 'a {
    move |x: &[f64], dx: &mut [f64]| {
        kernel.rhs(x, dx);
        if dx.iter().any(|v| !v.is_finite()) && bad_input.borrow().is_none() {
            *bad_input.borrow_mut() = Some(x.to_vec());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub evaluations: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// The stepper the run started with (`auto` resolves to dop853 or bdf).
    pub started_with: Method,
    /// The stiff stepper that ran (bdf or rodas4), if any.
    pub stiff: Option<Method>,
    /// Accepted steps of the stiff stepper (included in `accepted`) and the Jacobians it
    /// formed.
    pub stiff_accepted: u64,
    pub jacobians: u64,
    /// Where `auto` handed a stiff explicit run over to the stiff stepper.
    pub switched_at: Option<f64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            evaluations: 0,
            accepted: 0,
            rejected: 0,
            started_with: Method::Auto,
            stiff: None,
            stiff_accepted: 0,
            jacobians: 0,
            switched_at: None,
        }
    }
}

impl Stats {
    /// One line on which steppers ran: `bdf: 421 steps, 40 Jacobians`, or
    /// `dop853 1200 steps, then bdf from t = 12.3: 800 steps, 60 Jacobians`.
    pub fn describe(&self) -> String {
        let explicit = self.accepted - self.stiff_accepted;
        let stiff = self.stiff.unwrap_or(Method::Bdf).name();
        match (self.started_with, self.switched_at) {
            (Method::Rodas4 | Method::Bdf, _) => {
                format!("{stiff}: {} steps, {} Jacobians", self.accepted, self.jacobians)
            }
            (m, Some(t)) => format!(
                "{} {explicit} steps, then {stiff} from t = {t:.4e}: {} steps, {} Jacobians",
                m.name(),
                self.stiff_accepted,
                self.jacobians
            ),
            (m, None) => format!("{}: {} steps", m.name(), self.accepted),
        }
    }
}

/// Default tolerances: eg within 1e-6 relative of a converged reference on the paper's runs
/// (README, "Integration"), far below the 1/sqrt(D) that separates SGD from the ODE. BDF's
/// global error is some 20 times its rtol here (1.8e-6 at rtol 1e-6, 2.8e-7 at 1e-7;
/// `cargo bench --bench diffsol`), hence 1e-7.
pub const DEFAULT_RTOL: f64 = 1e-7;
pub const DEFAULT_ATOL: f64 = 1e-10;

impl Method {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Dop853 => "dop853",
            Method::Dopri5 => "dopri5",
            Method::Rodas4 => "rodas4",
            Method::Bdf => "bdf",
        }
    }
}

/// States and observables at the requested times.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    pub observables: Vec<Vec<f64>>,
    pub stats: Stats,
}

struct Sys<'a> {
    kernel: &'a dyn Kernel,
    /// First non-finite derivative seen: (index, t, value), and the state it came from.
    bad_derivative: Cell<Option<(usize, f64, f64)>>,
    bad_input: RefCell<Option<Vec<f64>>>,
    /// First non-finite state after an accepted step.
    bad_state: Option<(usize, f64, f64)>,
    /// Right-hand sides evaluated, over all steppers of a segment (a stepper that stops at
    /// its step limit reports none).
    evaluations: Cell<u64>,
}

impl System<f64, DVector<f64>> for Sys<'_> {
    fn system(&self, t: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
        self.evaluations.set(self.evaluations.get() + 1);
        self.kernel.rhs(y.as_slice(), dy.as_mut_slice());
        if self.bad_derivative.get().is_none() {
            if let Some(i) = dy.iter().position(|v| !v.is_finite()) {
                self.bad_derivative.set(Some((i, t, dy[i])));
                *self.bad_input.borrow_mut() = Some(y.as_slice().to_vec());
            }
        }
    }
    fn solout(&mut self, t: f64, y: &DVector<f64>, _dy: &DVector<f64>) -> bool {
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            self.bad_state = Some((i, t, y[i]));
            return true;
        }
        false
    }
}

/// The steppers take their system by value; lending it keeps the guard records readable after.
impl System<f64, DVector<f64>> for &mut Sys<'_> {
    fn system(&self, t: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
        (**self).system(t, y, dy)
    }
    fn solout(&mut self, t: f64, y: &DVector<f64>, dy: &DVector<f64>) -> bool {
        (**self).solout(t, y, dy)
    }
}

/// `n` times from `t_min` to `t_end`, evenly spaced in log t, preceded by t = 0.
pub fn log_times(t_min: f64, t_end: f64, n: usize) -> Vec<f64> {
    let mut times = vec![0.0];
    if n == 1 {
        times.push(t_end);
        return times;
    }
    let (a, b) = (t_min.ln(), t_end.ln());
    for i in 0..n {
        let t = if i + 1 == n {
            t_end
        } else {
            (a + (b - a) * i as f64 / (n - 1) as f64).exp()
        };
        times.push(t);
    }
    times
}

/// Explains a non-finite derivative at a state: the first operation that made a non-finite
/// value out of finite inputs (see `Interpreter::diagnose`).
pub type Diagnose<'a> = &'a dyn Fn(&[f64]) -> Option<String>;

/// Integrates from `times[0]` through every later time; `names` name the state entries (for
/// errors); `diagnose` explains non-finite derivatives; `progress` is called with each output
/// time reached.
#[allow(clippy::too_many_arguments)]
pub fn integrate(
    kernel: &dyn Kernel,
    names: &[String],
    y0: Vec<f64>,
    times: &[f64],
    solver: &Solver,
    observable_names: &[String],
    diagnose: Diagnose,
    mut progress: impl FnMut(f64),
) -> Result<Trajectory, IntegrationError> {
    let cause = |state: Option<Vec<f64>>| -> String {
        state
            .and_then(|y| diagnose(&y))
            .map(|c| format!("; the first non-finite value: {c}"))
            .unwrap_or_default()
    };
    let mut y = DVector::from_vec(y0);
    let mut traj = Trajectory {
        times: vec![],
        states: vec![],
        observables: vec![],
        stats: Stats::default(),
    };
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("y[{i}]"));
    let record = |t: f64, y: &DVector<f64>, traj: &mut Trajectory| -> Result<(), IntegrationError> {
        let mut obs = vec![0.0; observable_names.len()];
        kernel.observe(y.as_slice(), &mut obs);
        if let Some(i) = obs.iter().position(|v| !v.is_finite()) {
            // Never a silent NaN in the output: an observable can fail where the states do not.
            return Err(IntegrationError::NonFinite {
                quantity: format!("observable {}", observable_names[i]),
                value: obs[i],
                t,
                cause: String::new(),
            });
        }
        traj.times.push(t);
        traj.states.push(y.as_slice().to_vec());
        traj.observables.push(obs);
        Ok(())
    };
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(IntegrationError::NonFinite {
            quantity: format!("initial state {}", name(i)),
            value: y[i],
            t: times.first().copied().unwrap_or(0.0),
            cause: String::new(),
        });
    }
    record(times[0], &y, &mut traj)?;
    let n = y.len();
    if matches!(solver.method, Method::Rodas4 | Method::Bdf) && n > RODAS_MAX_STATE {
        return Err(IntegrationError::TooLarge {
            len: n,
            max: RODAS_MAX_STATE,
            method: solver.method.name(),
        });
    }
    // Whether the kernel has an exact Jacobian: ask it once, and only where a stiff stepper
    // may run (the probe is an n x n buffer and one Jacobian, which an explicit run never
    // uses).
    let may_run_rodas = matches!(solver.method, Method::Rodas4 | Method::Bdf | Method::Auto);
    let has_jacobian = may_run_rodas && !solver.fd_jacobian && n <= RODAS_MAX_STATE && {
        let mut probe = vec![0.0; n * n];
        kernel.jacobian(y.as_slice(), &mut probe)
    };
    let mut stage = Stage::first(solver.method, n, has_jacobian);
    traj.stats.started_with = stage.method();
    if !matches!(stage, Stage::Explicit { .. }) {
        traj.stats.stiff = Some(stage.method());
    }
    let jacobian = |x: &[f64], jac: &mut [f64]| {
        kernel.jacobian(x, jac);
    };
    let mut rodas_h = 0.0;
    let mut work = crate::rosenbrock::Workspace::default();
    for (index, w) in times.windows(2).enumerate() {
        let (from, to) = (w[0], w[1]);
        if to <= from {
            continue;
        }
        let mut rodas_from = from;
        if let Stage::Explicit {
            method,
            detect_stiffness,
        } = stage
        {
            let mut sys = Sys {
                kernel,
                bad_derivative: Cell::new(None),
                bad_input: RefCell::new(None),
                bad_state: None,
                evaluations: Cell::new(0),
            };
            // A chosen explicit method watches for stiffness too, not to hand over but to stop
            // a run that could not finish (`--method dop853 --lr 1e10` ran for minutes).
            let (mut outcome, mut end, mut stats) = run_segment(&mut sys, from, to, y.clone(), solver, method, true);
            if !detect_stiffness {
                while let Err(ode_solvers::dop_shared::IntegrationError::StiffnessDetected { x }) = outcome {
                    let Some((at, last)) = end.clone() else { break };
                    let t_end = times.last().copied().unwrap_or(to);
                    let h = stats.1;
                    let steps = (t_end - at) / h.max(f64::MIN_POSITIVE);
                    if steps > f64::from(solver.max_steps) {
                        let hint = if solver.method == Method::Auto {
                            format!("the state has {n} entries, more than a stiff method's dense Jacobian takes ({RODAS_MAX_STATE})")
                        } else {
                            "--method auto or bdf integrate stiff runs".to_string()
                        };
                        return Err(IntegrationError::StabilityLimited {
                            hint,
                            method: method.name(),
                            t: x,
                            h,
                            t_end,
                            steps,
                            max_steps: solver.max_steps,
                        });
                    }
                    // Affordable: go on to the next output without the test.
                    traj.stats.evaluations += u64::from(stats.0 .0);
                    traj.stats.accepted += u64::from(stats.0 .1);
                    traj.stats.rejected += u64::from(stats.0 .2);
                    (outcome, end, stats) = run_segment(&mut sys, at, to, last, solver, method, false);
                }
            }
            let stats = stats.0;
            traj.stats.evaluations += u64::from(stats.0);
            traj.stats.accepted += u64::from(stats.1);
            traj.stats.rejected += u64::from(stats.2);
            if let Some((i, t, value)) = sys.bad_state {
                return Err(IntegrationError::NonFinite {
                    quantity: format!("state {}", name(i)),
                    value,
                    t,
                    cause: String::new(),
                });
            }
            let bad_derivative = || {
                sys.bad_derivative
                    .get()
                    .map(|(i, t, value)| IntegrationError::NonFinite {
                        quantity: format!("d{}/dt", name(i)),
                        value,
                        t,
                        cause: cause(sys.bad_input.borrow_mut().take()),
                    })
            };
            match outcome {
                Ok(()) => {
                    y = end.expect("a successful segment has a final state").1;
                    record(to, &y, &mut traj)?;
                    progress(to);
                    continue;
                }
                Err(ode_solvers::dop_shared::IntegrationError::StiffnessDetected { .. }) if detect_stiffness => {
                    if let Some(e) = bad_derivative() {
                        return Err(e);
                    }
                    // Go on from the last accepted explicit step with the stiff method.
                    if let Some((x, last)) = end {
                        rodas_from = x;
                        y = last;
                    }
                    traj.stats.switched_at = Some(rodas_from);
                    stage = Stage::Bdf { exact: has_jacobian };
                    traj.stats.stiff = Some(Method::Bdf);
                }
                Err(ode_solvers::dop_shared::IntegrationError::StepSizeUnderflow { x }) => {
                    if let Some(e) = bad_derivative() {
                        return Err(e);
                    }
                    let last = end.map_or_else(|| y.clone(), |e| e.1);
                    return Err(step_collapse(kernel, last.as_slice(), x, solver, &name));
                }
                Err(ode_solvers::dop_shared::IntegrationError::MaxNumStepReached { x, .. })
                | Err(ode_solvers::dop_shared::IntegrationError::StiffnessDetected { x }) => {
                    if let Some(e) = bad_derivative() {
                        return Err(e);
                    }
                    return Err(IntegrationError::TooManySteps {
                        steps: solver.max_steps,
                        from,
                        to,
                        t: x,
                    });
                }
            }
        }
        if let Stage::Bdf { exact } = stage {
            // BDF keeps its history: it runs through every remaining output in one go.
            let bad_input: RefCell<Option<Vec<f64>>> = RefCell::new(None);
            let f = recording_rhs(kernel, &bad_input);
            // Every remaining output (one at the start time itself is the start state).
            let outputs = &times[index + 1..];
            let mut bs = crate::bdf::BdfStats::default();
            let (explicit_evaluations, explicit_accepted, explicit_rejected) =
                (traj.stats.evaluations, traj.stats.accepted, traj.stats.rejected);
            let mut on_output = |t: f64, state: &[f64]| -> Result<(), IntegrationError> {
                record(t, &DVector::from_column_slice(state), &mut traj)?;
                progress(t);
                Ok(())
            };
            let res = crate::bdf::integrate(
                &f,
                exact.then_some(&jacobian as crate::rosenbrock::JacobianFn),
                rodas_from,
                y.as_slice(),
                outputs,
                solver.rtol,
                solver.atol,
                solver.max_steps,
                &mut bs,
                &mut on_output,
            );
            traj.stats.evaluations = explicit_evaluations + bs.evaluations;
            traj.stats.accepted = explicit_accepted + bs.accepted;
            traj.stats.rejected = explicit_rejected + bs.rejected;
            traj.stats.stiff_accepted = bs.accepted;
            traj.stats.jacobians = bs.jacobians;
            return match res {
                Ok(()) => Ok(traj),
                Err(crate::bdf::OutputOrFailure::Output(e)) => Err(e),
                Err(crate::bdf::OutputOrFailure::Failure(failure)) => Err(match failure {
                    crate::bdf::BdfFailure::NonFinite(i, t, value, is_state) => {
                        non_finite_entry(i, t, value, is_state, &name, || cause(bad_input.borrow_mut().take()))
                    }
                    crate::bdf::BdfFailure::NonFiniteJacobian(row, col, t, value) => {
                        non_finite_jacobian(row, col, t, value, &name)
                    }
                    crate::bdf::BdfFailure::Failed(t, last, message) => {
                        let (state, value, derivative) = fastest_changing(kernel, &last, solver, &name);
                        IntegrationError::BdfFailed {
                            t,
                            message,
                            state,
                            value,
                            derivative,
                        }
                    }
                    crate::bdf::BdfFailure::TooManySteps(t) => {
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
            };
        }
        let Stage::Rosenbrock { exact } = stage else {
            unreachable!("the explicit stage returned or switched above, BDF returned")
        };
        let mut state: Vec<f64> = y.as_slice().to_vec();
        let mut rs = crate::rosenbrock::RodasStats::default();
        let bad_input: RefCell<Option<Vec<f64>>> = RefCell::new(None);
        let f = recording_rhs(kernel, &bad_input);
        let res = crate::rosenbrock::integrate(
            &f,
            exact.then_some(&jacobian as crate::rosenbrock::JacobianFn),
            rodas_from,
            to,
            &mut state,
            &mut rodas_h,
            solver.rtol,
            solver.atol,
            solver.max_steps,
            &mut rs,
            &mut work,
        );
        traj.stats.evaluations += rs.evaluations;
        traj.stats.accepted += rs.accepted;
        traj.stats.rejected += rs.rejected;
        traj.stats.stiff_accepted += rs.accepted;
        traj.stats.jacobians += rs.jacobians;
        match res {
            Ok(()) => {}
            Err(RodasFailure::NonFinite(i, t, value, is_state)) => {
                return Err(non_finite_entry(i, t, value, is_state, &name, || {
                    cause(bad_input.borrow_mut().take())
                }));
            }
            Err(RodasFailure::NonFiniteJacobian(row, col, t, value)) => {
                return Err(non_finite_jacobian(row, col, t, value, &name));
            }
            Err(RodasFailure::StepUnderflow(t)) | Err(RodasFailure::Singular(t)) => {
                return Err(step_collapse(kernel, &state, t, solver, &name));
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
        y = DVector::from_vec(state);
        record(to, &y, &mut traj)?;
        progress(to);
    }
    Ok(traj)
}

/// Which stepper runs now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Dop853 or Dopri5; with `detect_stiffness`, Hairer's test hands over to BDF.
    Explicit { method: Method, detect_stiffness: bool },
    /// Rodas4 with the kernel's exact Jacobian or finite differences.
    Rosenbrock { exact: bool },
    /// BDF with the kernel's exact Jacobian or finite differences.
    Bdf { exact: bool },
}

impl Stage {
    fn first(method: Method, n: usize, has_jacobian: bool) -> Stage {
        match method {
            Method::Dop853 | Method::Dopri5 => Stage::Explicit {
                method,
                detect_stiffness: false,
            },
            Method::Rodas4 => Stage::Rosenbrock { exact: has_jacobian },
            Method::Bdf => Stage::Bdf { exact: has_jacobian },
            // With an exact Jacobian and a small state a stiff step costs about what a Dop853
            // step does, and it never becomes stability-limited.
            Method::Auto if has_jacobian && n <= AUTO_STIFF_STATE => Stage::Bdf { exact: true },
            // Otherwise explicit, handing over once stiff if BDF can take the state: with an
            // exact Jacobian, or finite differences cheap enough (n evaluations a Jacobian).
            Method::Auto => Stage::Explicit {
                method: Method::Dop853,
                detect_stiffness: (has_jacobian && n <= RODAS_MAX_STATE) || n <= AUTO_DIFFERENCES_STATE,
            },
        }
    }

    fn method(self) -> Method {
        match self {
            Stage::Explicit { method, .. } => method,
            Stage::Rosenbrock { .. } => Method::Rodas4,
            Stage::Bdf { .. } => Method::Bdf,
        }
    }
}

/// `auto` starts with BDF on states up to this size when the kernel has an exact Jacobian.
pub const AUTO_STIFF_STATE: usize = 400;
/// `auto` hands a stiff explicit run to BDF with a finite-difference Jacobian only up to this
/// size: beyond, the n evaluations per Jacobian outweigh the steps saved.
pub const AUTO_DIFFERENCES_STATE: usize = 64;

/// The outcome, the last accepted (t, state), and the counts (evaluations, accepted, rejected)
/// with the last step size.
type SegmentOutcome = (
    Result<(), ode_solvers::dop_shared::IntegrationError>,
    Option<(f64, DVector<f64>)>,
    ((u32, u32, u32), f64),
);

/// The explicit steppers keep every accepted step's state until they return; past this many
/// bytes of kept states a segment goes on in a new stepper from where the last one stopped.
const KEPT_STATES_BYTES: usize = 16 << 20;

/// Accepted steps one stepper may take: enough that restarts cost nothing measurable (at
/// least 16 steps of 12 evaluations against one extra evaluation per restart), few enough that
/// the kept states stay under [`KEPT_STATES_BYTES`] (memory O(state), not O(steps x state)).
pub fn steps_per_stepper(n: usize) -> u32 {
    (KEPT_STATES_BYTES / (8 * n.max(1) + 64)).clamp(16, 100_000) as u32
}

fn run_segment(
    sys: &mut Sys,
    from: f64,
    to: f64,
    y: DVector<f64>,
    solver: &Solver,
    method: Method,
    detect_stiffness: bool,
) -> SegmentOutcome {
    let chunk = steps_per_stepper(y.len());
    let (mut x, mut y, mut h) = (from, y, 0.0);
    let (mut evaluations, mut accepted, mut rejected) = (0u32, 0u32, 0u32);
    loop {
        let attempts_so_far = accepted + rejected;
        let allowed = solver.max_steps.saturating_sub(attempts_so_far).min(chunk);
        let (res, last, last_h, stats) =
            run_stepper(sys, x, to, y.clone(), h, allowed, solver, method, detect_stiffness);
        evaluations += stats.0;
        accepted += stats.1;
        rejected += stats.2;
        match res {
            Err(ode_solvers::dop_shared::IntegrationError::MaxNumStepReached { x: reached, .. })
                if accepted + rejected < solver.max_steps && reached > x =>
            {
                // Go on from the last accepted step with its step size.
                x = reached;
                y = last.expect("a stepper that took steps has a last state").1;
                h = last_h;
            }
            other => return (other, last, ((evaluations, accepted, rejected), last_h)),
        }
    }
}

type StepperOutcome = (
    Result<(), ode_solvers::dop_shared::IntegrationError>,
    Option<(f64, DVector<f64>)>,
    f64,
    (u32, u32, u32),
);

/// One stepper from `from` to `to` with at most `max_steps` steps, starting with step `h`
/// (0: the stepper's own guess). Returns the outcome, the last state and step size, and the
/// counts (evaluations, accepted, rejected).
#[allow(clippy::too_many_arguments)]
fn run_stepper(
    sys: &mut Sys,
    from: f64,
    to: f64,
    y: DVector<f64>,
    h: f64,
    max_steps: u32,
    solver: &Solver,
    method: Method,
    detect_stiffness: bool,
) -> StepperOutcome {
    // An explicitly chosen method never stops for stiffness (n_stiff = u32::MAX): a long run
    // legitimately goes through stiff stretches, and TooManySteps reports it if it matters.
    // `auto` tests every step (Hairer's test: 15 stability-limited steps in a row hand over).
    let n_stiff = if detect_stiffness { 1 } else { u32::MAX };
    let evaluations_before = sys.evaluations.get();
    macro_rules! run {
        ($stepper:ident, $beta:expr) => {{
            let mut stepper = $stepper::from_param(
                &mut *sys,
                from,
                to,
                to - from,
                y,
                solver.rtol,
                solver.atol,
                0.9,
                $beta,
                0.333,
                6.0,
                to - from,
                h,
                max_steps,
                n_stiff,
                OutputType::Sparse,
            );
            let res = stepper.integrate();
            let xs = stepper.x_out();
            let last_h = match xs.len() {
                n if n >= 2 => xs[n - 1] - xs[n - 2],
                _ => 0.0,
            };
            let last = stepper
                .y_out()
                .last()
                .cloned()
                .map(|y| (*xs.last().unwrap_or(&from), y));
            // The kept states are the start and one per accepted step.
            let accepted = (xs.len() as u32).saturating_sub(1);
            let rejected = match &res {
                Ok(s) => s.rejected_steps,
                Err(ode_solvers::dop_shared::IntegrationError::MaxNumStepReached { n_step, .. }) => {
                    n_step.saturating_sub(accepted)
                }
                Err(_) => 0,
            };
            (res.map(|_| ()), last, last_h, accepted, rejected)
        }};
    }
    let (res, last, last_h, accepted, rejected) = match method {
        Method::Dopri5 => run!(Dopri5, 0.04),
        _ => run!(Dop853, 0.0),
    };
    let evaluations = (sys.evaluations.get() - evaluations_before) as u32;
    (res, last, last_h, (evaluations, accepted, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test system given by its right-hand side and, optionally, its exact Jacobian.
    struct TestKernel {
        rhs: fn(&[f64], &mut [f64]),
        jacobian: Option<fn(&mut [f64])>,
    }

    impl Kernel for TestKernel {
        fn equations(&self) -> &str {
            "test"
        }
        fn activation(&self) -> crate::averages::ActivationKind {
            // A linear test system: no activation enters it.
            crate::averages::ActivationKind::Linear
        }
        fn k(&self) -> usize {
            1
        }
        fn source(&self) -> &str {
            ""
        }
        fn params(&self) -> &[f64] {
            &[]
        }
        fn params_mut(&mut self) -> &mut [f64] {
            &mut []
        }
        fn rho(&self) -> &[f64] {
            &[]
        }
        fn set_rho(&mut self, _rho: Vec<f64>) {}
        fn rhs(&self, y: &[f64], dy: &mut [f64]) {
            (self.rhs)(y, dy)
        }
        fn observe(&self, y: &[f64], out: &mut [f64]) {
            out[0] = y[0];
        }
        fn is_generated(&self) -> bool {
            true
        }
        fn jacobian(&self, _y: &[f64], jac: &mut [f64]) -> bool {
            self.jacobian.map(|exact| exact(jac)).is_some()
        }
    }

    /// dy_i/dt = -(1 + i mod 3) y_i: a state large enough that one stepper may keep only ~20
    /// steps, integrated over a stretch that needs more.
    const DECAY: TestKernel = TestKernel {
        rhs: |y, dy| {
            for (i, (d, v)) in dy.iter_mut().zip(y).enumerate() {
                *d = -((1 + i % 3) as f64) * v;
            }
        },
        jacobian: None,
    };

    /// y0' = -1000 (y0 - y1), y1' = -y1: after a transient of width 1e-3, y0 follows
    /// (1000/999) e^{-t} and an explicit method is held at h ~ 6e-3 by stability alone.
    fn stiff(exact_jacobian: bool) -> TestKernel {
        TestKernel {
            rhs: |y, dy| {
                dy[0] = -1000.0 * (y[0] - y[1]);
                dy[1] = -y[1];
            },
            jacobian: exact_jacobian.then_some(|jac: &mut [f64]| jac.copy_from_slice(&[-1000.0, 0.0, 1000.0, -1.0])),
        }
    }

    fn run_stiff(method: Method, exact_jacobian: bool) -> Trajectory {
        let solver = Solver {
            method,
            ..Solver::default()
        };
        let times = log_times(0.01, 5.0, 10);
        integrate(
            &stiff(exact_jacobian),
            &[],
            vec![0.0, 1.0],
            &times,
            &solver,
            &["y0".into()],
            &|_| None,
            |_| {},
        )
        .unwrap()
    }

    /// The exact late solution, against which every method must land within its tolerance:
    /// rtol 1e-7 per step leaves a global error of a few 1e-6 relative at most (at t = 5 the value,
    /// 6.7e-3, is far above atol = 1e-10).
    fn assert_on_the_slow_manifold(traj: &Trajectory, what: &str) {
        let t = *traj.times.last().unwrap();
        let exact = 1000.0 / 999.0 * (-t).exp();
        let got = traj.states.last().unwrap()[0];
        assert!((got - exact).abs() <= 1e-5 * exact, "{what}: {got} vs {exact}");
    }

    #[test]
    fn auto_hands_a_stiff_explicit_run_to_bdf() {
        // Without an exact Jacobian auto starts with dop853; once the steps are held by
        // stability (Hairer's test, 15 in a row) it goes on with BDF (finite differences:
        // the state is small). dop853 alone is held at h <= 6.3e-3 (its stability interval on
        // the negative axis is ~6.3, the eigenvalue -1000): about 790 steps to t = 5.
        let auto = run_stiff(Method::Auto, false);
        let explicit = run_stiff(Method::Dop853, false);
        assert_eq!(auto.stats.started_with, Method::Dop853);
        let switched = auto.stats.switched_at.expect("auto switched");
        assert!(switched < 0.5, "switched at t = {switched}");
        assert_eq!(auto.stats.stiff, Some(Method::Bdf));
        assert!(auto.stats.stiff_accepted > 0 && auto.stats.jacobians > 0);
        assert_eq!(explicit.stats.switched_at, None);
        assert!(explicit.stats.accepted > 750, "{}", explicit.stats.accepted);
        // Auto's steps: dop853's until the test fires, then BDF's, whose step grows with the
        // slow solution (about 160 in all at rtol 1e-7, against dop853's ~790 held by
        // stability at any tolerance).
        assert!(
            auto.stats.accepted * 4 < explicit.stats.accepted,
            "auto {} steps, dop853 {}",
            auto.stats.accepted,
            explicit.stats.accepted
        );
        assert_on_the_slow_manifold(&auto, "auto");
        assert_on_the_slow_manifold(&explicit, "dop853");
        assert!(
            auto.stats.describe().starts_with("dop853 "),
            "{}",
            auto.stats.describe()
        );
    }

    #[test]
    fn auto_starts_with_bdf_where_an_exact_jacobian_exists() {
        let auto = run_stiff(Method::Auto, true);
        assert_eq!(auto.stats.started_with, Method::Bdf);
        assert_eq!(auto.stats.switched_at, None);
        assert_eq!(auto.stats.accepted, auto.stats.stiff_accepted);
        // BDF keeps its Jacobian while Newton converges: fewer Jacobians than steps.
        assert!(
            auto.stats.jacobians < auto.stats.accepted,
            "{} Jacobians, {} steps",
            auto.stats.jacobians,
            auto.stats.accepted
        );
        assert_on_the_slow_manifold(&auto, "auto with the exact Jacobian");
    }

    #[test]
    fn rodas4_forms_one_jacobian_per_step() {
        let rodas = run_stiff(Method::Rodas4, true);
        assert_eq!(rodas.stats.started_with, Method::Rodas4);
        assert_eq!(rodas.stats.stiff, Some(Method::Rodas4));
        // A rejected attempt retries at the same state with the same Jacobian.
        assert_eq!(rodas.stats.jacobians, rodas.stats.accepted);
        assert_on_the_slow_manifold(&rodas, "rodas4");
    }

    /// A segment longer than one stepper's share of steps goes on in fresh steppers and still
    /// lands on the exact solution (dop853 at rtol 1e-10: the global error is a few times the
    /// tolerance, 1e-8 of each entry leaves room).
    #[test]
    fn long_segments_are_split_without_changing_the_solution() {
        let n = 100_000;
        let chunk = steps_per_stepper(n);
        assert!(chunk < 30, "{chunk}");
        let y0: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        let solver = Solver {
            rtol: 1e-10,
            atol: 1e-14,
            ..Solver::default()
        };
        for method in [Method::Dop853, Method::Dopri5] {
            let solver = Solver { method, ..solver };
            let traj = integrate(
                &DECAY,
                &[],
                y0.clone(),
                &[0.0, 12.0],
                &solver,
                &["y0".into()],
                &|_| None,
                |_| {},
            )
            .unwrap();
            assert!(
                traj.stats.accepted > 2 * chunk as u64,
                "{method:?}: {} steps",
                traj.stats.accepted
            );
            let end = &traj.states[1];
            for (i, v) in end.iter().enumerate() {
                let exact = y0[i] * (-((1 + i % 3) as f64) * 12.0).exp();
                assert!(
                    (v - exact).abs() <= 1e-8 * y0[i],
                    "{method:?} entry {i}: {v} vs {exact}"
                );
            }
            assert_eq!(traj.states.len(), 2);
        }
    }

    /// The step budget counts over all steppers of a segment: 159 steps to t = 30 at rtol
    /// 1e-13 (limited by accuracy, not by stability, which would stop the run earlier), in
    /// steppers of about 100 steps for this state, against a budget of 120.
    #[test]
    fn the_step_limit_holds_across_split_segments() {
        let n = 20_000;
        assert!(steps_per_stepper(n) < 120);
        let solver = Solver {
            max_steps: 120,
            rtol: 1e-13,
            atol: 1e-16,
            ..Solver::default()
        };
        let y0 = vec![1.0; n];
        let result = integrate(
            &DECAY,
            &[],
            y0,
            &[0.0, 30.0],
            &solver,
            &["y0".into()],
            &|_| None,
            |_| {},
        );
        match result {
            Err(IntegrationError::TooManySteps { steps: 120, .. }) => {}
            Err(e) => panic!("{e}"),
            Ok(traj) => panic!("finished in {} steps", traj.stats.accepted),
        }
    }

    /// BDF stops at the step limit between two outputs, with the outputs it had reached.
    #[test]
    fn bdf_stops_at_the_step_limit() {
        let solver = Solver {
            method: Method::Bdf,
            max_steps: 5,
            ..Solver::default()
        };
        let err = integrate(
            &stiff(true),
            &[],
            vec![0.0, 1.0],
            &[0.0, 5.0],
            &solver,
            &["y0".into()],
            &|_| None,
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, IntegrationError::TooManySteps { steps: 5, .. }), "{err}");
    }

    /// A derivative that turns NaN (here once y1 = e^{-t} falls below 1/2, at t = ln 2) stops
    /// BDF with an error naming it and a time past ln 2, not with NaN in the output.
    #[test]
    fn bdf_names_a_non_finite_derivative() {
        let kernel = TestKernel {
            rhs: |y, dy| {
                dy[0] = -1000.0 * (y[0] - y[1]);
                dy[1] = if y[1] < 0.5 { f64::NAN } else { -y[1] };
            },
            jacobian: Some(|jac: &mut [f64]| jac.copy_from_slice(&[-1000.0, 0.0, 1000.0, -1.0])),
        };
        let solver = Solver {
            method: Method::Bdf,
            ..Solver::default()
        };
        let names = ["y0".to_string(), "y1".to_string()];
        let err = integrate(
            &kernel,
            &names,
            vec![0.0, 1.0],
            &log_times(0.01, 5.0, 10),
            &solver,
            &["y0".into()],
            &|_| None,
            |_| {},
        )
        .unwrap_err();
        match err {
            IntegrationError::NonFinite { quantity, t, .. } => {
                assert_eq!(quantity, "dy1/dt");
                assert!(t > 0.6, "t = {t}");
            }
            other => panic!("{other}"),
        }
    }

    /// A run may take more than the 5000 steps diffsol allows a whole run by default: the
    /// limit is per output interval. A harmonic oscillator over 300 periods at rtol 1e-8
    /// needs far more; BDF's damping keeps the radius within a few percent of 1.
    #[test]
    fn bdf_runs_past_diffsols_default_step_cap() {
        let kernel = TestKernel {
            rhs: |y, dy| {
                dy[0] = y[1];
                dy[1] = -y[0];
            },
            jacobian: Some(|jac: &mut [f64]| jac.copy_from_slice(&[0.0, -1.0, 1.0, 0.0])),
        };
        let solver = Solver {
            method: Method::Bdf,
            rtol: 1e-8,
            ..Solver::default()
        };
        let traj = integrate(
            &kernel,
            &[],
            vec![1.0, 0.0],
            &[0.0, 1000.0, 2000.0],
            &solver,
            &["y0".into()],
            &|_| None,
            |_| {},
        )
        .unwrap();
        assert!(traj.stats.accepted > 5000, "{} steps", traj.stats.accepted);
        let last = traj.states.last().unwrap();
        let radius = (last[0] * last[0] + last[1] * last[1]).sqrt();
        assert!((radius - 1.0).abs() < 0.05, "radius {radius}");
    }
}
