//! `aedyn sweep`: a sweep file's points checked, run on all cores (or one shard of them) into
//! DIR/points/, and collected into points.csv and trajectories.csv; or a Slurm job array that
//! does the same on a cluster.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::args::SweepArgs;
use super::capture::{run_parsed_captured, ProgressCell};
use super::provenance::Record;
use super::report::{print_json, say, Progress};
use super::{parse_argv, validate, MAIN_STACK_BYTES};
use crate::error::{input, RunError};
use crate::experiment::{key_line, located, RunCommand};
use crate::sweep::store::{self, Stored};
use crate::sweep::Sweep;

/// A point ready to run: its command line (outputs included), parsed and checked, and its key.
struct Point {
    argv: Vec<String>,
    cli: super::Cli,
    record: Record,
    key: String,
}

/// Reads a sweep file: a regular file, whole.
fn read_file(path: &str) -> Result<String, RunError> {
    crate::files::read_text(path, "sweep file")
}

/// `--shard I/N` as (I, N).
fn shard(text: &Option<String>) -> Result<Option<(usize, usize)>, RunError> {
    let Some(text) = text else { return Ok(None) };
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
    match parsed {
        Some((i, n)) if n >= 1 && i < n => Ok(Some((i, n))),
        _ => input(format!("--shard `{text}`: expected I/N with 0 <= I < N, as 2/8")),
    }
}

/// The output options a point runs with: names under `points/` (nothing is written there:
/// the outputs are kept in memory).
fn output_args(command: RunCommand, dir: &Path) -> Vec<String> {
    let stem = store::points_dir(dir).join("point").to_string_lossy().into_owned();
    let main = match command {
        RunCommand::ReducedVsFull => vec!["--out-prefix".to_string(), stem],
        _ => vec!["--out".to_string(), format!("{stem}.csv")],
    };
    main.into_iter()
        .chain(["--quiet".to_string(), "--json".to_string()])
        .collect()
}

/// Every point's command line, parsed and checked as the command would check it, before any
/// runs; errors point at the file's line of the key they are about.
fn prepare(sweep: &Sweep, path: &str, text: &str, dir: &Path) -> Result<Vec<Point>, RunError> {
    let varies = |key: &str| sweep.fixed.iter().any(|(k, _)| k == key) || sweep.axes.iter().any(|k| k == key);
    let replicas = matches!(sweep.command, RunCommand::Compare | RunCommand::Sgd);
    let mut points = Vec::with_capacity(sweep.points.len());
    for i in 0..sweep.points.len() {
        let mut argv = sweep.argv(i, path, text).map_err(RunError::Input)?;
        // One point per worker: a point's replicas run one after the other (the output does
        // not depend on the thread count).
        if replicas && !varies("threads") {
            argv.extend(["--threads".to_string(), "1".to_string()]);
        }
        argv.extend(output_args(sweep.command, dir));
        let at_point = |msg: String| {
            let key = sweep
                .axes
                .iter()
                .chain(sweep.fixed.iter().map(|(k, _)| k))
                .find(|k| msg.contains(&format!("--{k}")));
            let line = key.map_or(1, |k| key_line(text, 0, k));
            RunError::Input(located(path, line, format!("point {i} ({}): {msg}", sweep.describe(i))))
        };
        let located_at_point = |e: RunError| match e {
            RunError::Input(msg) => at_point(msg),
            other => other,
        };
        let (cli, record) = parse_argv(&argv).map_err(located_at_point)?;
        validate(&cli.command).map_err(located_at_point)?;
        points.push(Point {
            argv,
            cli,
            key: record.key(),
            record,
        });
    }
    Ok(points)
}

