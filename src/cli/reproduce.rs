//! `aedyn reproduce`: an experiment file's runs, parsed and validated as command lines before
//! anything runs, then run in order, then its plots.

use super::args::ReproduceArgs;
use super::provenance::{sha256, Record};
use super::report::{print_json, say};
use super::{dispatch, one_line, parse_from, validate};
use crate::error::input;
use crate::error::RunError;
use crate::experiment::RunCommand;
use crate::schema::Outputs;

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

pub(crate) fn run_reproduce(a: &ReproduceArgs, record: &Record) -> Result<(), RunError> {
    use crate::experiment::{self, Experiment};
    if a.list {
        for (name, text) in experiment::shipped() {
            let title = if super::sweep::is_sweep(text) {
                super::sweep::listing(name, text)
            } else {
                Experiment::parse(name, text).map(|e| e.listing()).unwrap_or_default()
            };
            say(&format!("{name:<20} {title}"))?;
        }
        return Ok(());
    }
    if a.out_dir.as_deref() == Some("") {
        return input("--out-dir is empty: name a directory");
    }
    if a.all {
        if a.name.is_some() {
            return input("give an experiment's name or --all, not both");
        }
        let root = std::path::PathBuf::from(a.out_dir.clone().unwrap_or_else(|| "results".to_string()));
        // Every experiment is validated before any runs.
        let prepared = experiment::shipped()
            .iter()
            .map(|(name, text)| prepare_job(a, name, &format!("experiments/{name}.toml"), text, root.join(name)))
            .collect::<Result<Vec<_>, _>>()?;
        let start = std::time::Instant::now();
        let mut summaries = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            if !a.report.quiet && !a.dry_run {
                note!(
                    "== experiment {}/{}: {} ({}) ==",
                    i + 1,
                    prepared.len(),
                    p.stem(),
                    p.title()
                );
            }
            summaries.extend(p.execute(a, record)?);
        }
        if !a.dry_run && !a.report.quiet {
            note!(
                "{} experiments in {} ({:.1} s)",
                prepared.len(),
                root.display(),
                start.elapsed().as_secs_f64()
            );
        }
        return print_json(
            a.report.json && !a.dry_run,
            serde_json::json!({ "experiments": summaries }),
        );
    }
    let Some(name) = &a.name else {
        return input("name an experiment, or give --all (aedyn reproduce --list shows them)");
    };
    let (path, text) = match experiment::shipped().into_iter().find(|(n, _)| n == name) {
        Some((n, t)) => (format!("experiments/{n}.toml"), t.to_string()),
        None if name.ends_with(".toml") => (name.clone(), crate::files::read_text(name, "experiment file")?),
        None => {
            let names: Vec<&str> = experiment::shipped().iter().map(|(n, _)| *n).collect();
            return input(format!(
                "unknown experiment `{name}`: expected one of {} or a .toml file",
                names.join(", ")
            ));
        }
    };
    let stem = std::path::Path::new(name)
        .file_stem()
        .map_or(name.clone(), |s| s.to_string_lossy().into_owned());
    let dir = std::path::PathBuf::from(a.out_dir.clone().unwrap_or_else(|| format!("results/{stem}")));
    let prepared = prepare_job(a, &stem, &path, &text, dir)?;
    if let Some(summary) = prepared.execute(a, record)? {
        print_json(a.report.json, summary)?;
    }
    Ok(())
}

/// An experiment file ready to run: runs and plots, or a sweep (a file with a `[grid]`).
enum Job<'t> {
    Runs(Box<Prepared<'t>>),
    Sweep {
        stem: String,
        path: String,
        dir: std::path::PathBuf,
        sweep: Box<super::sweep::ShippedSweep>,
        title: String,
    },
}

