//! The jobs behind the subcommands, as library functions: choose a kernel (generated or
//! interpreted), set its parameters and modes, build the initial state, integrate.

use std::sync::Arc;

use ae_core::activation::Activation;
use ae_core::kernel::{Backend, Kernel};
use ae_dsl::ir::Input;
use ae_dsl::layout::Layout;
use ae_dsl::Model;
use ae_runtime::interp::{InitInputs, Interpreter};
use ae_runtime::ode::{integrate, log_times, Method, Solver, Trajectory};
use ae_runtime::sgd::Rates;

use crate::backend;
use crate::error::{input, RunError};
use crate::memory::check_memory;
use crate::schema::{self, csv_name};
use crate::source::{DataSource, InitChoice};

/// Sets modes and named parameters; every parameter without a default must be given.
pub fn configure(
    kernel: &mut dyn Kernel,
    model: &Model,
    rho: Vec<f64>,
    params: &[(String, f64)],
) -> Result<(), RunError> {
    kernel.set_rho(rho);
    for (name, value) in params {
        match model.param_index(name) {
            Some(i) => kernel.params_mut()[i] = *value,
            None => {
                let known: Vec<&str> = model.params.iter().map(|p| p.name.as_str()).collect();
                return input(format!(
                    "equations `{}` have no parameter `{name}` (they have: {})",
                    model.name,
                    known.join(", ")
                ));
            }
        }
    }
    if let Some((p, _)) = model.params.iter().zip(kernel.params()).find(|(_, v)| v.is_nan()) {
        return input(format!(
            "parameter `{}` has no default and was not given (use --param {}=VALUE)",
            p.name, p.name
        ));
    }
    Ok(())
}

/// Everything an ODE run needs. Build one with [`OdeJob::new`] and override what differs:
/// `OdeJob { times, ..OdeJob::new("vanilla", 3, ActivationKind::Erf, source) }`.
#[derive(Debug, Clone)]
pub struct OdeJob {
    pub equations: String,
    pub k: usize,
    /// The activation's name: a built-in one or one the equation file declares.
    pub activation: String,
    /// The data: the spiked model or an empirical data set.
    pub source: DataSource,
    pub init: InitChoice,
    /// The learning rate and weight decay (the files' `lr` and `kappa`), shared with the SGD
    /// side of `compare`.
    pub rates: Rates,
    /// The file's other parameters, by name (`--param NAME=V`).
    pub params: Vec<(String, f64)>,
    pub times: Vec<f64>,
    pub solver: Solver,
    /// The code that evaluates the equations, if the user chose (see `backend`).
    pub backend: Option<Backend>,
}

/// The outcome of an ODE run, with column names for its observables and states.
pub struct OdeRun {
    pub trajectory: Trajectory,
    pub observable_names: Vec<String>,
    pub state_names: Vec<String>,
    /// The state entries that `--states` writes.
    pub state_columns: Vec<usize>,
    /// The code that evaluated the equations, and the seconds spent compiling it in this run.
    pub backend: Backend,
    pub compile_seconds: f64,
}

impl OdeJob {
    /// A job with the command line's defaults for everything but the equations, K, the
    /// activation and the data: a random start (seed 0, std 0.1), lr = 1, kappa = 0, 100
    /// log-spaced times in [0.01, 1000], the default solver, generated code where it exists.
    pub fn new(equations: &str, k: usize, activation: impl ToString, source: DataSource) -> OdeJob {
        OdeJob {
            equations: equations.to_string(),
            k,
            activation: activation.to_string(),
            source,
            init: InitChoice::Random { seed: 0, std: 0.1 },
            rates: Rates::default(),
            params: vec![],
            times: log_times(0.01, 1000.0, 100),
            solver: Solver::default(),
            backend: None,
        }
    }

    /// Modes (rescaled eigenvalues) and initial order parameters for the model.
    pub fn modes_and_init(&self, model: &Model) -> Result<(Vec<f64>, InitInputs), RunError> {
        self.source.modes_and_init(model, self.k, &self.init)
    }

    /// The activation the job names, resolved against the built-ins and the equation file's
    /// own (compiled once per process): what the SGD side of `compare` runs.
    pub fn resolved_activation(&self) -> Result<Activation, RunError> {
        backend::activation_named(&self.equations, &self.activation)
    }

    /// Compiles the equations once for this job: the kernel configured with the modes and
    /// parameters, the state's layout and column names, and the initial state.
    pub fn load(&self) -> Result<ModelHandle, RunError> {
        self.load_with(None)
    }

