//! The command line: argument definitions, their validation into jobs, and the subcommands'
//! output (the binary only calls `main`; `reproduce` reuses the same definitions).

use std::io::Write;
use std::process::ExitCode;

use crate::compare::{CompareJob, Measure};
use crate::reduced::ReducedJob;
use crate::run::{write_csv, InitChoice, OdeJob, RunError};
use ae_runtime::averages::ActivationKind;
use ae_runtime::data::{Dim, EigenFamily, Spiked, Weights};
use ae_runtime::integrate::{log_times, Method, Solver};
use ae_runtime::sgd::{Rule, SgdConfig};
use std::sync::Arc;

use ae_runtime::realdata::{self, Draw, Format, LoadOptions, RealData};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "aedyn",
    version,
    about = "Learning dynamics of shallow non-linear autoencoders: ODEs of the order parameters, generated from equation files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Integrate the order-parameter ODEs and write eg and the order parameters as CSV.
    Ode(OdeArgs),
    /// Run the ODEs and N SGD replicas from the same initial weights; write both as one CSV.
    Compare(CompareArgs),
    /// Integrate the full equations from a random start until the units align with the spikes,
    /// then the reduced long-time equations (SPEC section 7) from that state; report where the
    /// two coincide and the long-time power laws. Needs K = number of spikes.
    ReducedVsFull(ReducedArgs),
    /// Run a checked-in experiment (experiments/*.toml): its runs, CSV files and plots (PNG
    /// and SVG) into one directory. `aedyn reproduce --list` shows what exists.
    Reproduce(ReproduceArgs),
}

#[derive(Args)]
struct ReproduceArgs {
    /// Experiment: a shipped name (see --list) or the path of a .toml file.
    name: Option<String>,
    /// List the shipped experiments.
    #[arg(long)]
    list: bool,
    /// Directory for the CSV files and plots [default: results/<name>].
    #[arg(long)]
    out_dir: Option<String>,
    /// Print the command line of every run, and run nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    report: Reporting,
}

#[derive(Args)]
struct ModelArgs {
    /// Equations: a shipped name (vanilla, truncated, full_spectrum, density) or the path of an .ae file
    /// (interpreted).
    #[arg(long, default_value = "vanilla")]
    equations: String,
    /// Number of hidden units K.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Activation g: erf (erf(x/sqrt 2)), linear, relu, tanh (quadrature).
    #[arg(long, default_value = "erf")]
    activation: String,
    /// Spike strengths rho~_m, comma-separated (the equations use rho~_m + sigma^2/D).
    #[arg(long, default_value = "9,3,1", allow_hyphen_values = true)]
    spikes: String,
    /// Bulk standard deviation sigma.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    sigma: f64,
    /// Learning rate eta.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    lr: f64,
    /// Weight decay kappa (per unit time).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    kappa: f64,
    /// Input dimension D, or `inf` for the strict limit (the bulk freezes; not uniform in time).
    #[arg(long, default_value = "1000")]
    d: String,
    /// Final time t (t = SGD steps / D).
    #[arg(long, default_value_t = 1000.0, allow_hyphen_values = true)]
    t_end: f64,
    /// First output time after t = 0; outputs are log-spaced from here to --t-end.
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true)]
    t_min: f64,
    /// Number of log-spaced output times (besides t = 0).
    #[arg(long, default_value_t = 100)]
    points: usize,
    /// Seed of the initial weights (and of random eigenvectors).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standard deviation sigma0 of the i.i.d. initial weights.
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    init_std: f64,
    /// Informed start `a,b`: w_k = a e_k, v_k = b sqrt(D) e_k (needs K <= M).
    #[arg(long, allow_hyphen_values = true)]
    informed: Option<String>,
    /// Perfect start at encoder scale `a`: w_k = a e_k and v_k = b_k sqrt(D) e_k with the b_k
    /// that minimises the aligned error, E[u g(a u)] / E[g(a u)^2], u ~ N(0, rho_k) (SPEC
    /// section 7; spiked model, K <= M).
    #[arg(long, allow_hyphen_values = true)]
    perfect: Option<f64>,
    /// Initial weights from a file: 2K lines of D numbers (encoder rows, then decoder rows).
    #[arg(long)]
    weights: Option<String>,
    /// Spike eigenvectors: random, sinusoidal or canonical.
    #[arg(long, default_value = "random")]
    eigenvectors: String,
    /// Real data instead of the spiked model: CSV (optionally gzipped), IDX, CIFAR-10 .bin,
    /// .npy, or a JPEG/PNG photograph with --patch. Needs --equations full_spectrum.
    #[arg(long)]
    data: Option<String>,
    /// Data format when the file name does not tell: csv, idx, cifar, npy, image.
    #[arg(long)]
    format: Option<String>,
    /// Side P of the grey P x P patches cut from a photograph (D = P^2).
    #[arg(long)]
    patch: Option<usize>,
    /// Pixels between neighbouring patches' corners (default: P, non-overlapping; smaller
    /// strides give overlapping patches and more samples).
    #[arg(long)]
    stride: Option<usize>,
    /// CSV data: drop the last column (a class label, as in data/digits.csv.gz).
    #[arg(long)]
    drop_last_column: bool,
    /// Use at most this many samples of the data (0: all).
    #[arg(long, default_value_t = 0)]
    max_samples: usize,
    /// Further equation parameters, NAME=VALUE (repeatable).
    #[arg(long = "param", allow_hyphen_values = true)]
    params: Vec<String>,
    /// Integrator: dop853 or dopri5 (explicit), rodas4 (stiff; small states only)
    /// [default: dop853; rodas4 for reduced-vs-full, whose long runs are stiff].
    #[arg(long)]
    method: Option<String>,
    /// Relative tolerance of the adaptive step.
    #[arg(long, default_value_t = 1e-10)]
    rtol: f64,
    /// Absolute tolerance of the adaptive step.
    #[arg(long, default_value_t = 1e-12)]
    atol: f64,
    /// rodas4: a finite-difference Jacobian even where the generated code has the symbolic one
    /// (vanilla, truncated, reduced with erf, linear or relu), to compare the two.
    #[arg(long)]
    fd_jacobian: bool,
    /// Use the interpreter even where generated code exists.
    #[arg(long)]
    interpret: bool,
}

