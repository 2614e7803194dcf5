//! The subcommands' arguments as clap declares them; values with a fixed set of names are the
//! runtime's own enums, so that a name clap accepts is one the jobs know.

use ae_core::kernel::Backend;
use ae_runtime::data::EigenFamily;
use ae_runtime::data::{Draw, Format};
use ae_runtime::ode::Method;
use ae_runtime::sgd::{Rates, Rule, Scaling};
use clap::Args;

#[derive(Args)]
pub(crate) struct ReproduceArgs {
    /// Experiment: a shipped name (see --list) or the path of a .toml file.
    pub(crate) name: Option<String>,
    /// List the shipped experiments.
    #[arg(long)]
    pub(crate) list: bool,
    /// Run every shipped experiment, each into its own directory under --out-dir [default:
    /// results/<name>]; all are validated before any runs.
    #[arg(long)]
    pub(crate) all: bool,
    /// Directory for the CSV files and plots [default: results/<name>; with --all, the
    /// directory that holds one per experiment, default results].
    #[arg(long)]
    pub(crate) out_dir: Option<String>,
    /// Print the command line of every run, and run nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) report: Reporting,
}

#[derive(Args)]
pub(crate) struct SweepArgs {
    /// The sweep file (TOML): `command`, `[fixed]` options, a `[grid]` of lists (their
    /// Cartesian product) and `[zip]` lists that vary together (docs/guide.md, "Sweeps").
    pub(crate) file: String,
    /// Directory of the tables and of `points/`, where each point's result is kept [default:
    /// results/<file name>].
    #[arg(long)]
    pub(crate) out_dir: Option<String>,
    /// Points run at once, one per worker (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// Run only part I of N (`--shard 2/8`, I from 0): every N-th point from the I-th. The
    /// parts share `points/`; `--collect` writes the tables when all are done.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<String>,
    /// Write `sweep.sbatch` into the directory: a Slurm job array of N tasks, each running one
    /// shard. Runs nothing; prints the sbatch command.
    #[arg(long, value_name = "N")]
    pub(crate) slurm: Option<usize>,
    /// Extra `#SBATCH` options for `--slurm`, as you would give them to sbatch
    /// (`--sbatch "--time=01:00:00 --mem=2G"`).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) sbatch: Option<String>,
    /// Write the tables from the points already done, or list the missing ones. Runs nothing.
    #[arg(long)]
    pub(crate) collect: bool,
    #[command(flatten)]
    pub(crate) report: Reporting,
}

/// The data: the spiked covariance model (docs/theory.md section 2) or a real data set.
#[derive(Args)]
pub(crate) struct DataArgs {
    /// Spike strengths rho~_m, comma-separated (the equations use rho~_m + sigma^2/D).
    #[arg(long, default_value = "9,3,1", allow_hyphen_values = true)]
    pub(crate) spikes: String,
    /// Bulk standard deviation sigma.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub(crate) sigma: f64,
    /// Input dimension D, or `inf` for the strict limit (the bulk freezes; not uniform in time).
    #[arg(long, default_value = "1000")]
    pub(crate) d: String,
    /// Spike eigenvectors.
    #[arg(long, value_enum, default_value_t = EigenFamily::Random)]
    pub(crate) eigenvectors: EigenFamily,
    /// Real data instead of the spiked model: CSV (optionally gzipped), IDX, CIFAR-10 .bin,
    /// .npy, or a JPEG/PNG photograph with --patch. Needs --equations full_spectrum.
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// Data format when the file name does not tell.
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// Side P of the grey P x P patches cut from a photograph (D = P^2).
    #[arg(long)]
    pub(crate) patch: Option<usize>,
    /// Pixels between neighbouring patches' corners (default: P, non-overlapping; smaller
    /// strides give overlapping patches and more samples).
    #[arg(long)]
    pub(crate) stride: Option<usize>,
    /// CSV data: drop the last column (a class label, as in data/digits.csv.gz).
    #[arg(long)]
    pub(crate) drop_last_column: bool,
    /// Use at most this many samples of the data (0: all).
    #[arg(long, default_value_t = 0)]
    pub(crate) max_samples: usize,
}

/// `--equations`' help, naming every shipped file (the kernels' list, found from the folder).
fn equations_help() -> String {
    let names: Vec<&str> = crate::models::shipped_equations().collect();
    format!(
        "Equations: a shipped name ({}) or the path of an .ae file of your own",
        names.join(", ")
    )
}

