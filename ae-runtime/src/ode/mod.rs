//! Adaptive integration with output at chosen times, and guards: a non-finite value or a
//! collapsing step stops the run with an error naming the state and the time.
//!
//! The driver chooses a stage and switches between them; each stage is a stepper of its own
//! behind one outcome ([`StageEnd`]) and one set of counts ([`Stats`]): explicit Dormand-Prince
//! (`explicit`), diffsol's BDF (`bdf`) and the own Rodas4 (`rosenbrock`).

pub mod bdf;
mod error;
mod explicit;
pub mod rosenbrock;

use ae_core::kernel::Kernel;

pub use error::IntegrationError;
pub use explicit::steps_per_stepper;

/// An integration method. The names are the command line's (`--method`), from [`Method::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Auto,
    Bdf,
    Dop853,
    Dopri5,
    Rodas4,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Auto,
        Method::Bdf,
        Method::Dop853,
        Method::Dopri5,
        Method::Rodas4,
    ];

    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Bdf => "bdf",
            Method::Dop853 => "dop853",
            Method::Dopri5 => "dopri5",
            Method::Rodas4 => "rodas4",
        }
    }

    /// What the method is, for `--help`.
    pub fn help(self) -> &'static str {
        match self {
            Method::Auto => "the default: BDF with the exact Jacobian where the kernel has one and the state is small; otherwise Dop853, handing over to BDF when Hairer's test finds the steps stability-limited (stiff) and a dense Jacobian is affordable",
            Method::Bdf => "variable-order BDF (diffsol) reusing its Jacobian and LU across steps (the symbolic Jacobian where the kernel has one, else finite differences; dense linear algebra)",
            Method::Dop853 => "Dormand-Prince 8(5,3), explicit",
            Method::Dopri5 => "Dormand-Prince 5(4), explicit",
            Method::Rodas4 => "Rodas4, a stiffly accurate Rosenbrock method (one Jacobian and LU every step; dense linear algebra)",
        }
    }

    /// Whether the method may form a Jacobian (a stiff stage may run).
    pub fn uses_jacobian(self) -> bool {
        matches!(self, Method::Auto | Method::Bdf | Method::Rodas4)
    }

    /// Whether the method is an explicit one that never switches.
    pub fn is_explicit(self) -> bool {
        matches!(self, Method::Dop853 | Method::Dopri5)
    }
}

#[cfg(feature = "clap")]
impl clap::ValueEnum for Method {
    fn value_variants<'a>() -> &'a [Self] {
        &Method::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.help()))
    }
}

/// States longer than this are refused by Rodas4 and BDF (their dense Jacobian and LU grow as
/// n^2, n^3).
pub const RODAS_MAX_STATE: usize = 2000;

/// `auto` starts with BDF on states up to this size when the kernel has an exact Jacobian.
pub const AUTO_STIFF_STATE: usize = 400;
/// An exact Jacobian costs about this many right-hand sides (the generated one at K = 3: 32,
/// `cargo bench --bench rhs`); one by differences costs n.
const EXACT_JACOBIAN_RHS: usize = 30;

/// Whether a Jacobian by differences costs at most twice an exact one (n <= 60): then `auto`
/// starts with BDF on them as it does with an exact Jacobian, rather than spending an explicit
/// stage on finding the stiffness first (a file of one's own at K = 3, n = 45: 1041 evaluations
/// and 60 Jacobians instead of 4273 evaluations, 5.4 against 3.9 ms of integration).
pub fn differences_as_cheap_as_exact(n: usize) -> bool {
    n <= 2 * EXACT_JACOBIAN_RHS
}
/// Whether BDF is expected to reach `t_end` from `t` at less cost than the explicit method
/// held by stability at steps of `h`, for a state of `n` entries and an `exact` Jacobian or
/// finite differences. Costs are counted in operations, not timed, so that the choice (and
/// the output) does not depend on the machine's load:
/// - a right-hand side: 20 n (vanilla K = 3, n = 45: 334 ns, about 1000 operations);
/// - the explicit method: 12 right-hand sides a step (Dop853), (t_end - t) / h steps;
/// - BDF: at most 1000 steps of two right-hand sides and two triangular solves (2 n^2), and a
///   Jacobian and an LU (n^3 / 3) every tenth step; a Jacobian is n right-hand sides by
///   differences, or 30 for an exact one (the generated symbolic Jacobian cost 32 right-hand
///   sides at K = 3: `cargo bench --bench rhs`).
///
/// The measured runs need far fewer BDF steps (543 for the default run to t = 1000), so the
/// estimate leans towards the explicit method: BDF is taken only where it clearly wins.
pub fn stiff_pays_off(n: usize, exact: bool, t: f64, h: f64, t_end: f64) -> bool {
    let n = n as f64;
    let rhs = 20.0 * n;
    let explicit = 12.0 * rhs * ((t_end - t) / h.max(f64::MIN_POSITIVE));
    let jacobian = if exact {
        EXACT_JACOBIAN_RHS as f64 * rhs
    } else {
        n * rhs
    };
    let (steps, factorisations) = (1000.0, 100.0);
    let bdf = steps * (2.0 * rhs + 2.0 * n * n) + factorisations * (jacobian + n * n * n / 3.0);
    bdf < explicit
}

