//! The explicit stage: Dormand-Prince 8(5,3) or 5(4) (ode_solvers) from one output time to the
//! next, watching every step for stiffness (Hairer's test). Under `auto` a stiff stretch hands
//! the run to the stiff stage; under a chosen explicit method it stops a run that could not
//! finish.

use std::cell::{Cell, RefCell};

use ode_solvers::dop_shared::IntegrationError as DopError;
use ode_solvers::{DVector, Dop853, Dopri5, OutputType, System};

use ae_core::kernel::Kernel;

use super::error::step_collapse;
use super::{IntegrationError, Method, Run, Solver, StageEnd, RODAS_MAX_STATE};

/// Dop853 or Dopri5 through the outputs from `times[next]` on, starting at `times[next - 1]`
/// in state `y`. With `detect_stiffness`, a stiff stretch ends the stage where the last
/// accepted step left it, if the stiff method is expected to finish sooner
/// ([`super::stiff_pays_off`]); otherwise the run goes on explicitly without the test.
pub(super) fn run(
    run: &mut Run,
    method: Method,
    detect_stiffness: bool,
    exact_jacobian: bool,
    next: usize,
    y: Vec<f64>,
) -> Result<StageEnd, IntegrationError> {
    let mut y = DVector::from_vec(y);
    let mut detect = detect_stiffness;
    let mut index = next - 1;
    let mut from = run.times[index];
    while index + 1 < run.times.len() {
        let to = run.times[index + 1];
        if to <= from {
            index += 1;
            from = run.times[index];
            continue;
        }
        let mut sys = Sys {
            kernel: run.kernel,
            bad_derivative: Cell::new(None),
            bad_input: RefCell::new(None),
            bad_state: None,
            evaluations: Cell::new(0),
        };
        let (outcome, end, h) = interval(run, &mut sys, method, detect, from, to, &y)?;
        if let Some((i, t, value)) = sys.bad_state {
            return Err(IntegrationError::NonFinite {
                quantity: format!("state {}", run.name(i)),
                value,
                t,
                cause: String::new(),
            });
        }
        let bad_derivative = || {
            sys.bad_derivative
                .get()
                .map(|(i, t, value)| IntegrationError::NonFinite {
                    quantity: format!("d{}/dt", run.name(i)),
                    value,
                    t,
                    cause: run.cause(sys.bad_input.borrow_mut().take()),
                })
        };
        match outcome {
            Ok(()) => {
                y = end.expect("a successful segment has a final state").1;
                run.output(to, y.as_slice())?;
                index += 1;
                from = to;
            }
            Err(DopError::StiffnessDetected { .. }) if detect => {
                if let Some(e) = bad_derivative() {
                    return Err(e);
                }
                let (at, state) = end.map_or((from, y.clone()), |(x, last)| (x, last));
                let t_end = run.times.last().copied().unwrap_or(to);
                if super::stiff_pays_off(state.len(), exact_jacobian, at, h, t_end) {
                    // Go on from the last accepted explicit step with the stiff method.
                    return Ok(StageEnd::Stiff {
                        at,
                        state: state.as_slice().to_vec(),
                        next: index + 1,
                    });
                }
                // The stiff method would cost more than the explicit steps left: go on from
                // there without the test.
                run.trajectory.stats.stiffness_declined_at = Some(at);
                detect = false;
                (from, y) = (at, state);
            }
            Err(DopError::StepSizeUnderflow { x }) => {
                if let Some(e) = bad_derivative() {
                    return Err(e);
                }
                let last = end.map_or_else(|| y.clone(), |e| e.1);
                return Err(step_collapse(run.kernel, last.as_slice(), x, run.solver, &|i| {
                    run.name(i)
                }));
            }
            Err(DopError::MaxNumStepReached { x, .. }) | Err(DopError::StiffnessDetected { x }) => {
                if let Some(e) = bad_derivative() {
                    return Err(e);
                }
                return Err(IntegrationError::TooManySteps {
                    steps: run.solver.max_steps,
                    from,
                    to,
                    t: x,
                });
            }
        }
    }
    Ok(StageEnd::Done)
}

/// How an interval ended, the last accepted (t, state), and the last step size.
type IntervalOutcome = (Result<(), DopError>, Option<(f64, DVector<f64>)>, f64);

/// One output interval. A chosen explicit method watches for stiffness too, not to hand over
/// but to stop a run that could not finish (`--method dop853 --lr 1e10` ran for minutes):
/// where the remaining steps are affordable it goes on without the test.
fn interval(
    run: &mut Run,
    sys: &mut Sys,
    method: Method,
    detect_stiffness: bool,
    from: f64,
    to: f64,
    y: &DVector<f64>,
) -> Result<IntervalOutcome, IntegrationError> {
    let solver = run.solver;
    let (mut outcome, mut end, mut counts) = run_segment(sys, from, to, y.clone(), solver, method, true);
    if !detect_stiffness {
        while let Err(DopError::StiffnessDetected { x }) = outcome {
            let Some((at, last)) = end.clone() else { break };
            let t_end = run.times.last().copied().unwrap_or(to);
            let h = counts.1;
            let steps = (t_end - at) / h.max(f64::MIN_POSITIVE);
            if steps > f64::from(solver.max_steps) {
                let hint = match solver.method {
                    Method::Auto if y.len() > RODAS_MAX_STATE => format!(
                        "the state has {} entries, more than a stiff method's dense Jacobian takes ({RODAS_MAX_STATE})",
                        y.len()
                    ),
                    Method::Auto => "--method bdf integrates stiff runs".to_string(),
                    _ => "--method auto or bdf integrate stiff runs".to_string(),
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
            run.count_explicit(counts.0);
            (outcome, end, counts) = run_segment(sys, at, to, last, solver, method, false);
        }
    }
    run.count_explicit(counts.0);
    Ok((outcome, end, counts.1))
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