/// Parses and checks an experiment file of either kind, running nothing.
fn prepare_job<'t>(
    a: &ReproduceArgs,
    stem: &str,
    path: &str,
    text: &'t str,
    dir: std::path::PathBuf,
) -> Result<Job<'t>, RunError> {
    if !super::sweep::is_sweep(text) {
        return Ok(Job::Runs(Box::new(prepare(a, stem, path, text, dir)?)));
    }
    let sweep = super::sweep::prepare_shipped(path, text, &dir)?;
    Ok(Job::Sweep {
        stem: stem.to_string(),
        path: path.to_string(),
        title: super::sweep::listing(path, text),
        dir,
        sweep: Box::new(sweep),
    })
}

impl Job<'_> {
    fn stem(&self) -> &str {
        match self {
            Job::Runs(p) => &p.stem,
            Job::Sweep { stem, .. } => stem,
        }
    }

    fn title(&self) -> &str {
        match self {
            Job::Runs(p) => &p.exp.title,
            Job::Sweep { title, .. } => title,
        }
    }

    /// Runs it (or prints its command lines with --dry-run); returns its JSON summary.
    fn execute(&self, a: &ReproduceArgs, record: &Record) -> Result<Option<serde_json::Value>, RunError> {
        match self {
            Job::Runs(p) => execute(a, p, record),
            Job::Sweep { sweep, path, dir, .. } if a.dry_run => {
                for line in sweep.command_lines(path, dir) {
                    say(&line)?;
                }
                Ok(None)
            }
            Job::Sweep { stem, dir, sweep, .. } => {
                let mut summary = sweep.run(dir, a.report.quiet, record)?;
                summary["experiment"] = serde_json::json!(stem);
                Ok(Some(summary))
            }
        }
    }
}

/// An experiment whose runs have been parsed and validated, ready to run.
struct Prepared<'t> {
    exp: crate::experiment::Experiment,
    stem: String,
    path: String,
    text: &'t str,
    dir: std::path::PathBuf,
    /// Each run with the command line shown (final paths), the one that runs (staged) and the
    /// record of its inputs.
    commands: Vec<(usize, Vec<String>, super::Cli, Record)>,
    /// The files the runs write, at their final paths.
    files: Vec<String>,
}

/// Parses an experiment file and every run's command line, and validates each run, without
/// running or writing anything.
fn prepare<'t>(
    a: &ReproduceArgs,
    stem: &str,
    path: &str,
    text: &'t str,
    dir: std::path::PathBuf,
) -> Result<Prepared<'t>, RunError> {
    use crate::experiment::{self, Experiment};
    let exp = Experiment::parse(path, text).map_err(RunError::Input)?;
    // Runs and plots write into a fresh staging directory inside the output directory; only
    // when all have succeeded are the files moved into place, so a failed run leaves the
    // directory as it was.
    let staging = staging_dir(&dir);
    // Parse every run before running any, so a bad key fails at once.
    let mut commands = Vec::new();
    let mut columns = std::collections::HashMap::new();
    let mut files = Vec::new();
    // Every output so far and the run that writes it.
    let mut owners: Vec<(String, usize)> = Vec::new();
    for (index, run) in exp.run.iter().enumerate() {
        let base = run.argv(text, path).map_err(RunError::Input)?;
        let out = dir.join(run.name.get_ref()).to_string_lossy().into_owned();
        let staged = staging.join(run.name.get_ref()).to_string_lossy().into_owned();
        let mut written = Outputs::of(run.command(), &out).all();
        // `sgd` writes images only when the run keeps some.
        let images = run.command() == RunCommand::Sgd && run.args.contains_key("images");
        if images {
            written.push(Outputs::images_file(&out));
        }
        check_collisions(&exp, index, &written, &owners, (path, text))?;
        owners.extend(written.iter().map(|f| (f.clone(), index)));
        files.extend(written);
        let outputs = |stem: &str| {
            let mut args = Outputs::args(run.command(), stem);
            if images {
                args.extend(["--images-out".to_string(), Outputs::images_file(stem)]);
            }
            args
        };
        let quiet = a.report.quiet.then(|| "--quiet".to_string());
        // What runs (writing into the staging directory) and what is shown (the final paths).
        let argv: Vec<String> = base
            .iter()
            .cloned()
            .chain(outputs(&staged))
            .chain(quiet.clone())
            .collect();
        let shown: Vec<String> = base.iter().cloned().chain(outputs(&out)).chain(quiet).collect();
        let at = |key: &str| experiment::key_line(text, run.name.span().start, key);
        let (cli, record) =
            parse_from(std::iter::once("aedyn".to_string()).chain(argv.iter().cloned())).map_err(|e| {
                let first = one_line(&e);
                match clap_key(&e) {
                    Some(key) => RunError::Input(experiment::located(path, at(&key), format!("key `{key}`: {first}"))),
                    None => RunError::Input(experiment::located(path, at(""), first)),
                }
            })?;
        let written = validate(&cli.command).map_err(|e| point_at_key(e, run, text, path))?;
        columns.insert(run.name.get_ref().clone(), written);
        commands.push((index, shown, cli, record.inside_experiment()));
    }
    // Plots read only columns their runs will write: found here, not after the runs.
    exp.check_columns(path, text, &columns).map_err(RunError::Input)?;
    Ok(Prepared {
        exp,
        stem: stem.to_string(),
        path: path.to_string(),
        text,
        dir,
        commands,
        files,
    })
}