    /// `load`, with `activation` (resolved against another file) in place of the job's name.
    pub(crate) fn load_with(&self, activation: Option<Activation>) -> Result<ModelHandle, RunError> {
        let file = backend::equation_file(&self.equations)?;
        let model = backend::compiled(&file)?;
        ae_dsl::unroll::check_k(&model, self.k)?;
        let (rho, inputs) = self.modes_and_init(&model)?;
        let activation = match activation {
            Some(a) => a,
            None => backend::activation(&file, &model, &self.activation)?,
        };
        let mut kernel = backend::kernel(&file, &model, self.k, rho.len(), activation, self.backend)?;
        let mut params: Vec<(String, f64)> = self
            .source
            .bulk_params()
            .into_iter()
            .filter(|(name, _)| model.param_index(name).is_some())
            .collect();
        // A file without `lr` or `kappa` (a variant of one's own) is fine as long as they keep
        // their neutral defaults.
        let neutral = Rates::default().named();
        params.extend(
            self.rates
                .named()
                .into_iter()
                .zip(neutral)
                .filter(|((name, value), (_, default))| model.param_index(name).is_some() || value != default)
                .map(|((name, value), _)| (name.to_string(), value)),
        );
        params.extend(self.params.iter().cloned());
        configure(kernel.as_mut(), &model, rho.clone(), &params)?;
        let mut interp = Interpreter::new(model.clone(), &file.text, self.k, activation);
        interp.set_rho(rho.clone());
        interp.params_mut().copy_from_slice(kernel.params());
        let y0 = interp.init(&inputs);
        let layout = Layout::new(&model, self.k, rho.len());
        let columns = ae_dsl::columns::columns(&model, self.k, rho.len(), &[schema::TIME])?;
        Ok(ModelHandle {
            state_names: columns.states,
            state_columns: columns.state_columns,
            observable_names: columns.observables,
            kernel,
            model,
            k: self.k,
            rho,
            layout,
            interp,
            y0,
        })
    }

    pub fn run(&self, progress: impl FnMut(f64)) -> Result<OdeRun, RunError> {
        self.load()?.integrate(&self.times, &self.solver, progress)
    }
}

/// A model compiled once for a job: what it computes (the kernel, configured), how its state
/// is laid out and named, and which states carry the order parameters of docs/theory.md section 4.
/// Rust code finds entries through this handle, never by formatting a state's name.
pub struct ModelHandle {
    pub model: Arc<Model>,
    pub kernel: Box<dyn Kernel>,
    pub k: usize,
    /// The modes the state holds (rescaled eigenvalues), in the state's order.
    pub rho: Vec<f64>,
    pub layout: Layout,
    pub state_names: Vec<String>,
    /// The state entries that `--states` writes (see `ae_dsl::columns`).
    pub state_columns: Vec<usize>,
    pub observable_names: Vec<String>,
    /// The same equations interpreted: initial state and diagnosis of a failed integration.
    interp: Interpreter,
    y0: Vec<f64>,
}

impl ModelHandle {
    /// Column of an observable by its unrolled name (`eg`, `Q[0,1]`).
    pub fn observable(&self, name: &str) -> Option<usize> {
        self.observable_names.iter().position(|n| n == name)
    }

    /// Column of the generalisation error, which `job` needs: a located error if the file
    /// declares no scalar `eg`.
    pub fn require_eg(&self, job: &str) -> Result<usize, RunError> {
        match (self.model.scalar_observable("eg"), self.observable("eg")) {
            (Some(_), Some(i)) => Ok(i),
            _ => input(format!(
                "{}: {job} needs the generalisation error as a scalar observable: add `observe eg = ...`",
                self.model.path
            )),
        }
    }

    /// Whether the state holds every order parameter in `inputs`.
    pub fn carries(&self, inputs: &[Input]) -> bool {
        inputs.iter().all(|i| self.carrier(*i).is_some())
    }

    /// A per-mode scalar state `name[; tau]` that `job` needs, or a located error.
    pub fn require_mode_scalar(&self, name: &str, job: &str, meaning: &str) -> Result<usize, RunError> {
        match self.model.states.iter().position(|s| s.name == name) {
            Some(i) if self.model.states[i].hidden == 0 && self.model.states[i].mode => Ok(i),
            _ => input(format!(
                "{}: {job} needs a per-mode state `state {name}[; tau]` ({meaning})",
                self.model.path
            )),
        }
    }