/// Default tolerances: eg within 1e-6 relative of a converged reference on the paper's runs
/// (README, "Integration"), far below the 1/sqrt(D) that separates SGD from the ODE. BDF's
/// global error is some 20 times its rtol here (1.8e-6 at rtol 1e-6, 2.8e-7 at 1e-7;
/// `cargo bench --bench diffsol`), hence 1e-7.
pub const DEFAULT_RTOL: f64 = 1e-7;
pub const DEFAULT_ATOL: f64 = 1e-10;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Solver {
    pub method: Method,
    pub rtol: f64,
    pub atol: f64,
    /// Steps allowed between two output times.
    pub max_steps: u32,
    /// Stiff stages: use a finite-difference Jacobian even when the kernel has an exact one.
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
    /// Where `auto` found the explicit steps stability-limited but kept them, the stiff
    /// stepper being estimated to cost more.
    pub stiffness_declined_at: Option<f64>,
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
            stiffness_declined_at: None,
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

/// States and observables at the requested times.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectory {
    pub times: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    pub observables: Vec<Vec<f64>>,
    pub stats: Stats,
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

/// How a stage ended, when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StageEnd {
    /// Every output time was reached.
    Done,
    /// The explicit stage found the steps stability-limited: go on with the stiff stage from
    /// `state` at `at`, through the outputs from `times[next]` on.
    Stiff { at: f64, state: Vec<f64>, next: usize },
}

/// Which stepper runs now.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Dop853 or Dopri5; with `detect_stiffness`, Hairer's test hands over to BDF (whose
    /// Jacobian is `exact` or differences) where that pays off.
    Explicit {
        method: Method,
        detect_stiffness: bool,
        exact: bool,
    },
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
                exact: has_jacobian,
            },
            Method::Rodas4 => Stage::Rosenbrock { exact: has_jacobian },
            Method::Bdf => Stage::Bdf { exact: has_jacobian },
            // With an exact Jacobian and a small state a stiff step costs about what a Dop853
            // step does, and it never becomes stability-limited.
            Method::Auto if has_jacobian && n <= AUTO_STIFF_STATE => Stage::Bdf { exact: true },
            Method::Auto if differences_as_cheap_as_exact(n) => Stage::Bdf { exact: has_jacobian },
            // Otherwise explicit, handing over once stiff if BDF can take the state (a dense
            // Jacobian and LU) and is expected to finish sooner (`stiff_pays_off`).
            Method::Auto => Stage::Explicit {
                method: Method::Dop853,
                detect_stiffness: n <= RODAS_MAX_STATE,
                exact: has_jacobian,
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

    /// Runs from `state` at `times[next - 1]` (or the switch time) through the later outputs.
    fn run(self, run: &mut Run, at: f64, state: Vec<f64>, next: usize) -> Result<StageEnd, IntegrationError> {
        match self {
            Stage::Explicit {
                method,
                detect_stiffness,
                exact,
            } => explicit::run(run, method, detect_stiffness, exact, next, state),
            Stage::Bdf { exact } => bdf::run(run, exact, at, &state, next).map(|()| StageEnd::Done),
            Stage::Rosenbrock { exact } => rosenbrock::run(run, exact, next, state).map(|()| StageEnd::Done),
        }
    }
}

/// One integration under way: what every stage reads, and the trajectory they fill.
pub(crate) struct Run<'a> {
    pub(crate) kernel: &'a dyn Kernel,
    names: &'a [String],
    pub(crate) times: &'a [f64],
    pub(crate) solver: &'a Solver,
    observable_names: &'a [String],
    diagnose: Diagnose<'a>,
    progress: &'a mut dyn FnMut(f64),
    pub(crate) trajectory: Trajectory,
}