/// What a subcommand says besides its files: messages and progress on stderr, a JSON summary.
#[derive(Args)]
struct Reporting {
    /// No messages or progress bars on standard error.
    #[arg(long)]
    quiet: bool,
    /// Print a JSON summary on standard output (ode and compare: needs --out for the CSV).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct OdeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Also write every state entry.
    #[arg(long)]
    states: bool,
    /// Output CSV file (default: standard output).
    #[arg(long)]
    out: Option<String>,
    #[command(flatten)]
    report: Reporting,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Number of SGD replicas: the same initial weights, independent sample streams.
    #[arg(long, default_value_t = 4)]
    seeds: usize,
    /// Worker threads for the replicas (0: all cores). The output does not depend on it.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// With --data: how SGD draws samples: online (uniform at every step), epochs (passes over
    /// the fixed set), gaussian (Gaussian samples with the data's covariance).
    #[arg(long)]
    draw: Option<String>,
    /// Also write each replica's final |cos| between decoder rows and spike directions
    /// (K rows per replica, one column per spike) to this CSV file.
    #[arg(long)]
    overlaps: Option<String>,
    /// Size of a held-out test set: adds a Monte-Carlo eg of the SGD runs (0: none).
    #[arg(long, default_value_t = 0)]
    test_samples: usize,
    /// SGD rule: vanilla, truncated or sanger.
    #[arg(long, default_value = "vanilla")]
    rule: String,
    /// Tied weights (decoder = encoder) in the SGD runs.
    #[arg(long)]
    tied: bool,
    /// Train a bias in each pre-activation of the SGD runs (eg then comes from the test set:
    /// give --test-samples).
    #[arg(long)]
    bias: bool,
    /// Initial value of every trained bias.
    #[arg(long, default_value_t = 0.5, allow_hyphen_values = true)]
    bias_init: f64,
    /// Output CSV file (default: standard output).
    #[arg(long)]
    out: Option<String>,
    #[command(flatten)]
    report: Reporting,
}

#[derive(Args)]
struct ReducedArgs {
    /// The full run: --equations (default vanilla), --t-end (its end), --method, ...
    #[command(flatten)]
    model: ModelArgs,
    /// Equations of the reduced run.
    #[arg(long, default_value = "reduced")]
    reduced_equations: String,
    /// End time of the reduced run (at least --t-end).
    #[arg(long, default_value_t = 1e7, allow_hyphen_values = true)]
    t_reduced: f64,
    /// The full run counts as aligned once every unit has at most this share of its encoder
    /// variance (Q_kk) and of its decoder norm (T0_kk) off its spike.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    align_tol: f64,
    /// Output: <prefix>_full.csv (t, eg, misalignment, order parameters) and
    /// <prefix>_reduced.csv (t, eg, a and b per spike).
    #[arg(long, default_value = "reduced_vs_full")]
    out_prefix: String,
    #[command(flatten)]
    report: Reporting,
}