/// Refuses a run whose outputs (`written`) are another run's outputs (`owners`, by run index),
/// or whose input files (`data`, `weights`, `equations`) are any run's outputs: one run would
/// overwrite what another wrote or reads. Errors point at the run's line.
fn check_collisions(
    exp: &crate::experiment::Experiment,
    index: usize,
    written: &[String],
    owners: &[(String, usize)],
    (path, text): (&str, &str),
) -> Result<(), RunError> {
    use super::outputs::resolved;
    let run = &exp.run[index];
    let at = |key: &str| crate::experiment::key_line(text, run.name.span().start, key);
    let fail = |line: usize, msg: String| Err(RunError::Input(crate::experiment::located(path, line, msg)));
    for file in written {
        if let Some((_, other)) = owners.iter().find(|(f, _)| resolved(f) == resolved(file)) {
            let name = |i: usize| exp.run[i].name.get_ref().clone();
            return fail(
                at(""),
                format!(
                    "runs `{}` and `{}` both write {file}: rename one",
                    name(*other),
                    name(index)
                ),
            );
        }
    }
    let every: Vec<&String> = owners.iter().map(|(f, _)| f).chain(written).collect();
    for other in &exp.run {
        for key in ["data", "weights", "equations"] {
            let Some(toml::Value::String(input)) = other.args.get(key) else {
                continue;
            };
            if let Some(file) = every.iter().find(|f| resolved(f) == resolved(input)) {
                let line = crate::experiment::key_line(text, other.name.span().start, key);
                let msg = format!(
                    "run `{}`: its {key} {input} is {file}, an output of this experiment: it would be overwritten",
                    other.name.get_ref()
                );
                return fail(line, msg);
            }
        }
    }
    Ok(())
}

/// The file in an experiment's directory that records how its files were made.
pub const EXPERIMENT_RECORD: &str = "experiment.json";

/// Writes the experiment's one record: the experiment file's hash, the `reproduce` command's
/// own record, and every run's command line and inputs (docs/guide.md, "Provenance").
fn write_experiment_record(p: &Prepared, record: &Record, staging: &std::path::Path) -> Result<(), RunError> {
    let runs: Vec<serde_json::Value> = p
        .commands
        .iter()
        .map(|(index, shown, _, inputs)| {
            serde_json::json!({
                "name": p.exp.run[*index].name.get_ref(),
                "argv": shown,
                "inputs": inputs.to_json(),
            })
        })
        .collect();
    let value = serde_json::json!({
        "experiment": p.stem,
        "title": p.exp.title,
        "file": p.path,
        "file_sha256": sha256(p.text.as_bytes()),
        "reproduce": record.to_json(),
        "runs": runs,
    });
    let text = serde_json::to_string_pretty(&value).map_err(|e| RunError::Io(e.to_string()))? + "\n";
    let path = staging.join(EXPERIMENT_RECORD);
    std::fs::write(&path, text).map_err(|e| RunError::Io(format!("cannot write {}: {e}", path.display())))
}

