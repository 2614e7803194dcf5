//! Experiment files (experiments/*.toml): named runs of the subcommands with their options as
//! keys, and the plots drawn from their CSV output. Validation names the key and its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plot::{self, Curves, Mark, Series, Table};
use crate::schema::{self, Outputs};

/// The shipped experiments, by name: built into the binary, so `reproduce` works anywhere.
pub const SHIPPED: [(&str, &str); 11] = [
    ("plateaus", include_str!("../experiments/plateaus.toml")),
    ("long-time", include_str!("../experiments/long-time.toml")),
    ("tied-relu", include_str!("../experiments/tied-relu.toml")),
    ("truncated", include_str!("../experiments/truncated.toml")),
    ("real-data", include_str!("../experiments/real-data.toml")),
    (
        "gaussian-equivalence",
        include_str!("../experiments/gaussian-equivalence.toml"),
    ),
    ("starts", include_str!("../experiments/starts.toml")),
    ("spectrum", include_str!("../experiments/spectrum.toml")),
    ("partial", include_str!("../experiments/partial.toml")),
    ("standard", include_str!("../experiments/standard.toml")),
    (
        "real-data-variants",
        include_str!("../experiments/real-data-variants.toml"),
    ),
];

/// The subcommands an experiment's run may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCommand {
    Ode,
    Compare,
    Sgd,
    ReducedVsFull,
    Spectrum,
}

impl RunCommand {
    pub const ALL: [RunCommand; 5] = [
        RunCommand::Ode,
        RunCommand::Compare,
        RunCommand::Sgd,
        RunCommand::ReducedVsFull,
        RunCommand::Spectrum,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunCommand::Ode => "ode",
            RunCommand::Compare => "compare",
            RunCommand::Sgd => "sgd",
            RunCommand::Spectrum => "spectrum",
            RunCommand::ReducedVsFull => "reduced-vs-full",
        }
    }

    pub fn parse(s: &str) -> Option<RunCommand> {
        RunCommand::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// What a plot draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    /// eg against t (ODE lines, SGD markers, PCA errors).
    Eg,
    /// eg - eg_PCA of a full and a reduced run.
    Excess,
    /// Chosen CSV columns against t.
    Columns,
    /// Heat maps of final decoder overlaps.
    Overlaps,
    /// The bulk's histogram against Marchenko-Pastur, and every eigenvalue by rank.
    Spectrum,
    /// Held-out images and their reconstructions by all and by the first neurons.
    Reconstructions,
    /// The first decoder rows as images.
    Decoders,
}

impl PlotKind {
    pub const ALL: [PlotKind; 7] = [
        PlotKind::Eg,
        PlotKind::Excess,
        PlotKind::Columns,
        PlotKind::Overlaps,
        PlotKind::Spectrum,
        PlotKind::Reconstructions,
        PlotKind::Decoders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PlotKind::Eg => "eg",
            PlotKind::Excess => "excess",
            PlotKind::Columns => "columns",
            PlotKind::Overlaps => "overlaps",
            PlotKind::Spectrum => "spectrum",
            PlotKind::Reconstructions => "reconstructions",
            PlotKind::Decoders => "decoders",
        }
    }

    pub fn parse(s: &str) -> Option<PlotKind> {
        PlotKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The commands whose output this kind of plot reads.
    pub fn reads(self) -> &'static [RunCommand] {
        match self {
            PlotKind::Eg => &[RunCommand::Ode, RunCommand::Compare, RunCommand::Sgd],
            PlotKind::Excess => &[RunCommand::ReducedVsFull],
            PlotKind::Columns => &[
                RunCommand::Ode,
                RunCommand::Compare,
                RunCommand::Sgd,
                RunCommand::ReducedVsFull,
            ],
            PlotKind::Overlaps => &[RunCommand::Compare],
            PlotKind::Spectrum => &[RunCommand::Spectrum],
            PlotKind::Reconstructions | PlotKind::Decoders => &[RunCommand::Sgd],
        }
    }
}