/// A progress bar on stderr that appears only once a run has lasted a second (or the seconds
/// in `AEDYN_PROGRESS_AFTER`, which the tests set to 0 so that a short run is enough to show
/// it), and never with --quiet or when stderr is not a terminal (indicatif hides it then).
struct Progress {
    bar: indicatif::ProgressBar,
    start: std::time::Instant,
    after_seconds: f64,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool, len: u64, what: &str) -> Progress {
        let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::hidden());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {percent:>3}% {elapsed} (eta {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        let after_seconds = std::env::var("AEDYN_PROGRESS_AFTER")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(1.0);
        Progress {
            bar,
            start: std::time::Instant::now(),
            after_seconds,
            quiet,
        }
    }

    fn show_if_slow(&self) {
        if !self.quiet && self.bar.is_hidden() && self.start.elapsed().as_secs_f64() >= self.after_seconds {
            self.bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    fn set(&self, pos: u64) {
        self.show_if_slow();
        self.bar.set_position(pos);
    }

    fn inc(&self, n: u64) {
        self.show_if_slow();
        self.bar.inc(n);
    }

    /// Position of time t on a log scale from `t_min` to `t_end`, out of 1000.
    fn log_position(t: f64, t_min: f64, t_end: f64) -> u64 {
        if t <= t_min {
            return 0;
        }
        (1000.0 * (t / t_min).ln() / (t_end / t_min).ln()).clamp(0.0, 1000.0) as u64
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// With --json the summary takes standard output, so the CSV must go to a file.
fn check_json(json: bool, out: &Option<String>) -> Result<(), RunError> {
    if json && out.is_none() {
        return bad("--json prints the summary on standard output: give --out for the CSV");
    }
    Ok(())
}

fn print_json(json: bool, value: serde_json::Value) -> Result<(), RunError> {
    if json {
        say(&value.to_string())?;
    }
    Ok(())
}

/// One line on standard output; a closed or full output is an error, not a panic.
fn say(line: &str) -> Result<(), RunError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| RunError::Io(format!("cannot write to standard output: {e}")))
}

fn bad<T>(msg: impl Into<String>) -> Result<T, RunError> {
    Err(RunError::Input(msg.into()))
}

fn finite(name: &str, v: f64) -> Result<f64, RunError> {
    if v.is_finite() {
        Ok(v)
    } else {
        bad(format!("--{name} must be a finite number, got {v}"))
    }
}

fn parse_list(name: &str, s: &str) -> Result<Vec<f64>, RunError> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<f64>()
                .map_err(|_| RunError::Input(format!("--{name}: `{}` is not a number", x.trim())))
                .and_then(|v| finite(name, v))
        })
        .collect()
}

