//! The command line: argument definitions, their validation into jobs, and the subcommands'
//! output (the binary only calls `main`; `reproduce` reuses the same definitions).

/// A line on standard error that never panics: a full or closed stderr loses the line, and the
/// run keeps its own outcome and exit code.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Text on standard error, as `note!` but without the line break.
macro_rules! note_text {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
pub mod capture;
mod commands;
mod jobs;
mod outputs;
pub mod provenance;
mod report;
pub use report::note_closed_standard_output;
mod reproduce;
mod signals;
mod sweep;

use std::process::ExitCode;

use crate::error::input;
use crate::error::RunError;
use crate::schema::OutputColumns;
use args::{CompareArgs, OdeArgs, ReducedArgs, ReproduceArgs, SgdArgs, SpectrumArgs, SweepArgs};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use commands::{run_compare, run_ode, run_reduced, run_sgd, run_spectrum};
use jobs::{compare_job, ode_job, reduced_job, sgd_job, spectrum_job};
use provenance::Record;
pub(crate) use report::write_atomically as write_file_atomically;
pub(crate) use report::write_unsynced as write_file_unsynced;
use reproduce::run_reproduce;

#[derive(Parser)]
#[command(
    name = "aedyn",
    version,
    about = "Learning dynamics of shallow non-linear autoencoders: ODEs of the order parameters, generated from equation files"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Integrate the order-parameter ODEs and write eg and the order parameters as CSV.
    Ode(OdeArgs),
    /// Run the ODEs and N SGD replicas from the same initial weights; write both as one CSV.
    Compare(CompareArgs),
    /// Run N SGD replicas alone (no ODE), in the paper's scaling or the standard one: eg,
    /// PCA errors, reconstructed fractions, weight norms, partial reconstructions and images.
    Sgd(SgdArgs),
    /// The eigenvalues of a covariance: N samples of the spiked model against the
    /// Marchenko-Pastur law and the predicted outliers, or a real data set's spectrum.
    Spectrum(SpectrumArgs),
    /// Integrate the full equations from a random start until the units align with the spikes,
    /// then the reduced long-time equations (docs/theory.md section 7) from that state; report where the
    /// two coincide and the long-time power laws. Needs K = number of spikes.
    ReducedVsFull(ReducedArgs),
    /// Run a checked-in experiment (experiments/*.toml): its runs, CSV files and plots (PNG
    /// and SVG) into one directory. `aedyn reproduce --list` shows what exists.
    Reproduce(ReproduceArgs),
    /// Run one command over a grid of its options (a sweep file): every point on all cores,
    /// each kept under DIR/points/ so that a rerun computes only what is missing; then
    /// points.csv (final values) and trajectories.csv. --shard, --slurm and --collect spread a
    /// sweep over a cluster.
    Sweep(SweepArgs),
}

/// Runs one parsed subcommand; `record` is what it was given (see [`Record`]).
pub(crate) fn dispatch(command: &Command, record: &Record) -> Result<(), RunError> {
    // A command's outputs are staged as it writes them and moved into place together once it
    // has succeeded, its summary printed: a failure at any point leaves none of them.
    match run_command(command, record) {
        Ok(()) => report::commit_outputs(),
        Err(e) => {
            report::discard_outputs(false);
            Err(e)
        }
    }
}

fn run_command(command: &Command, record: &Record) -> Result<(), RunError> {
    match command {
        Command::Ode(a) => run_ode(a, record),
        Command::Compare(a) => run_compare(a, record),
        Command::Sgd(a) => run_sgd(a, record),
        Command::Spectrum(a) => run_spectrum(a, record),
        Command::ReducedVsFull(a) => run_reduced(a, record),
        Command::Reproduce(a) => run_reproduce(a, record),
        Command::Sweep(a) => sweep::run_sweep(a, record),
    }
}

/// Parses a command line (program name first) into the subcommand and the record of its inputs.
pub(crate) fn parse_from<I, T>(argv: I) -> Result<(Cli, Record), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.command.dash_is_standard_output();
    Ok((cli, Record::of(&matches, &command)))
}

impl Command {
    /// `--out -` means standard output, as `-` does for most Unix tools (not a file named `-`).
    fn dash_is_standard_output(&mut self) {
        let output = match self {
            Command::Ode(a) => &mut a.output,
            Command::Compare(a) => &mut a.output,
            Command::Sgd(a) => &mut a.output,
            Command::Spectrum(a) => &mut a.output,
            Command::ReducedVsFull(_) | Command::Reproduce(_) | Command::Sweep(_) => return,
        };
        if output.out.as_deref() == Some("-") {
            output.out = None;
        }
    }
}

/// The options of subcommand `name` as clap declares them, without help and version (none for
/// an unknown name): what a record lists and what the Python package accepts.
pub(crate) fn subcommand_options<'c>(cli: &'c clap::Command, name: &str) -> impl Iterator<Item = &'c clap::Arg> + 'c {
    cli.find_subcommand(name)
        .into_iter()
        .flat_map(|sub| sub.get_arguments())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
}