#[derive(Args)]
pub(crate) struct ModelArgs {
    #[arg(long, default_value = "vanilla", help = equations_help())]
    pub(crate) equations: String,
    /// Number of hidden units K.
    #[arg(long, default_value_t = 3)]
    pub(crate) k: usize,
    /// Activation g: erf, linear, relu, tanh, or one the equation file declares with
    /// `activation NAME(x) = EXPR`.
    #[arg(long, default_value = "erf", value_name = "NAME")]
    pub(crate) activation: String,
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Learning rate eta.
    #[arg(long, default_value_t = Rates::default().lr, allow_hyphen_values = true)]
    pub(crate) lr: f64,
    /// Weight decay kappa (per unit time).
    #[arg(long, default_value_t = Rates::default().kappa, allow_hyphen_values = true)]
    pub(crate) kappa: f64,
    /// Final time t (t = SGD steps / D).
    #[arg(long, default_value_t = 1000.0, allow_hyphen_values = true)]
    pub(crate) t_end: f64,
    /// First output time after t = 0; outputs are log-spaced from here to --t-end.
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true)]
    pub(crate) t_min: f64,
    /// Number of log-spaced output times (besides t = 0).
    #[arg(long, default_value_t = 100)]
    pub(crate) points: usize,
    /// Seed of the initial weights (and of random eigenvectors).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Standard deviation sigma0 of the i.i.d. initial weights [default: 0.1; 1/sqrt(D) with
    /// --scaling standard].
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) init_std: Option<f64>,
    /// Informed start `a,b`: w_k = a e_k, v_k = b sqrt(D) e_k (needs K <= M).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) informed: Option<String>,
    /// Perfect start at encoder scale `a`: w_k = a e_k and v_k = b_k sqrt(D) e_k with the b_k
    /// that minimises the aligned error, E[u g(a u)] / E[g(a u)^2], u ~ N(0, rho_k) (docs/theory.md
    /// section 7; spiked model, K <= M).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) perfect: Option<f64>,
    /// Initial weights from a file: 2K lines of D numbers (encoder rows, then decoder rows).
    #[arg(long)]
    pub(crate) weights: Option<String>,
    /// Further equation parameters, NAME=VALUE (repeatable).
    #[arg(long = "param", allow_hyphen_values = true)]
    pub(crate) params: Vec<String>,
    /// Integrator: auto (bdf where the state is small enough for a dense Jacobian, else
    /// dop853 handing over to bdf when the run turns stiff), bdf or rodas4 (stiff; states up to
    /// 2000 entries), dop853 or dopri5 (explicit, never switching)
    /// [default: auto; rodas4 for reduced-vs-full, whose long runs are stiff].
    #[arg(long, value_enum)]
    pub(crate) method: Option<Method>,
    /// Relative tolerance of the adaptive step.
    #[arg(long, default_value_t = ae_runtime::ode::DEFAULT_RTOL)]
    pub(crate) rtol: f64,
    /// Absolute tolerance of the adaptive step.
    #[arg(long, default_value_t = ae_runtime::ode::DEFAULT_ATOL)]
    pub(crate) atol: f64,
    /// rodas4 and auto: a finite-difference Jacobian even where the generated code has the
    /// symbolic one (vanilla, truncated, reduced with erf, linear or relu), to compare the two.
    #[arg(long)]
    pub(crate) fd_jacobian: bool,
    /// The code that evaluates the equations: generated (compiled into the binary: the shipped
    /// files at K = 1..4, K-generic beyond), jit (compiled from the file at run time) or
    /// interpreter [default: generated where an unrolled kernel exists, else jit].
    #[arg(long, value_enum)]
    pub(crate) backend: Option<Backend>,
}

/// Where a subcommand writes its main CSV, and what it says besides.
#[derive(Args)]
pub(crate) struct Output {
    /// Output CSV file (default, or `-`: standard output).
    #[arg(long)]
    pub(crate) out: Option<String>,
    #[command(flatten)]
    pub(crate) report: Reporting,
}

/// What a subcommand says besides its files: messages and progress on stderr, a JSON summary.
#[derive(Args)]
pub(crate) struct Reporting {
    /// No messages or progress bars on standard error.
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Print a JSON summary on standard output (ode and compare: needs --out for the CSV).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
pub(crate) struct OdeArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Also write every state entry.
    #[arg(long)]
    pub(crate) states: bool,
    #[command(flatten)]
    pub(crate) output: Output,
}