/// `a, b or c` from names.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub title: String,
    pub about: String,
    #[serde(default)]
    pub run: Vec<RunSpec>,
    #[serde(default)]
    pub plot: Vec<PlotSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Output stem: `<name>.csv` (ode, compare), `<name>_full.csv` and `<name>_reduced.csv`.
    pub name: toml::Spanned<String>,
    /// ode, compare or reduced-vs-full.
    pub command: toml::Spanned<String>,
    /// The subcommand's options, keyed by their long names without `--`.
    #[serde(default)]
    pub args: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// Output stem: `<file>.png` and `<file>.svg`.
    pub file: toml::Spanned<String>,
    /// eg, excess, columns or overlaps.
    pub kind: toml::Spanned<String>,
    pub title: String,
    pub runs: Vec<String>,
    /// Legend names, one per run (default: the run names).
    #[serde(default)]
    pub labels: Vec<String>,
    /// For `columns`: the columns to draw against t.
    #[serde(default)]
    pub columns: Vec<String>,
    /// For `eg`: runs drawn as SGD only (their ODE is the untied, bias-free one).
    #[serde(default)]
    pub sgd_only: Vec<String>,
    /// For `eg`: the ranks of the PCA errors drawn as dashed lines (default: every rank the
    /// first run's CSV has).
    #[serde(default)]
    pub pca_ranks: Vec<usize>,
    #[serde(default)]
    pub y_label: Option<String>,
    #[serde(default = "yes")]
    pub log_x: bool,
    #[serde(default)]
    pub log_y: bool,
}

fn yes() -> bool {
    true
}

/// Options that `reproduce` sets itself.
const RESERVED: [&str; 7] = [
    "out",
    "out-prefix",
    "quiet",
    "json",
    "overlaps",
    "density",
    "images-out",
];

/// A file stem that stays inside the output directory: letters, digits, `-`, `_` and `.`, not
/// empty and not made of dots alone.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().any(|c| c != '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `key = ...` at or after `from` (the run's own table, inline or not), else the
/// run's line.
pub fn key_line(text: &str, from: usize, key: &str) -> usize {
    let start = line_of(text, from);
    let assigns = |line: &str| {
        line.match_indices(key).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = line[i + key.len()..].trim_start();
            matches!(before, None | Some(' ' | '\t' | '{' | ',' | '"'))
                && after.trim_start_matches('"').trim_start().starts_with('=')
        })
    };
    text.lines()
        .enumerate()
        .skip(start - 1)
        .find(|(_, l)| !key.is_empty() && assigns(l))
        .map_or(start, |(i, _)| i + 1)
}

/// A located error in an experiment file: `path:line: message`.
pub fn located(path: &str, line: usize, msg: impl std::fmt::Display) -> String {
    format!("{path}:{line}: {msg}")
}