/// Builds a run's job without running it: every value is checked, nothing is written. Returns
/// the columns of the files it would write (found by loading its equations).
pub(crate) fn validate(command: &Command) -> Result<OutputColumns, RunError> {
    let main = |main: Vec<String>| OutputColumns { main, second: None };
    match command {
        Command::Ode(a) => {
            let handle = ode_job(&a.model)?.load()?;
            let states = a.states.then_some((&handle.state_names[..], &handle.state_columns[..]));
            Ok(main(crate::run::ode_header(&handle.observable_names, states)))
        }
        Command::Compare(a) => {
            let job = compare_job(a)?;
            job.d()?;
            Ok(main(job.header()?))
        }
        Command::Sgd(a) => Ok(main(sgd_job(a)?.header()?)),
        Command::Spectrum(a) => Ok(spectrum_job(a)?.columns()),
        Command::ReducedVsFull(a) => {
            let (full, reduced) = reduced_job(a)?.headers()?;
            Ok(OutputColumns {
                main: full,
                second: Some(reduced),
            })
        }
        Command::Reproduce(_) => input("an experiment cannot run `reproduce`"),
        Command::Sweep(_) => input("an experiment cannot run `sweep`"),
    }
}

/// The columns of the files a command line (without the program name) would write, found as
/// `reproduce` finds them before running; for tests that hold the prediction to the files.
pub fn predicted_columns(args: &[&str]) -> Result<OutputColumns, String> {
    let cli = Cli::try_parse_from(std::iter::once("aedyn").chain(args.iter().copied())).map_err(|e| one_line(&e))?;
    validate(&cli.command).map_err(|e| e.to_string())
}

/// A clap error as one line, like every other bad input: an unknown name lists the names
/// (`unknown --method `euler`: expected auto, bdf, dop853, dopri5 or rodas4`), anything else is clap's
/// first line without the usage and help hints that follow it.
pub(crate) fn one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::InvalidValue {
        let arg = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(s)) => s.split_whitespace().next().unwrap_or("").to_string(),
            _ => String::new(),
        };
        let value = match e.get(ContextKind::InvalidValue) {
            Some(ContextValue::String(s)) => s.clone(),
            _ => String::new(),
        };
        // An option given without its value has no valid names to list: clap's line says so.
        if let Some(ContextValue::Strings(names)) = e.get(ContextKind::ValidValue) {
            if let Some((last, rest)) = names.split_last() {
                let expected = if rest.is_empty() {
                    last.clone()
                } else {
                    format!("{} or {last}", rest.join(", "))
                };
                return format!("unknown {arg} `{value}`: expected {expected}");
            }
        }
    }
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string()
}

/// Runs a command line (without the program name) on this thread as the binary does, its
/// outputs written where its options say; for benchmarks that hold a sweep's points against the
/// same runs alone.
pub fn run_in_process(argv: &[String]) -> Result<(), RunError> {
    let (cli, record) = parse_argv(argv)?;
    dispatch(&cli.command, &record)
}

/// [`parse_from`] for a command line without the program name; bad input is a one-line error.
pub(crate) fn parse_argv(argv: &[String]) -> Result<(Cli, Record), RunError> {
    parse_from(std::iter::once("aedyn".to_string()).chain(argv.iter().cloned()))
        .map_err(|e| RunError::Input(one_line(&e)))
}

/// Stack of the thread that runs a command (see `main`).
pub(crate) const MAIN_STACK_BYTES: usize = 1 << 30;

/// Parses the process arguments, runs the subcommand, and maps errors to exit codes (2: bad input).
pub fn main() -> ExitCode {
    signals::install();
    let (cli, record) = match parse_from(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) if e.use_stderr() => {
            note!("error: {}", one_line(&e));
            return ExitCode::from(2);
        }
        // --help and --version: clap's own text on standard output.
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // The equation front end and the interpreter recurse along an expression (a flat sum
    // of n terms is a chain of n binary nodes): a large stack, of which only the touched pages
    // are ever committed, takes the longest chains the parser admits (`MAX_CHAIN`).
    let result = match std::thread::Builder::new()
        .name("aedyn".into())
        .stack_size(MAIN_STACK_BYTES)
        .spawn(move || dispatch(&cli.command, &record))
    {
        Ok(worker) => worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(e) => Err(RunError::Io(format!("cannot start the worker thread: {e}"))),
    };
    match (result, signals::received()) {
        // A signal that came after the last check: the outputs are complete.
        (Ok(()), _) => ExitCode::SUCCESS,
        (Err(_), Some((signal, code))) => {
            note!("{}", signals::stopped_by(signal));
            ExitCode::from(code)
        }
        (Err(e), None) => {
            note!("error: {e}");
            match e {
                RunError::Input(_) | RunError::Equations(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