/// How the SGD replicas of `compare` and `sgd` run and what they measure.
#[derive(Args)]
pub(crate) struct SgdOptions {
    /// Number of SGD replicas: the same initial weights, independent sample streams.
    #[arg(long, default_value_t = 4)]
    pub(crate) seeds: usize,
    /// Worker threads for the replicas (0: all cores). The output does not depend on it.
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// With --data: how SGD draws samples [default: online].
    #[arg(long, value_enum)]
    pub(crate) draw: Option<Draw>,
    /// Size of a held-out test set: adds a Monte-Carlo eg of the SGD runs (0: none).
    #[arg(long, default_value_t = 0)]
    pub(crate) test_samples: usize,
    /// SGD rule [default: compare: the one the equation file names on its `sgd` line; sgd:
    /// vanilla].
    #[arg(long, value_enum)]
    pub(crate) rule: Option<Rule>,
    /// Tied weights (decoder = encoder) in the SGD runs.
    #[arg(long)]
    pub(crate) tied: bool,
    /// Train a bias in each pre-activation of the SGD runs (eg then comes from the test set:
    /// give --test-samples).
    #[arg(long)]
    pub(crate) bias: bool,
    /// Initial value of every trained bias (with --bias) [default: 0.5].
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) bias_init: Option<f64>,
    /// Also measure, on the held-out set, eg of the reconstruction by the first M neurons
    /// alone (column eg_sgd_partial_M; needs --test-samples).
    #[arg(long, value_name = "M")]
    pub(crate) partial: Option<usize>,
}

#[derive(Args)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) sgd: SgdOptions,
    /// Also write each replica's final |cos| between decoder rows and spike directions
    /// (K rows per replica, one column per spike) to this CSV file.
    #[arg(long)]
    pub(crate) overlaps: Option<String>,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Args)]
pub(crate) struct SgdArgs {
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) sgd: SgdOptions,
    /// SGD's scaling: rescaled (docs/theory.md section 3, the ODE's) or standard (lambda = w.x, loss
    /// |x - x_hat|^2/2, one plain learning rate; docs/theory.md section 3, figure 7).
    #[arg(long, value_enum, default_value_t = Scaling::Rescaled)]
    pub(crate) scaling: Scaling,
    /// Also write, for this many held-out samples, replica 0's final reconstructions (by all
    /// neurons, and by the first M with --partial M) and its first decoder rows, one image per
    /// row, to --images-out.
    #[arg(long, default_value_t = 0)]
    pub(crate) images: usize,
    /// The CSV file of --images.
    #[arg(long)]
    pub(crate) images_out: Option<String>,
    #[command(flatten)]
    pub(crate) output: Output,
}

#[derive(Args)]
pub(crate) struct ReducedArgs {
    /// The full run: --equations (default vanilla), --t-end (its end), --method, ...
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Equations of the reduced run.
    #[arg(long, default_value = "reduced")]
    pub(crate) reduced_equations: String,
    /// End time of the reduced run (at least --t-end).
    #[arg(long, default_value_t = 1e7, allow_hyphen_values = true)]
    pub(crate) t_reduced: f64,
    /// The full run counts as aligned once every unit has at most this share of its encoder
    /// variance (Q_kk) and of its decoder norm (T0_kk) off its spike.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    pub(crate) align_tol: f64,
    /// Output: <prefix>_full.csv (t, eg, misalignment, order parameters) and
    /// <prefix>_reduced.csv (t, eg, a and b per spike).
    #[arg(long, default_value = "reduced_vs_full")]
    pub(crate) out_prefix: String,
    #[command(flatten)]
    pub(crate) report: Reporting,
}

#[derive(Args)]
pub(crate) struct SpectrumArgs {
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Seed of the spike eigenvectors and of the samples.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Spiked model: the number N of samples whose covariance is diagonalised [default: 4 D].
    #[arg(long)]
    pub(crate) samples: Option<usize>,
    /// Number of histogram bins of the bulk (in the --density file) [default: 60].
    #[arg(long)]
    pub(crate) bins: Option<usize>,
    /// Also write the histogram of the bulk beside the Marchenko-Pastur density to this CSV.
    #[arg(long)]
    pub(crate) density: Option<String>,
    /// The eigenvalues, largest first, with their predictions, go to --out.
    #[command(flatten)]
    pub(crate) output: Output,
}