impl Experiment {
    /// Parses and checks an experiment file (`path` names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Experiment, String> {
        let exp: Experiment = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            located(path, line, e.message())
        })?;
        // Each run's command by run name: what the plots below may read.
        let mut commands = std::collections::HashMap::new();
        for run in &exp.run {
            let line = line_of(text, run.name.span().start);
            let Some(command) = RunCommand::parse(run.command.get_ref()) else {
                return Err(located(
                    path,
                    line_of(text, run.command.span().start),
                    format!(
                        "key `command`: unknown command `{}`: expected {}",
                        run.command.get_ref(),
                        one_of(&RunCommand::ALL.map(RunCommand::name))
                    ),
                ));
            };
            let name = run.name.get_ref();
            if !is_plain_name(name) {
                return Err(located(
                    path,
                    line,
                    format!("key `name`: `{name}` must be letters, digits, -, _ or ."),
                ));
            }
            if commands.insert(name.clone(), command).is_some() {
                return Err(located(path, line, format!("key `name`: two runs are called `{name}`")));
            }
            for key in run.args.keys() {
                if RESERVED.contains(&key.as_str()) {
                    return Err(located(
                        path,
                        key_line(text, run.name.span().start, key),
                        format!("key `{key}`: reproduce sets the outputs itself; remove it"),
                    ));
                }
            }
        }
        let mut files = std::collections::BTreeSet::new();
        for plot in &exp.plot {
            let line = line_of(text, plot.kind.span().start);
            let kind = plot.kind.get_ref().as_str();
            // A plot writes `<file>.png` and `<file>.svg` inside the output directory: a path
            // (`../x`, `/tmp/x`) or an empty name would write elsewhere.
            let file_line = line_of(text, plot.file.span().start);
            if !is_plain_name(plot.file.get_ref()) {
                return Err(located(
                    path,
                    file_line,
                    format!(
                        "key `file`: `{}` must be letters, digits, -, _ or . (a name, not a path)",
                        plot.file.get_ref()
                    ),
                ));
            }
            if !files.insert(plot.file.get_ref().clone()) {
                return Err(located(
                    path,
                    file_line,
                    format!("key `file`: two plots write `{}`", plot.file.get_ref()),
                ));
            }
            let Some(plot_kind) = PlotKind::parse(kind) else {
                return Err(located(
                    path,
                    line,
                    format!(
                        "key `kind`: unknown plot kind `{kind}`: expected {}",
                        one_of(&PlotKind::ALL.map(PlotKind::name))
                    ),
                ));
            };
            if let Some(r) = plot.runs.iter().find(|r| !commands.contains_key(*r)) {
                return Err(located(path, line, format!("key `runs`: no run is called `{r}`")));
            }
            // Found here, before anything runs, rather than when the plot looks for its files.
            for name in &plot.runs {
                let command = commands[name];
                if !plot_kind.reads().contains(&command) {
                    return Err(located(
                        path,
                        line,
                        format!(
                            "key `runs`: `{kind}` plots read the output of {}, but run `{name}` runs {}",
                            one_of(&plot_kind.reads().iter().map(|c| c.name()).collect::<Vec<_>>()),
                            command.name()
                        ),
                    ));
                }
            }
            if matches!(plot_kind, PlotKind::Reconstructions | PlotKind::Decoders) {
                let runs_by_name = |name: &String| exp.run.iter().find(|r| r.name.get_ref() == name);
                if let Some(name) = plot
                    .runs
                    .iter()
                    .find(|n| runs_by_name(n).is_some_and(|r| !r.args.contains_key("images")))
                {
                    return Err(located(
                        path,
                        line,
                        format!("key `runs`: `{kind}` plots draw the images of `sgd --images`, but run `{name}` keeps none (give it `images = 8`)"),
                    ));
                }
            }
            if !plot.labels.is_empty() && plot.labels.len() != plot.runs.len() {
                return Err(located(path, line, "key `labels`: give one label per run"));
            }
            if let Some(r) = plot.sgd_only.iter().find(|r| !plot.runs.contains(*r)) {
                return Err(located(
                    path,
                    line,
                    format!("key `sgd_only`: `{r}` is not among the plot's runs"),
                ));
            }
            if kind == "columns" && plot.columns.is_empty() {
                return Err(located(
                    path,
                    line,
                    "key `columns`: a columns plot needs at least one column",
                ));
            }
        }
        Ok(exp)
    }
}