    /// Column of observable `name[k, l]` for every pair of units, or a located error.
    pub fn require_pair_observable(&self, name: &str, job: &str) -> Result<Vec<Vec<usize>>, RunError> {
        let k = self.k;
        let columns: Option<Vec<Vec<usize>>> = (0..k)
            .map(|a| (0..k).map(|b| self.observable(&format!("{name}[{a},{b}]"))).collect())
            .collect();
        columns.ok_or_else(|| {
            RunError::Input(format!(
                "{}: {job} needs the observable `observe {name}[k, l] = ...`",
                self.model.path
            ))
        })
    }

    /// The state that carries `input`, which `job` needs, or a located error.
    pub fn require_carrier(&self, input_: Input, job: &str) -> Result<usize, RunError> {
        self.carrier(input_).ok_or_else(|| {
            let (hidden, mode) = input_.shape();
            let index = match (hidden, mode) {
                (1, true) => "[k; tau]",
                _ => "[k, l]",
            };
            RunError::Input(format!(
                "{}: {job} needs a state declared `init {}{index}`",
                self.model.path,
                input_.name()
            ))
        })
    }

    /// The state declared `init omega0[k; tau]`, `init Qb0[k, l]`, ...: it holds that order
    /// parameter at every time, whatever the file calls it (see `Model::carrier`).
    fn carrier(&self, input: Input) -> Option<usize> {
        self.model.carrier(input)
    }

    /// The order parameters held in state `y`; those without a carrier are zero.
    pub fn order_parameters(&self, y: &[f64]) -> InitInputs {
        let (k, m) = (self.k, self.rho.len());
        let mut out = ae_runtime::init::informed(k, m, 0.0, 0.0);
        let read = |input: Input, target: &mut Vec<Vec<f64>>| {
            let Some(state) = self.carrier(input) else { return };
            for (a, row) in target.iter_mut().enumerate() {
                for (j, cell) in row.iter_mut().enumerate() {
                    *cell = match input.shape() {
                        (_, true) => y[self.layout.index(state, &[a], Some(j))],
                        _ => y[self.layout.index(state, &[a, j], None)],
                    };
                }
            }
        };
        read(Input::Omega0, &mut out.omega0);
        read(Input::Varpi0, &mut out.varpi0);
        read(Input::Qb0, &mut out.qb0);
        read(Input::Rb0, &mut out.rb0);
        read(Input::Tb0, &mut out.tb0);
        read(Input::T00, &mut out.t00);
        out
    }

    /// The state that the `init` lines build from order parameters `inputs`.
    pub fn state_of(&self, inputs: &InitInputs) -> Vec<f64> {
        self.interp.init(inputs)
    }

    pub fn activation(&self) -> Activation {
        self.kernel.activation()
    }

    /// Refuses a run of `outputs` output times whose memory would exceed the budget: the kept
    /// trajectory (states and observables at every output), the dense Jacobian and
    /// factorisation a stiff stepper may form, and the CSV text of t and the observables, and
    /// of the states `with_states`.
    pub fn check_memory(&self, outputs: usize, solver: &Solver, with_states: bool) -> Result<(), RunError> {
        let n = self.layout.len as f64;
        let observables = self.observable_names.len();
        let stiff = matches!(solver.method, Method::Auto | Method::Bdf | Method::Rodas4)
            && self.layout.len <= ae_runtime::ode::RODAS_MAX_STATE;
        let kept = 8.0 * (outputs as f64 * (n + observables as f64) + if stiff { 3.0 * n * n } else { 0.0 });
        let columns = ode_csv_columns(observables, &self.state_columns, with_states);
        check_memory(
            kept + csv_text_bytes(outputs, columns),
            &format!("{outputs} outputs of {n} states and {observables} observables, and their CSV text"),
        )
    }

    /// Integrates from the initial state, reporting the time reached to `progress`.
    pub fn integrate(&self, times: &[f64], solver: &Solver, progress: impl FnMut(f64)) -> Result<OdeRun, RunError> {
        self.integrate_from(self.y0.clone(), times, solver, progress)
    }

    /// Integrates from state `y0` (see `state_of`), which holds at `times[0]`.
    pub fn integrate_from(
        &self,
        y0: Vec<f64>,
        times: &[f64],
        solver: &Solver,
        progress: impl FnMut(f64),
    ) -> Result<OdeRun, RunError> {
        self.check_memory(times.len(), solver, false)?;
        let trajectory = integrate(
            self.kernel.as_ref(),
            &self.state_names,
            y0,
            times,
            solver,
            &self.observable_names,
            &|y| self.interp.diagnose(y),
            progress,
        )?;
        check_invariants(&trajectory, &self.observable_names, solver)?;
        Ok(OdeRun {
            trajectory,
            observable_names: self.observable_names.clone(),
            state_names: self.state_names.clone(),
            state_columns: self.state_columns.clone(),
            backend: self.kernel.backend(),
            compile_seconds: self.kernel.compile_seconds(),
        })
    }
}