/// The staging directory of an output directory (see `prepare`).
fn staging_dir(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join(format!(".staging-{}", std::process::id()))
}

/// Removes the staging directories in `dir` of `reproduce` processes that are gone (killed
/// before they could clean up): a live process's directory (Linux: /proc/PID exists) is kept.
fn remove_stale_staging(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let procs = std::path::Path::new("/proc");
    if !procs.join("self").exists() {
        return;
    }
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(".staging-").and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !procs.join(pid.to_string()).exists() && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Runs a prepared experiment and draws its plots (or, with --dry-run, prints its command
/// lines); returns its JSON summary.
fn execute(a: &ReproduceArgs, p: &Prepared, record: &Record) -> Result<Option<serde_json::Value>, RunError> {
    let (exp, stem, dir, text, path) = (&p.exp, &p.stem, &p.dir, p.text, p.path.as_str());
    let commands = &p.commands;
    let mut files = p.files.clone();
    let staging = staging_dir(dir);
    if a.dry_run {
        for (_, argv, _, _) in commands {
            say(&format!("aedyn {}", argv.join(" ")))?;
        }
        return Ok(None);
    }
    let created = !dir.exists();
    remove_stale_staging(dir);
    std::fs::create_dir_all(&staging).map_err(|e| RunError::Io(format!("cannot create {}: {e}", staging.display())))?;
    let _removed_on_a_signal = super::signals::Staged::new(staging.clone());
    let start = std::time::Instant::now();
    let outcome = (|| -> Result<Vec<std::path::PathBuf>, RunError> {
        for (i, (index, shown, cli, inputs)) in commands.iter().enumerate() {
            let run = &exp.run[*index];
            if !a.report.quiet {
                note!("[{}/{}] aedyn {}", i + 1, commands.len(), shown.join(" "));
            }
            dispatch(&cli.command, inputs).map_err(|e| point_at_key(e, run, text, path))?;
        }
        write_experiment_record(p, record, &staging)?;
        let mut plots = Vec::new();
        for plot in &exp.plot {
            plots.extend(crate::experiment::draw(plot, &exp.run, &staging).map_err(RunError::Io)?);
        }
        Ok(plots)
    })();
    let plots = match outcome {
        Ok(plots) => plots,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            if created {
                // Only if nothing else appeared in it meanwhile.
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let entries = std::fs::read_dir(&staging)
        .map_err(|e| RunError::Io(format!("cannot read {}: {e}", staging.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RunError::Io(format!("cannot read {}: {e}", staging.display())))?;
    for entry in entries {
        let target = dir.join(entry.file_name());
        std::fs::rename(entry.path(), &target)
            .map_err(|e| RunError::Io(format!("cannot move {} into place: {e}", target.display())))?;
    }
    let _ = std::fs::remove_dir(&staging);
    files.push(dir.join(EXPERIMENT_RECORD).display().to_string());
    files.extend(
        plots
            .iter()
            .filter_map(|p| p.file_name())
            .map(|name| dir.join(name).display().to_string()),
    );
    let seconds = start.elapsed().as_secs_f64();
    if !a.report.quiet {
        note!(
            "{}: {} files in {} ({seconds:.1} s)",
            exp.title,
            files.len(),
            dir.display()
        );
    }
    Ok(Some(
        serde_json::json!({"experiment": stem, "title": exp.title, "out_dir": dir, "files": files, "seconds": seconds}),
    ))
}