impl Experiment {
    /// Checks, before anything runs, that every column a plot reads is among those its runs
    /// will write (`columns`, by run name, as `validate` found them).
    pub fn check_columns(
        &self,
        path: &str,
        text: &str,
        columns: &std::collections::HashMap<String, schema::OutputColumns>,
    ) -> Result<(), String> {
        for plot in &self.plot {
            let Some(kind) = PlotKind::parse(plot.kind.get_ref()) else {
                continue;
            };
            let from = plot.file.span().start;
            for (i, name) in plot.runs.iter().enumerate() {
                let (Some(run), Some(written)) =
                    (self.run.iter().find(|r| r.name.get_ref() == name), columns.get(name))
                else {
                    continue;
                };
                let second = written.second.clone().unwrap_or_default();
                // (key, the columns read, from which file)
                let mut reads: Vec<(&str, String, &Vec<String>)> = Vec::new();
                match kind {
                    PlotKind::Columns => {
                        let file = if run.command() == RunCommand::ReducedVsFull {
                            &second
                        } else {
                            &written.main
                        };
                        reads.extend(plot.columns.iter().map(|c| ("columns", c.clone(), file)));
                    }
                    PlotKind::Eg => {
                        let eg = match run.command() {
                            RunCommand::Compare if !plot.sgd_only.contains(name) => Some(schema::EG_ODE),
                            RunCommand::Ode => Some(schema::EG),
                            _ => None,
                        };
                        reads.extend(eg.map(|c| ("runs", c.to_string(), &written.main)));
                        if i == 0 {
                            reads.extend(
                                plot.pca_ranks
                                    .iter()
                                    .map(|r| ("pca_ranks", schema::eg_pca(*r), &written.main)),
                            );
                        }
                    }
                    PlotKind::Excess => {
                        reads.push(("runs", schema::EG.to_string(), &written.main));
                        reads.push(("runs", schema::EG_PCA.to_string(), &written.main));
                        reads.push(("runs", schema::EG.to_string(), &second));
                    }
                    PlotKind::Overlaps | PlotKind::Spectrum | PlotKind::Reconstructions | PlotKind::Decoders => {}
                }
                for (key, column, file) in reads {
                    if !file.contains(&column) {
                        const SHOWN: usize = 12;
                        let mut listed = file.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
                        if file.len() > SHOWN {
                            listed += &format!(", ... ({} in all)", file.len());
                        }
                        return Err(located(
                            path,
                            key_line(text, from, key),
                            format!(
                                "key `{key}`: run `{name}` will write no column `{column}` (its columns: {listed})"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl RunSpec {
    /// The run's command (checked by `Experiment::parse`).
    pub fn command(&self) -> RunCommand {
        RunCommand::parse(self.command.get_ref()).unwrap_or(RunCommand::Ode)
    }

    /// The command line this run stands for, without the program name and outputs.
    pub fn argv(&self, text: &str, path: &str) -> Result<Vec<String>, String> {
        let mut argv = vec![self.command.get_ref().clone()];
        for (key, value) in &self.args {
            let flag = format!("--{key}");
            let line = || key_line(text, self.name.span().start, key);
            let scalar = |v: &toml::Value| -> Result<String, String> {
                match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    toml::Value::Float(f) => Ok(format!("{f:e}")),
                    _ => Err(located(
                        path,
                        line(),
                        format!("key `{key}`: expected a number or a string"),
                    )),
                }
            };
            match value {
                toml::Value::Boolean(true) => argv.push(flag),
                toml::Value::Boolean(false) => {}
                // Lists: comma-separated for --spikes and --informed, repeated for --param.
                toml::Value::Array(items) if key == "param" => {
                    for item in items {
                        push_option(&mut argv, &flag, scalar(item)?);
                    }
                }
                toml::Value::Array(items) => {
                    let parts: Result<Vec<String>, String> = items.iter().map(scalar).collect();
                    push_option(&mut argv, &flag, parts?.join(","));
                }
                other => push_option(&mut argv, &flag, scalar(other)?),
            }
        }
        Ok(argv)
    }
}

/// `--flag value`, or `--flag=value` where the value starts with `-` (as `k = -1` does), which
/// the parser would otherwise take for an option of its own.
fn push_option(argv: &mut Vec<String>, flag: &str, value: String) {
    if value.starts_with('-') {
        argv.push(format!("{flag}={value}"));
    } else {
        argv.push(flag.to_string());
        argv.push(value);
    }
}

fn read(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Table::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The rows of an images file (`sgd --images-out`): what each row is, and its pixels.
fn read_images(path: &Path) -> Result<Vec<(String, Vec<f64>)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let mut cells = line.split(',');
            let what = cells.next().unwrap_or_default().to_string();
            let pixels = cells
                .skip(1)
                .map(|c| c.parse::<f64>())
                .collect::<Result<Vec<f64>, _>>()
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 2))?;
            Ok((what, pixels))
        })
        .collect()
}

/// The side of the square images in `images`.
fn image_side(images: &[(String, Vec<f64>)], file: &Path) -> Result<usize, String> {
    let d = images.first().map_or(0, |(_, p)| p.len());
    let side = (d as f64).sqrt().round() as usize;
    if side * side != d || d == 0 {
        return Err(format!(
            "{}: images of {d} pixels are not square (image plots need D = P^2)",
            file.display()
        ));
    }
    Ok(side)
}

/// The panels of a spectrum: the bulk's histogram against the Marchenko-Pastur density (the
/// spiked model only) and every eigenvalue by rank on log-log axes (with its prediction).
fn spectrum_panels(name: &str, main: &Path, density: &Path) -> Result<Vec<Curves>, String> {
    let ranks = read(main)?;
    let hist = read(density)?;
    let (left, right, dens) = (
        column(&hist, schema::BIN_LOW, density)?,
        column(&hist, schema::BIN_HIGH, density)?,
        column(&hist, schema::DENSITY, density)?,
    );
    // The histogram as one step line: up at the first edge, across each bin, down at the last.
    let mut x = left.first().map_or_else(Vec::new, |l| vec![*l]);
    let mut y = vec![0.0; x.len()];
    for ((l, r), h) in left.iter().zip(right).zip(dens) {
        x.extend([*l, *r]);
        y.extend([*h, *h]);
    }
    if let Some(r) = right.last() {
        x.push(*r);
        y.push(0.0);
    }
    let mut histogram = Curves {
        title: format!("{name}: the bulk"),
        x_label: "eigenvalue".into(),
        y_label: "density".into(),
        log_x: false,
        log_y: false,
        series: vec![Series {
            label: "histogram".into(),
            x,
            y,
            err: None,
            mark: Mark::Line,
            color: 0,
        }],
        hlines: vec![],
    };
    // Real data have no law to hold a histogram against: their spectrum is read by rank.
    let with_law = hist.column(schema::MP_DENSITY).is_some();
    if let Some(mp) = hist.column(schema::MP_DENSITY) {
        histogram.series.push(Series {
            label: "Marchenko-Pastur".into(),
            x: column(&hist, schema::BIN, density)?.to_vec(),
            y: mp.to_vec(),
            err: None,
            mark: Mark::Dashed,
            color: 1,
        });
    }
    let rank = column(&ranks, schema::RANK, main)?.to_vec();
    let mut by_rank = Curves {
        title: format!("{name}: eigenvalues by rank"),
        x_label: "rank".into(),
        y_label: "eigenvalue".into(),
        log_x: true,
        log_y: true,
        series: vec![Series {
            label: "sample covariance".into(),
            x: rank.clone(),
            y: column(&ranks, schema::EIGENVALUE, main)?.to_vec(),
            err: None,
            mark: Mark::Points,
            color: 0,
        }],
        hlines: vec![],
    };
    if let (Some(predicted), Some(stderr)) = (ranks.column(schema::PREDICTED), ranks.column(schema::STDERR)) {
        by_rank.series.push(Series {
            label: "predicted (outliers, then Marchenko-Pastur quantiles)".into(),
            x: rank,
            y: predicted.to_vec(),
            err: Some(stderr.iter().map(|s| if s.is_finite() { *s } else { 0.0 }).collect()),
            mark: Mark::Dashed,
            color: 1,
        });
    }
    Ok(if with_law {
        vec![histogram, by_rank]
    } else {
        vec![by_rank]
    })
}

fn column<'a>(table: &'a Table, name: &str, file: &Path) -> Result<&'a [f64], String> {
    table
        .column(name)
        .ok_or_else(|| format!("{} has no column `{name}`", file.display()))
}

/// Draws one plot from the CSV files of its runs in `dir`; returns the files written.
pub fn draw(plot: &PlotSpec, runs: &[RunSpec], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let label = |i: usize| plot.labels.get(i).cloned().unwrap_or_else(|| plot.runs[i].clone());
    let command = |name: &str| {
        runs.iter()
            .find(|r| r.name.get_ref() == name)
            .map_or(RunCommand::Ode, RunSpec::command)
    };
    let main_output = |name: &str| dir.join(Outputs::of(command(name), name).main);
    // Validation has checked that the plot's kind goes with its runs' commands.
    let second_output = |name: &str| dir.join(Outputs::of(command(name), name).second.unwrap_or_default());
    let stem = dir.join(plot.file.get_ref());
    let mut curves = Curves {
        title: plot.title.clone(),
        x_label: "t (SGD steps / D)".into(),
        y_label: plot.y_label.clone().unwrap_or_else(|| schema::EG.into()),
        log_x: plot.log_x,
        log_y: plot.log_y,
        series: vec![],
        hlines: vec![],
    };
    let kind =
        PlotKind::parse(plot.kind.get_ref()).ok_or_else(|| format!("unknown plot kind `{}`", plot.kind.get_ref()))?;
    match kind {
        PlotKind::Eg => {
            for (i, run) in plot.runs.iter().enumerate() {
                let file = main_output(run);
                let table = read(&file)?;
                let t = column(&table, schema::TIME, &file)?.to_vec();
                let ode = match command(run) {
                    RunCommand::Compare => Some(schema::EG_ODE),
                    RunCommand::Sgd => None,
                    _ => Some(schema::EG),
                };
                if let Some(ode) = ode.filter(|_| !plot.sgd_only.contains(run)) {
                    curves.series.push(Series {
                        label: format!("{} (ODE)", label(i)),
                        x: t.clone(),
                        y: column(&table, ode, &file)?.to_vec(),
                        err: None,
                        mark: Mark::Line,
                        color: i,
                    });
                }
                if let (Some(mean), Some(std)) = (table.column(schema::EG_SGD_MEAN), table.column(schema::EG_SGD_STD)) {
                    // t = 0 is off a log axis; the markers start at the first output time.
                    curves.series.push(Series {
                        label: format!("{} (SGD)", label(i)),
                        x: t.clone(),
                        y: mean.to_vec(),
                        err: Some(std.to_vec()),
                        mark: Mark::Points,
                        color: i,
                    });
                }
                if i == 0 {
                    for (r, rank) in table
                        .header
                        .iter()
                        .enumerate()
                        .filter_map(|(r, h)| schema::pca_rank(h).map(|rank| (r, rank)))
                    {
                        if plot.pca_ranks.is_empty() || plot.pca_ranks.contains(&rank) {
                            curves.hlines.push((format!("PCA rank {rank}"), table.columns[r][0]));
                        }
                    }
                    if let Some(r) = plot
                        .pca_ranks
                        .iter()
                        .find(|r| table.column(&schema::eg_pca(**r)).is_none())
                    {
                        return Err(format!(
                            "plot `{}`: {} has no PCA error of rank {r}",
                            plot.file.get_ref(),
                            file.display()
                        ));
                    }
                }
            }
        }
        PlotKind::Excess => {
            curves.y_label = plot.y_label.clone().unwrap_or_else(|| "eg - eg_PCA(K)".into());
            curves.log_y = true;
            for (i, run) in plot.runs.iter().enumerate() {
                let full_file = main_output(run);
                let full = read(&full_file)?;
                let pca = column(&full, schema::EG_PCA, &full_file)?[0];
                let reduced_file = second_output(run);
                let reduced = read(&reduced_file)?;
                for (table, file, what, mark) in [
                    (&full, &full_file, "full", Mark::Line),
                    (&reduced, &reduced_file, "reduced", Mark::Dashed),
                ] {
                    let eg = column(table, schema::EG, file)?;
                    curves.series.push(Series {
                        label: format!("{} ({what})", label(i)),
                        x: column(table, schema::TIME, file)?.to_vec(),
                        y: eg.iter().map(|e| e - pca).collect(),
                        err: None,
                        mark,
                        color: i,
                    });
                }
            }
        }
        PlotKind::Columns => {
            curves.y_label = plot.y_label.clone().unwrap_or_default();
            // `X_ode` and `X_sgd` are one quantity: they share a colour.
            let mut bases: Vec<String> = Vec::new();
            for (i, run) in plot.runs.iter().enumerate() {
                // A reduced-vs-full run's columns are those of its reduced run.
                let file = if command(run) == RunCommand::ReducedVsFull {
                    second_output(run)
                } else {
                    main_output(run)
                };
                let table = read(&file)?;
                let t = column(&table, schema::TIME, &file)?.to_vec();
                for name in &plot.columns {
                    let y = column(&table, name, &file)?.to_vec();
                    // A PCA error is a constant: a reference line, drawn once.
                    if let Some(rank) = schema::pca_rank(name) {
                        let line = format!("PCA rank {rank}");
                        if !curves.hlines.iter().any(|(l, _)| *l == line) {
                            curves.hlines.push((line, y.first().copied().unwrap_or(f64::NAN)));
                        }
                        continue;
                    }
                    let mark = if schema::is_sgd_column(name) {
                        Mark::Points
                    } else {
                        Mark::Line
                    };
                    let prefix = if plot.runs.len() > 1 {
                        format!("{}: ", label(i))
                    } else {
                        String::new()
                    };
                    let base = format!("{run}/{}", schema::quantity(name));
                    let color = bases.iter().position(|b| *b == base).unwrap_or_else(|| {
                        bases.push(base);
                        bases.len() - 1
                    });
                    curves.series.push(Series {
                        label: format!("{prefix}{name}"),
                        x: t.clone(),
                        y,
                        err: None,
                        mark,
                        color,
                    });
                }
            }
        }
        PlotKind::Spectrum => {
            let mut panels = Vec::new();
            for (i, run) in plot.runs.iter().enumerate() {
                panels.extend(spectrum_panels(&label(i), &main_output(run), &second_output(run))?);
            }
            plot::write_panels(&panels, &stem)?;
            return Ok(vec![stem.with_extension("png"), stem.with_extension("svg")]);
        }
        PlotKind::Reconstructions | PlotKind::Decoders => {
            let mut rows = Vec::new();
            let mut side = 0;
            for (i, run) in plot.runs.iter().enumerate() {
                let file = dir.join(Outputs::images_file(run));
                let images = read_images(&file)?;
                side = image_side(&images, &file)?;
                let group = |what: &str| -> Vec<Vec<f64>> {
                    images
                        .iter()
                        .filter(|(w, _)| w == what)
                        .map(|(_, p)| p.clone())
                        .collect()
                };
                if kind == PlotKind::Decoders {
                    rows.push((format!("{}: decoder rows", label(i)), group(schema::IMAGE_DECODER)));
                    continue;
                }
                if i == 0 {
                    rows.push(("held-out images".to_string(), group(schema::IMAGE_ORIGINAL)));
                }
                rows.push((format!("{}: all neurons", label(i)), group(schema::IMAGE_ALL)));
                // The partial rows, named `first<M>`.
                let mut partial: Vec<&String> = images
                    .iter()
                    .map(|(w, _)| w)
                    .filter(|w| w.starts_with("first"))
                    .collect();
                partial.dedup();
                for name in partial {
                    let units = name.trim_start_matches("first");
                    rows.push((format!("{}: first {units} neurons", label(i)), group(name)));
                }
            }
            plot::write_image_grid(&plot.title, &rows, side, &stem)?;
            return Ok(vec![stem.with_extension("png"), stem.with_extension("svg")]);
        }
        PlotKind::Overlaps => {
            let mut panels = Vec::new();
            for (i, run) in plot.runs.iter().enumerate() {
                let file = second_output(run);
                let table = read(&file)?;
                let replica = column(&table, schema::REPLICA, &file)?;
                let spikes: Vec<&[f64]> = (2..table.header.len()).map(|j| &table.columns[j][..]).collect();
                // Replica 0: another replica may learn another rotation, so averaging would blur it.
                let rows: Vec<Vec<f64>> = (0..replica.len())
                    .filter(|r| replica[*r] == 0.0)
                    .map(|r| spikes.iter().map(|c| c[r]).collect())
                    .collect();
                panels.push((label(i), rows));
            }
            plot::write_heatmaps(&plot.title, &panels, &stem)?;
            return Ok(vec![stem.with_extension("png"), stem.with_extension("svg")]);
        }
    }
    plot::write_curves(&curves, &stem)?;
    Ok(vec![stem.with_extension("png"), stem.with_extension("svg")])
}