/// The columns of an ODE run's CSV: t, the observables and optionally every state entry.
/// `states` are the state entries' names and the entries written.
pub fn ode_header(observable_names: &[String], states: Option<(&[String], &[usize])>) -> Vec<String> {
    let mut header = vec![schema::TIME.to_string()];
    header.extend(observable_names.iter().map(|n| csv_name(n)));
    if let Some((names, written)) = states {
        header.extend(written.iter().map(|&i| csv_name(&names[i])));
    }
    header
}

/// How many columns `ode_header` gives: t, the observables, and the written state entries
/// `with_states`.
pub fn ode_csv_columns(observables: usize, state_columns: &[usize], with_states: bool) -> usize {
    1 + observables + if with_states { state_columns.len() } else { 0 }
}

/// The most bytes a CSV of `rows` rows of `columns` numbers takes: `{:e}` of an f64 is at most
/// 24 characters, and a separator.
pub fn csv_text_bytes(rows: usize, columns: usize) -> f64 {
    25.0 * rows as f64 * columns as f64
}

/// Writes t, the observables and optionally every state entry as CSV.
pub fn write_csv(run: &OdeRun, with_states: bool, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let states = (&run.state_names[..], &run.state_columns[..]);
    let header = ode_header(&run.observable_names, with_states.then_some(states));
    writeln!(out, "{}", header.join(","))?;
    let tr = &run.trajectory;
    for i in 0..tr.times.len() {
        let mut row = vec![format!("{:e}", tr.times[i])];
        row.extend(tr.observables[i].iter().map(|v| format!("{v:e}")));
        if with_states {
            row.extend(run.state_columns.iter().map(|&j| format!("{:e}", tr.states[i][j])));
        }
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

/// What every run can check of its own numbers, whatever the file: eg is never negative, the
/// diagonals of the overlap matrices Q, T and T0 neither, and each pair of units obeys
/// Cauchy-Schwarz (`X_kl^2 <= X_kk X_ll`), up to the integrator's tolerance (ten times
/// `atol + rtol |value|`). The first breach, by output time, is an error naming the quantity
/// and the time: a run that breaks them has integrated nonsense, whatever it reports.
fn check_invariants(
    trajectory: &ae_runtime::ode::Trajectory,
    names: &[String],
    solver: &Solver,
) -> Result<(), RunError> {
    let find = |name: &str| names.iter().position(|n| n == name);
    let slack = |v: f64| 10.0 * (solver.atol + solver.rtol * v.abs());
    let eg = find("eg");
    let matrices: Vec<(&str, Vec<Vec<Option<usize>>>)> = ["Q", "T", "T0"]
        .into_iter()
        .map(|m| {
            let k = (0..).take_while(|k| find(&format!("{m}[{k},{k}]")).is_some()).count();
            (
                m,
                (0..k)
                    .map(|i| (0..k).map(|j| find(&format!("{m}[{i},{j}]"))).collect())
                    .collect(),
            )
        })
        .collect();
    for (t, o) in trajectory.times.iter().zip(&trajectory.observables) {
        let broken = |what: String, value: f64, rule: &str| {
            Err(RunError::Diverged(format!(
                "{what} = {value:e} at t = {t:e}, but {rule}: the integration cannot be trusted (a tighter --rtol or --atol, or another --method)"
            )))
        };
        if let Some(e) = eg.filter(|e| o[*e] < -slack(o[*e])) {
            return broken("eg".into(), o[e], "a mean squared error is never negative");
        }
        for (m, index) in &matrices {
            for (i, row) in index.iter().enumerate() {
                let Some(ii) = row[i] else { continue };
                if o[ii] < -slack(o[ii]) {
                    return broken(format!("{m}[{i},{i}]"), o[ii], "a squared norm is never negative");
                }
                for (j, ij) in row.iter().enumerate().skip(i + 1) {
                    let (Some(ij), Some(jj)) = (ij, index[j][j]) else {
                        continue;
                    };
                    let (square, bound) = (o[*ij] * o[*ij], o[ii].max(0.0) * o[jj].max(0.0));
                    if square > bound + slack(bound) + slack(o[*ij]).powi(2) + 2.0 * o[*ij].abs() * slack(o[*ij]) {
                        return broken(
                            format!("{m}[{i},{j}]^2"),
                            square,
                            &format!("it is at most {m}[{i},{i}] {m}[{j},{j}] = {bound:e}"),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