fn read_weights(path: &str, k: usize) -> Result<Weights, RunError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RunError::Input(format!("cannot read --weights {path}: {e}")))?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|x| !x.is_empty())
                .map(|x| {
                    x.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(|| RunError::Input(format!("{path}:{}: `{x}` is not a finite number", i + 1)))
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    if rows.len() != 2 * k {
        return bad(format!(
            "{path}: expected {} rows (K encoder rows, then K decoder rows), found {}",
            2 * k,
            rows.len()
        ));
    }
    let d = rows[0].len();
    if let Some(i) = rows.iter().position(|r| r.len() != d) {
        return bad(format!(
            "{path}: row {} has {} numbers, row 1 has {d}",
            i + 1,
            rows[i].len()
        ));
    }
    let v = rows[k..].to_vec();
    let w = rows[..k].to_vec();
    Ok(Weights { w, v })
}

fn ode_job(a: &ModelArgs) -> Result<OdeJob, RunError> {
    ode_job_with(a, "dop853")
}

/// The job the model arguments describe, with `default_method` when --method is not given.
fn ode_job_with(a: &ModelArgs, default_method: &str) -> Result<OdeJob, RunError> {
    let activation = ActivationKind::parse(&a.activation).ok_or_else(|| {
        RunError::Input(format!(
            "unknown --activation `{}`: expected erf, linear, relu or tanh",
            a.activation
        ))
    })?;
    if a.k == 0 {
        return bad("--k must be at least 1");
    }
    let d = match a.d.as_str() {
        "inf" | "infinity" => Dim::Infinite,
        s => match s.parse::<usize>() {
            Ok(d) if d > 0 => Dim::Finite(d),
            _ => return bad(format!("--d must be a positive whole number or `inf`, got `{s}`")),
        },
    };
    let spikes = parse_list("spikes", &a.spikes)?;
    if let Some(s) = spikes.iter().find(|s| **s <= 0.0) {
        return bad(format!("--spikes must be positive, got {s}"));
    }
    if let Dim::Finite(d) = d {
        if d <= a.k {
            return bad(format!("--d ({d}) must exceed --k ({})", a.k));
        }
        if spikes.len() > d {
            return bad(format!("{} spikes do not fit in D = {d}", spikes.len()));
        }
        if d > 1 << 24 {
            return bad(format!("--d {d} is too large (at most {})", 1 << 24));
        }
    }
    let sigma = finite("sigma", a.sigma)?;
    if sigma < 0.0 {
        return bad("--sigma must be non-negative");
    }
    if finite("lr", a.lr)? <= 0.0 {
        return bad("--lr must be positive");
    }
    if finite("kappa", a.kappa)? < 0.0 {
        return bad("--kappa must be non-negative");
    }
    let t_end = finite("t-end", a.t_end)?;
    let t_min = finite("t-min", a.t_min)?;
    if t_end <= 0.0 {
        return bad("--t-end must be positive");
    }
    if t_min <= 0.0 || t_min > t_end {
        return bad("--t-min must be positive and at most --t-end");
    }
    if a.points == 0 || a.points > 1_000_000 {
        return bad("--points must be between 1 and 1000000");
    }
    if !(finite("rtol", a.rtol)? > 0.0 && finite("atol", a.atol)? > 0.0) {
        return bad("--rtol and --atol must be positive");
    }
    if finite("init-std", a.init_std)? <= 0.0 {
        return bad("--init-std must be positive");
    }
    let family = EigenFamily::parse(&a.eigenvectors).ok_or_else(|| {
        RunError::Input(format!(
            "unknown --eigenvectors `{}`: expected random, sinusoidal or canonical",
            a.eigenvectors
        ))
    })?;
    let method_name = a.method.as_deref().unwrap_or(default_method);
    if a.fd_jacobian && method_name != "rodas4" {
        return bad(format!(
            "--fd-jacobian is for --method rodas4 (the explicit methods use no Jacobian; this run uses {method_name})"
        ));
    }
    let method = match method_name {
        "dop853" => Method::Dop853,
        "dopri5" => Method::Dopri5,
        "rodas4" => Method::Rodas4,
        other => return bad(format!("unknown --method `{other}`: expected dop853, dopri5 or rodas4")),
    };
    let starts = [a.informed.is_some(), a.weights.is_some(), a.perfect.is_some()];
    if starts.iter().filter(|s| **s).count() > 1 {
        return bad("give at most one of --informed, --perfect and --weights");
    }
    let init = match (&a.informed, &a.weights) {
        (Some(s), _) => {
            let v = parse_list("informed", s)?;
            let [a_, b_] = v[..] else {
                return bad("--informed takes two numbers `a,b`");
            };
            InitChoice::Informed { a: a_, b: b_ }
        }
        (None, Some(path)) => InitChoice::Weights(read_weights(path, a.k)?),
        (None, None) => InitChoice::Random {
            seed: a.seed,
            std: a.init_std,
        },
    };
    let mut params = vec![("lr".to_string(), a.lr), ("kappa".to_string(), a.kappa)];
    for p in &a.params {
        let Some((name, value)) = p.split_once('=') else {
            return bad(format!("--param takes NAME=VALUE, got `{p}`"));
        };
        let value = value
            .trim()
            .parse::<f64>()
            .map_err(|_| RunError::Input(format!("--param {name}: `{value}` is not a number")))?;
        let name = name.trim();
        if name == "lr" || name == "kappa" {
            // Through --param they would reach the ODE but not the SGD replicas, unchecked.
            return bad(format!(
                "set {name} with --{name}, not --param (the SGD side and the checks read --{name})"
            ));
        }
        params.push((name.to_string(), finite("param", value)?));
    }
    let data = Spiked { d, spikes, sigma };
    let init = match a.perfect {
        None => init,
        Some(scale) => {
            if !scale.is_finite() || scale == 0.0 {
                return bad("--perfect takes a finite, non-zero encoder scale a");
            }
            if a.data.is_some() {
                return bad("--perfect needs the spiked model (not --data)");
            }
            let rho = data.spike_rho();
            if a.k > rho.len() {
                return bad(format!("--perfect needs K <= M (K = {}, M = {})", a.k, rho.len()));
            }
            let b = rho[..a.k]
                .iter()
                .map(|r| ae_runtime::init::perfect_decoder(activation, *r, scale))
                .collect();
            InitChoice::Aligned { a: vec![scale; a.k], b }
        }
    };
    Ok(OdeJob {
        equations: a.equations.clone(),
        k: a.k,
        activation,
        data,
        family,
        eigen_seed: a.seed,
        init,
        params,
        times: log_times(t_min, t_end, a.points),
        solver: Solver {
            method,
            rtol: a.rtol,
            atol: a.atol,
            fd_jacobian: a.fd_jacobian,
            ..Solver::default()
        },
        interpret: a.interpret,
        real: load_data(a)?,
    })
}

/// Loads, standardises and diagonalises `--data`, if given.
fn load_data(a: &ModelArgs) -> Result<Option<Arc<RealData>>, RunError> {
    let Some(path) = &a.data else {
        if a.patch.is_some() || a.format.is_some() || a.stride.is_some() || a.drop_last_column {
            return bad("--patch, --stride, --format and --drop-last-column go with --data");
        }
        return Ok(None);
    };
    let format = match &a.format {
        Some(f) => Some(Format::parse(f).ok_or_else(|| {
            RunError::Input(format!(
                "unknown --format `{f}`: expected csv, idx, cifar, npy or image"
            ))
        })?),
        None => None,
    };
    let options = LoadOptions {
        format,
        patch: a.patch,
        stride: a.stride,
        drop_last_column: a.drop_last_column,
        max_samples: a.max_samples,
    };
    let samples = realdata::load(path, &options).map_err(|e| RunError::Input(e.to_string()))?;
    let data = RealData::new(samples).map_err(|e| RunError::Input(e.to_string()))?;
    Ok(Some(Arc::new(data)))
}

/// One line on stderr about the real data a run uses.
fn report_data(job: &OdeJob) {
    if let Some(real) = &job.real {
        eprintln!(
            "data: {}: {} samples, D = {} (centred, divided by {:.4} so that tr(Omega)/D = 1); top eigenvalue / D = {:.4}",
            real.source,
            real.rows.len(),
            real.d,
            real.scale,
            real.eigenvalues[0] / real.d as f64
        );
    }
}

/// Writes `buf` to `path` whole or not at all: into a temporary file beside it, flushed to
/// disk, then renamed over it, so that a full disk or an interrupted run never leaves a cut-off
/// file that looks valid (or destroys the old one). A path that exists and is not a regular
/// file (`/dev/null`, a pipe) is written directly: renaming over it would replace it.
fn write_atomically(path: &str, buf: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let target = std::path::Path::new(path);
    if target.metadata().is_ok_and(|m| !m.is_file()) {
        return std::fs::write(target, buf);
    }
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let temporary = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = std::fs::File::create(&temporary)
        .and_then(|mut f| f.write_all(buf).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&temporary, target));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_output(out: &Option<String>, buf: &[u8]) -> Result<(), RunError> {
    match out {
        Some(path) => write_atomically(path, buf).map_err(|e| RunError::Io(format!("cannot write {path}: {e}"))),
        None => std::io::stdout()
            .write_all(buf)
            .map_err(|e| RunError::Io(e.to_string())),
    }
}

fn compare_job(a: &CompareArgs) -> Result<CompareJob, RunError> {
    let ode = ode_job(&a.model)?;
    if a.seeds == 0 || a.seeds > 10_000 {
        return bad("--seeds must be between 1 and 10000");
    }
    if a.test_samples > 1_000_000 {
        return bad("--test-samples must be at most 1000000");
    }
    let rule = match a.rule.as_str() {
        "vanilla" => Rule::Vanilla,
        "truncated" => Rule::Truncated,
        "sanger" => Rule::Sanger,
        other => {
            return bad(format!(
                "unknown --rule `{other}`: expected vanilla, truncated or sanger"
            ))
        }
    };
    let sgd = SgdConfig {
        activation: ode.activation,
        rule,
        lr: a.model.lr,
        kappa: a.model.kappa,
        tied: a.tied,
        train_bias: a.bias,
        bias_init: finite("bias-init", a.bias_init)?,
    };
    if a.draw.is_some() && a.model.data.is_none() {
        return bad("--draw goes with --data (the spiked model draws its own Gaussian samples)");
    }
    let draw = match a.draw.as_deref().unwrap_or("online") {
        "online" => Draw::Online,
        "epochs" => Draw::Epochs,
        "gaussian" => Draw::Gaussian,
        other => return bad(format!("unknown --draw `{other}`: expected online, epochs or gaussian")),
    };
    if a.bias && a.test_samples == 0 {
        return bad("with --bias eg is measured on a test set: give --test-samples (e.g. 10000)");
    }
    Ok(CompareJob {
        draw,
        ode,
        seeds: a.seeds,
        sgd,
        threads: a.threads,
        test_samples: a.test_samples,
    })
}

fn run_compare(a: &CompareArgs) -> Result<(), RunError> {
    let job = compare_job(a)?;
    job.d()?;
    check_json(a.report.json, &a.out)?;
    if !a.report.quiet {
        report_data(&job.ode);
    }
    let start = std::time::Instant::now();
    let t_end = job.ode.times.last().copied().unwrap_or(0.0);
    let total = (job.seeds as f64 * t_end * job.d()? as f64) as u64;
    let progress = Progress::new(a.report.quiet, total, "SGD steps");
    let run = job.run_with_progress(&|n| progress.inc(n))?;
    drop(progress);
    let measure = Measure::new(&job.ode, job.ode.k)?;
    let names = ae_dsl::unroll::observable_names(measure.interp_model(), job.ode.k);
    let mut buf = Vec::new();
    run.write_csv(&names, &mut buf)
        .map_err(|e| RunError::Io(e.to_string()))?;
    if let Some(path) = &a.overlaps {
        let mut ov = Vec::new();
        run.write_overlaps_csv(&mut ov)
            .map_err(|e| RunError::Io(e.to_string()))?;
        write_output(&Some(path.clone()), &ov)?;
    }
    write_output(&a.out, &buf)?;
    let (mean, std) = run.sgd_eg().last().copied().unwrap_or((f64::NAN, f64::NAN));
    let eg_ode = run.ode_eg().last().copied().unwrap_or(f64::NAN);
    let seconds = start.elapsed().as_secs_f64();
    if !a.report.quiet {
        eprintln!(
            "t = {t_end}: eg ODE {eg_ode:.6}, SGD {mean:.6} +- {std:.6} ({} replicas) in {seconds:.2} s",
            job.seeds,
        );
    }
    print_json(
        a.report.json,
        serde_json::json!({
            "command": "compare",
            "t_end": t_end,
            "eg_ode": eg_ode,
            "eg_sgd_mean": mean,
            "eg_sgd_std": std,
            "replicas": job.seeds,
            "pca_errors": run.pca,
            "final_bias": run.final_bias,
            "seconds": seconds,
            "out": a.out,
        }),
    )?;
    Ok(())
}

fn run_ode(args: &OdeArgs) -> Result<(), RunError> {
    let a = &args.model;
    let job = ode_job(a)?;
    if job.data.d == Dim::Infinite && !args.report.quiet {
        eprintln!("warning: --d inf is the strict limit: the bulk freezes, which is not uniform in time (SPEC section 6); finite D keeps every term");
    }
    if !args.report.quiet {
        report_data(&job);
    }
    check_json(args.report.json, &args.out)?;
    let start = std::time::Instant::now();
    let (t_min, t_end) = (
        job.times.get(1).copied().unwrap_or(1.0),
        job.times.last().copied().unwrap_or(1.0),
    );
    let progress = Progress::new(args.report.quiet, 1000, "ODE time");
    let run = job.run(|t| progress.set(Progress::log_position(t, t_min, t_end)))?;
    drop(progress);
    let elapsed = start.elapsed();
    let mut buf = Vec::new();
    write_csv(&run, args.states, &mut buf).map_err(|e| RunError::Io(e.to_string()))?;
    write_output(&args.out, &buf)?;
    // A file of one's own need not observe eg: then the summary names none.
    let eg_index = run.observable_names.iter().position(|n| n == "eg");
    let final_eg = eg_index.and_then(|i| run.trajectory.observables.last().map(|o| o[i]));
    if !args.report.quiet {
        let tr = &run.trajectory;
        let last = final_eg.map_or_else(|| "(no eg observable)".to_string(), |v| format!("{v:.6}"));
        eprintln!(
            "{} K={} {} ({}): t = {} eg = {last} in {:.1} ms ({} evaluations, {} steps)",
            job.equations,
            job.k,
            job.activation.name(),
            if run.generated { "generated" } else { "interpreted" },
            tr.times.last().copied().unwrap_or(0.0),
            elapsed.as_secs_f64() * 1e3,
            tr.stats.evaluations,
            tr.stats.accepted
        );
    }
    let tr = &run.trajectory;
    print_json(
        args.report.json,
        serde_json::json!({
            "command": "ode",
            "equations": job.equations,
            "k": job.k,
            "activation": job.activation.name(),
            "generated": run.generated,
            "t_end": tr.times.last(),
            "eg": final_eg,
            "evaluations": tr.stats.evaluations,
            "steps": tr.stats.accepted,
            "seconds": elapsed.as_secs_f64(),
            "out": args.out,
        }),
    )?;
    Ok(())
}

fn reduced_job(args: &ReducedArgs) -> Result<ReducedJob, RunError> {
    let full = ode_job_with(&args.model, "rodas4")?;
    if finite("t-reduced", args.t_reduced)? <= 0.0 {
        return bad("--t-reduced must be positive");
    }
    if !(finite("align-tol", args.align_tol)? > 0.0 && args.align_tol < 1.0) {
        return bad("--align-tol must lie in (0, 1)");
    }
    Ok(ReducedJob {
        full,
        reduced_equations: args.reduced_equations.clone(),
        t_reduced_end: args.t_reduced,
        points: args.model.points,
        align_tol: args.align_tol,
    })
}

fn run_reduced(args: &ReducedArgs) -> Result<(), RunError> {
    let job = reduced_job(args)?;
    let start = std::time::Instant::now();
    let t_min = job.full.times.get(1).copied().unwrap_or(1.0);
    let progress = Progress::new(args.report.quiet, 1000, "full");
    let run = job.run(|stage, t| {
        if progress.bar.message() != stage {
            progress.bar.set_message(stage.to_string());
        }
        // The reduced stage starts back at the alignment time, inside the span the full run has
        // covered: the bar waits there instead of going back.
        let pos = Progress::log_position(t, t_min, job.t_reduced_end);
        progress.set(pos.max(progress.bar.position()));
    })?;
    drop(progress);
    let mut full_csv = Vec::new();
    run.write_full_csv(&mut full_csv)
        .map_err(|e| RunError::Io(e.to_string()))?;
    let mut reduced_csv = Vec::new();
    write_csv(&run.reduced, true, &mut reduced_csv).map_err(|e| RunError::Io(e.to_string()))?;
    let files = crate::experiment::RunCommand::ReducedVsFull.output_files(&args.out_prefix);
    write_output(&Some(files[0].clone()), &full_csv)?;
    write_output(&Some(files[1].clone()), &reduced_csv)?;
    let seconds = start.elapsed().as_secs_f64();
    if !args.report.quiet {
        eprint!("{}", run.summary(job.full.activation, seconds));
    }
    let predicted = aedyn_predicted(job.full.activation);
    print_json(
        args.report.json,
        serde_json::json!({
            "command": "reduced-vs-full",
            "aligned_at": run.alignment.t,
            "misalignment": run.alignment.misalignment,
            "unit_to_spike": run.alignment.mode,
            "max_relative_deviation": run.max_relative_deviation,
            "max_excess_deviation": run.max_excess_deviation,
            "eg_pca": run.pca_error,
            "fitted": {"alpha": run.fitted.alpha, "beta": run.fitted.beta, "gamma": run.fitted.gamma},
            "derived": predicted,
            "seconds": seconds,
            "out": files,
        }),
    )?;
    Ok(())
}

fn aedyn_predicted(activation: ActivationKind) -> serde_json::Value {
    match crate::reduced::predicted_exponents(activation) {
        Some(p) => serde_json::json!({"alpha": p.alpha, "beta": p.beta, "gamma": p.gamma}),
        None => serde_json::Value::Null,
    }
}

/// Runs one parsed subcommand.
fn dispatch(command: &Command) -> Result<(), RunError> {
    match command {
        Command::Ode(a) => run_ode(a),
        Command::Compare(a) => run_compare(a),
        Command::ReducedVsFull(a) => run_reduced(a),
        Command::Reproduce(a) => run_reproduce(a),
    }
}

/// Builds a run's job without running it: every value is checked, nothing is written.
fn validate(command: &Command) -> Result<(), RunError> {
    match command {
        Command::Ode(a) => ode_job(&a.model).map(|_| ()),
        Command::Compare(a) => compare_job(a)?.d().map(|_| ()),
        Command::ReducedVsFull(a) => reduced_job(a).map(|_| ()),
        Command::Reproduce(_) => bad("an experiment cannot run `reproduce`"),
    }
}

/// The option a clap error is about (`--k <K>` gives `k`).
fn clap_key(e: &clap::Error) -> Option<String> {
    match e.get(clap::error::ContextKind::InvalidArg)? {
        clap::error::ContextValue::String(s) => s
            .split_whitespace()
            .next()
            .map(|f| f.trim_start_matches('-').to_string()),
        _ => None,
    }
}

/// Locates an input error of an experiment's run at the key it names (`--lr must be positive`
/// names `lr`), else at the run.
fn point_at_key(e: RunError, run: &crate::experiment::RunSpec, text: &str, path: &str) -> RunError {
    match e {
        RunError::Input(msg) => {
            let key = run
                .args
                .keys()
                .find(|k| msg.contains(&format!("--{k}")))
                .cloned()
                .unwrap_or_default();
            let line = crate::experiment::key_line(text, run.name.span().start, &key);
            RunError::Input(crate::experiment::located(
                path,
                line,
                format!("run `{}`: {msg}", run.name.get_ref()),
            ))
        }
        other => other,
    }
}

fn run_reproduce(a: &ReproduceArgs) -> Result<(), RunError> {
    use crate::experiment::{self, Experiment};
    if a.list {
        for (name, text) in experiment::SHIPPED {
            let title = Experiment::parse(name, text).map(|e| e.title).unwrap_or_default();
            say(&format!("{name:<10} {title}"))?;
        }
        return Ok(());
    }
    let Some(name) = &a.name else {
        return bad("name an experiment (aedyn reproduce --list shows them)");
    };
    let (path, text) = match experiment::SHIPPED.iter().find(|(n, _)| n == name) {
        Some((n, t)) => (format!("experiments/{n}.toml"), t.to_string()),
        None if name.ends_with(".toml") => (
            name.clone(),
            std::fs::read_to_string(name).map_err(|e| RunError::Input(format!("cannot read {name}: {e}")))?,
        ),
        None => {
            let names: Vec<&str> = experiment::SHIPPED.iter().map(|(n, _)| *n).collect();
            return bad(format!(
                "unknown experiment `{name}`: expected one of {} or a .toml file",
                names.join(", ")
            ));
        }
    };
    let exp = Experiment::parse(&path, &text).map_err(RunError::Input)?;
    let stem = std::path::Path::new(name)
        .file_stem()
        .map_or(name.clone(), |s| s.to_string_lossy().into_owned());
    let dir = std::path::PathBuf::from(a.out_dir.clone().unwrap_or_else(|| format!("results/{stem}")));
    // Parse every run before running any, so a bad key fails at once.
    let mut commands = Vec::new();
    let mut files = Vec::new();
    for run in &exp.run {
        let mut argv = run.argv(&text, &path).map_err(RunError::Input)?;
        let out = dir.join(run.name.get_ref());
        let out = out.to_string_lossy().into_owned();
        files.extend(run.command().output_files(&out));
        argv.extend(run.command().output_args(&out));
        if a.report.quiet {
            argv.push("--quiet".into());
        }
        let at = |key: &str| experiment::key_line(&text, run.name.span().start, key);
        let cli =
            Cli::try_parse_from(std::iter::once("aedyn".to_string()).chain(argv.iter().cloned())).map_err(|e| {
                let msg = e.to_string();
                let first = msg
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_string();
                match clap_key(&e) {
                    Some(key) => RunError::Input(experiment::located(&path, at(&key), format!("key `{key}`: {first}"))),
                    None => RunError::Input(experiment::located(&path, at(""), first)),
                }
            })?;
        validate(&cli.command).map_err(|e| point_at_key(e, run, &text, &path))?;
        commands.push((run, argv, cli));
    }
    if a.dry_run {
        for (_, argv, _) in &commands {
            say(&format!("aedyn {}", argv.join(" ")))?;
        }
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| RunError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let start = std::time::Instant::now();
    for (i, (run, argv, cli)) in commands.iter().enumerate() {
        if !a.report.quiet {
            eprintln!("[{}/{}] aedyn {}", i + 1, commands.len(), argv.join(" "));
        }
        dispatch(&cli.command).map_err(|e| point_at_key(e, run, &text, &path))?;
    }
    for plot in &exp.plot {
        let written = experiment::draw(plot, &exp.run, &dir).map_err(RunError::Io)?;
        files.extend(written.iter().map(|p| p.display().to_string()));
    }
    let seconds = start.elapsed().as_secs_f64();
    if !a.report.quiet {
        eprintln!(
            "{}: {} files in {} ({seconds:.1} s)",
            exp.title,
            files.len(),
            dir.display()
        );
    }
    print_json(
        a.report.json,
        serde_json::json!({"experiment": stem, "title": exp.title, "out_dir": dir, "files": files, "seconds": seconds}),
    )?;
    Ok(())
}

/// Parses the process arguments, runs the subcommand, and maps errors to exit codes (2: bad input).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = dispatch(&cli.command);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                RunError::Input(_) | RunError::Equations(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