/// Runs the points `todo` on `threads` workers, each keeping its result under `dir`; returns
/// each point's outcome by index (none for those not run).
fn run_points(
    points: &[Point],
    sweep: &Sweep,
    todo: &[usize],
    threads: usize,
    dir: &Path,
    quiet: bool,
) -> Vec<Option<Result<Stored, String>>> {
    let outcomes: Mutex<Vec<Option<Result<Stored, String>>>> = Mutex::new(vec![None; points.len()]);
    let next = AtomicUsize::new(0);
    let progress = Progress::new(quiet, todo.len() as u64, "points");
    let work = || {
        // After an interrupt no point starts; those in flight stop and are not kept.
        while let Some(&i) = todo
            .get(next.fetch_add(1, Ordering::SeqCst))
            .filter(|_| !ae_runtime::interrupt::requested())
        {
            let point = &points[i];
            let start = std::time::Instant::now();
            let outcome = run_parsed_captured(&point.cli.command, &point.record, Arc::new(ProgressCell::default()))
                .map_err(|e| e.to_string())
                .and_then(|captured| {
                    let csv = captured
                        .files
                        .into_iter()
                        .next()
                        .map(|(_, bytes)| bytes)
                        .unwrap_or_default();
                    let stored = Stored {
                        csv,
                        seconds: start.elapsed().as_secs_f64(),
                    };
                    let record = serde_json::json!({
                        "key": point.key,
                        "point": sweep.describe(i),
                        "argv": point.argv,
                        "inputs": point.record.to_json(),
                        "summary": captured.summary,
                    });
                    store::save(dir, &point.key, &stored, record).map_err(|e| {
                        format!(
                            "cannot keep the point's result in {}: {e}",
                            store::points_dir(dir).display()
                        )
                    })?;
                    Ok(stored)
                });
            outcomes.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
            progress.inc(1);
        }
    };
    std::thread::scope(|scope| {
        for w in 0..threads.min(todo.len()).max(1) {
            let spawned = std::thread::Builder::new()
                .name(format!("sweep-{w}"))
                .stack_size(MAIN_STACK_BYTES)
                .spawn_scoped(scope, work);
            if spawned.is_err() && w == 0 {
                // No thread to be had: run the points here.
                work();
            }
        }
    });
    drop(progress);
    outcomes.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Writes `sweep.sbatch`: a job array of `tasks` tasks, each running its shard of the sweep.
fn write_sbatch(a: &SweepArgs, dir: &Path, tasks: usize) -> Result<PathBuf, RunError> {
    if tasks == 0 {
        return input("--slurm 0: give the number of array tasks, at least 1");
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let exe = std::env::current_exe().map_err(|e| RunError::Io(format!("cannot find the aedyn binary: {e}")))?;
    let (file, dir) = (absolute(Path::new(&a.file)), absolute(dir));
    let mut script = format!(
        "#!/bin/bash\n# A sweep as a Slurm job array: task I runs shard I/{tasks}; then\n#   aedyn sweep {} --out-dir {} --collect\n#SBATCH --job-name=aedyn-sweep\n#SBATCH --array=0-{}\n#SBATCH --output={}/slurm-%A_%a.out\n",
        quote(&file.to_string_lossy()),
        quote(&dir.to_string_lossy()),
        tasks - 1,
        dir.display()
    );
    for option in a.sbatch.iter().flat_map(|s| s.split_whitespace()) {
        script += &format!("#SBATCH {option}\n");
    }
    script += &format!(
        "set -e\nexec {} sweep {} --out-dir {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{tasks}\" --quiet\n",
        quote(&exe.to_string_lossy()),
        quote(&file.to_string_lossy()),
        quote(&dir.to_string_lossy())
    );
    std::fs::create_dir_all(&dir).map_err(|e| RunError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("sweep.sbatch");
    super::write_file_atomically(&path.to_string_lossy(), script.as_bytes())
        .map_err(|e| RunError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

pub(crate) fn run_sweep(a: &SweepArgs, record: &Record) -> Result<(), RunError> {
    let text = read_file(&a.file)?;
    let sweep = Sweep::parse(&a.file, &text).map_err(RunError::Input)?;
    let part = shard(&a.shard)?;
    let modes = [a.slurm.is_some(), a.collect, part.is_some()]
        .iter()
        .filter(|m| **m)
        .count();
    if modes > 1 {
        return input("--slurm, --collect and --shard are separate steps: give one of them");
    }
    if a.sbatch.is_some() && a.slurm.is_none() {
        return input("--sbatch gives options of the --slurm script: give --slurm N as well");
    }
    let stem = Path::new(&a.file)
        .file_stem()
        .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    let dir = PathBuf::from(a.out_dir.clone().unwrap_or_else(|| format!("results/{stem}")));
    if a.out_dir.as_deref() == Some("") {
        return input("--out-dir is empty: name a directory");
    }
    let points = prepare(&sweep, &a.file, &text, &dir)?;
    if let Some(tasks) = a.slurm {
        let script = write_sbatch(a, &dir, tasks)?;
        return say(&format!("sbatch {}", script.display()));
    }
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    let plan = Plan {
        part,
        collect: a.collect,
        threads,
        quiet: a.report.quiet,
    };
    let name = if sweep.title.is_empty() {
        a.file.clone()
    } else {
        sweep.title.clone()
    };
    let (summary, failure) = execute(&sweep, &points, &dir, &plan, record, &name)?;
    print_json(a.report.json, record.with_summary(summary))?;
    // Failed points are part of a finished sweep's tables (their status says why), so the
    // tables go into place even when the exit code says that some points failed.
    super::report::commit_outputs()?;
    failure.map_or(Ok(()), Err)
}

/// How `execute` runs a prepared sweep.
struct Plan {
    /// Only this part (I, N) of the points, and no tables.
    part: Option<(usize, usize)>,
    /// Run nothing: the tables from what is done, or the list of what is missing.
    collect: bool,
    threads: usize,
    quiet: bool,
}

/// Runs the points of `plan` not yet done, then writes the tables and pictures (unless it ran a
/// shard) and reports; returns the JSON summary and the error of failed points, if any.
fn execute(
    sweep: &Sweep,
    points: &[Point],
    dir: &Path,
    plan: &Plan,
    record: &Record,
    name: &str,
) -> Result<(serde_json::Value, Option<RunError>), RunError> {
    let start = std::time::Instant::now();
    let done: Vec<bool> = points.iter().map(|p| store::load(dir, &p.key).is_some()).collect();
    let missing: Vec<usize> = (0..points.len()).filter(|i| !done[*i]).collect();
    if plan.collect && !missing.is_empty() {
        for &i in &missing {
            note!("missing: point {i} ({}), {}", sweep.describe(i), points[i].key);
        }
        return Err(RunError::Incomplete(format!(
            "{} of {} points are not done yet: run the missing shards, then --collect again",
            missing.len(),
            points.len()
        )));
    }
    let mine: Vec<usize> = missing
        .iter()
        .copied()
        .filter(|i| plan.part.is_none_or(|(s, n)| i % n == s))
        .collect();
    let ran = if plan.collect {
        vec![None; points.len()]
    } else {
        run_points(points, sweep, &mine, plan.threads, dir, plan.quiet)
    };
    if ae_runtime::interrupt::requested() {
        // The finished points are kept; the tables wait for a rerun, which runs the rest.
        return Err(RunError::Interrupted);
    }
    let failed: Vec<(usize, String)> = ran
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.as_ref().and_then(|r| r.as_ref().err()).map(|e| (i, e.clone())))
        .collect();
    let wrote_tables = plan.part.is_none();
    if wrote_tables {
        let outcomes: Vec<Result<Stored, String>> = points
            .iter()
            .zip(ran)
            .map(|(p, r)| r.unwrap_or_else(|| store::load(dir, &p.key).ok_or_else(|| "not done".to_string())))
            .collect();
        let tables = crate::sweep::collect(sweep, &outcomes);
        let path = |name: &str| Some(dir.join(name).to_string_lossy().into_owned());
        record.write_output(&path("points.csv"), &tables.points)?;
        record.write_output(&path("trajectories.csv"), &tables.trajectories)?;
        if !super::capture::active() {
            crate::sweep::draw(sweep, &tables, dir).map_err(RunError::Io)?;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    if !plan.quiet {
        note!(
            "{name}: {} points, {} run now, {} done before, {} failed, in {seconds:.1} s{}",
            points.len(),
            mine.len() - failed.len(),
            points.len() - missing.len(),
            failed.len(),
            if wrote_tables {
                format!("; tables in {}", dir.display())
            } else {
                String::new()
            }
        );
    }
    let summary = serde_json::json!({
        "command": "sweep",
        "points": points.len(),
        "done": mine.len() - failed.len(),
        "failed": failed.len(),
        "skipped": points.len() - missing.len(),
        "seconds": seconds,
        "out_dir": dir,
    });
    let failure = failed.first().map(|(i, e)| {
        RunError::Incomplete(format!(
            "{} of {} points failed (their status in points.csv); the first, point {i} ({}): {e}",
            failed.len(),
            points.len(),
            sweep.describe(*i)
        ))
    });
    Ok((summary, failure))
}

/// A sweep that `reproduce` runs (an experiment file with a `[grid]`): parsed, every point
/// checked, before anything runs.
pub(crate) struct ShippedSweep {
    sweep: Sweep,
    points: Vec<Point>,
}

/// Whether an experiment file is a sweep (it has a `[grid]` or `[zip]`).
pub(crate) fn is_sweep(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("grid") || t.contains_key("zip"))
}

/// The one-line listing of a sweep file: the paper's figure it belongs to, its title.
pub(crate) fn listing(path: &str, text: &str) -> String {
    let figure = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| {
            t.get("figure")
                .and_then(|f| f.as_str())
                .map(|f| format!("figure {f}: "))
        })
        .unwrap_or_default();
    Sweep::parse(path, text)
        .map(|s| format!("{figure}{} (a sweep)", s.title))
        .unwrap_or_default()
}

pub(crate) fn prepare_shipped(path: &str, text: &str, dir: &Path) -> Result<ShippedSweep, RunError> {
    let sweep = Sweep::parse(path, text).map_err(RunError::Input)?;
    let points = prepare(&sweep, path, text, dir)?;
    Ok(ShippedSweep { sweep, points })
}

impl ShippedSweep {
    /// What `--dry-run` shows: the sweep's own command line, then each point's (without its
    /// outputs, which stay in memory).
    pub(crate) fn command_lines(&self, path: &str, dir: &Path) -> Vec<String> {
        let outputs = output_args(self.sweep.command, Path::new("")).len();
        let sweep = format!("aedyn sweep {path} --out-dir {}/", dir.display());
        let points = self
            .points
            .iter()
            .map(|p| format!("aedyn {}", p.argv[..p.argv.len() - outputs].join(" ")));
        std::iter::once(sweep).chain(points).collect()
    }

    /// Runs every point not yet done on every core and writes the tables and pictures.
    pub(crate) fn run(&self, dir: &Path, quiet: bool, record: &Record) -> Result<serde_json::Value, RunError> {
        let plan = Plan {
            part: None,
            collect: false,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            quiet,
        };
        let (summary, failure) = execute(&self.sweep, &self.points, dir, &plan, record, &self.sweep.title)?;
        failure.map_or(Ok(summary), Err)
    }
}