impl Run<'_> {
    /// The name of state entry `i`.
    pub(crate) fn name(&self, i: usize) -> String {
        self.names.get(i).cloned().unwrap_or_else(|| format!("y[{i}]"))
    }

    /// Where the first non-finite value arose at `state` (starts with "; "), if it can be told.
    pub(crate) fn cause(&self, state: Option<Vec<f64>>) -> String {
        state
            .and_then(|y| (self.diagnose)(&y))
            .map(|c| format!("; the first non-finite value: {c}"))
            .unwrap_or_default()
    }

    /// Keeps the state and observables at output time `t`. Never a silent NaN in the output:
    /// an observable can fail where the states do not.
    fn record(&mut self, t: f64, y: &[f64]) -> Result<(), IntegrationError> {
        let mut obs = vec![0.0; self.observable_names.len()];
        self.kernel.observe(y, &mut obs);
        if let Some(i) = obs.iter().position(|v| !v.is_finite()) {
            return Err(IntegrationError::NonFinite {
                quantity: format!("observable {}", self.observable_names[i]),
                value: obs[i],
                t,
                cause: String::new(),
            });
        }
        self.trajectory.times.push(t);
        self.trajectory.states.push(y.to_vec());
        self.trajectory.observables.push(obs);
        Ok(())
    }

    /// Records an output time reached and reports it.
    pub(crate) fn output(&mut self, t: f64, y: &[f64]) -> Result<(), IntegrationError> {
        if crate::interrupt::requested() {
            return Err(IntegrationError::Interrupted { t });
        }
        self.record(t, y)?;
        (self.progress)(t);
        Ok(())
    }

    /// Adds an explicit stepper's (evaluations, accepted, rejected).
    pub(crate) fn count_explicit(&mut self, (evaluations, accepted, rejected): (u32, u32, u32)) {
        let stats = &mut self.trajectory.stats;
        stats.evaluations += u64::from(evaluations);
        stats.accepted += u64::from(accepted);
        stats.rejected += u64::from(rejected);
    }
}

/// The kernel's right-hand side, keeping the first state that gives a non-finite derivative
/// in `bad_input` (to explain the error later).
pub(crate) fn recording_rhs<'a>(
    kernel: &'a dyn Kernel,
    bad_input: &'a std::cell::RefCell<Option<Vec<f64>>>,
) -> impl Fn(&[f64], &mut [f64]) + 'a {
    move |x: &[f64], dx: &mut [f64]| {
        kernel.rhs(x, dx);
        if dx.iter().any(|v| !v.is_finite()) && bad_input.borrow().is_none() {
            *bad_input.borrow_mut() = Some(x.to_vec());
        }
    }
}

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
    let mut run = Run {
        kernel,
        names,
        times,
        solver,
        observable_names,
        diagnose,
        progress: &mut progress,
        trajectory: Trajectory::default(),
    };
    if let Some(i) = y0.iter().position(|v| !v.is_finite()) {
        return Err(IntegrationError::NonFinite {
            quantity: format!("initial state {}", run.name(i)),
            value: y0[i],
            t: times.first().copied().unwrap_or(0.0),
            cause: String::new(),
        });
    }
    run.record(times[0], &y0)?;
    let n = y0.len();
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
    let has_jacobian = solver.method.uses_jacobian() && !solver.fd_jacobian && n <= RODAS_MAX_STATE && {
        let mut probe = vec![0.0; n * n];
        kernel.jacobian(&y0, &mut probe)
    };
    let mut stage = Stage::first(solver.method, n, has_jacobian);
    run.trajectory.stats.started_with = stage.method();
    if !matches!(stage, Stage::Explicit { .. }) {
        run.trajectory.stats.stiff = Some(stage.method());
    }
    let (mut at, mut state, mut next) = (times[0], y0, 1);
    loop {
        match stage.run(&mut run, at, state, next)? {
            StageEnd::Done => return Ok(run.trajectory),
            StageEnd::Stiff {
                at: switch,
                state: last,
                next: from_output,
            } => {
                run.trajectory.stats.switched_at = Some(switch);
                run.trajectory.stats.stiff = Some(Method::Bdf);
                stage = Stage::Bdf { exact: has_jacobian };
                (at, state, next) = (switch, last, from_output);
            }
        }
    }
}
