//! Experiment files (experiments/*.toml): named runs of the subcommands with their options as
//! keys, and the plots drawn from their CSV output. Validation names the key and its line.

mod columns;
mod draw;

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

pub use crate::schema::RunCommand;
pub use draw::draw;

use crate::names::{deserialize_by_name, one_of, Named};

/// The shipped experiments, by name: every file of `experiments/` (listed by `build.rs`),
/// built into the binary so that `reproduce` works anywhere, in the order of the paper's
/// figures.
pub fn shipped() -> Vec<(&'static str, &'static str)> {
    let mut list: Vec<(&str, &str)> = SHIPPED_FILES.to_vec();
    list.sort_by_key(|(name, text)| (figure_number(text), *name));
    list
}

include!(concat!(env!("OUT_DIR"), "/experiments.rs"));

/// The first number of an experiment's `figure` (1 for "1(b)", 6 for "6 and 8"); files that
/// name none come last.
fn figure_number(text: &str) -> u32 {
    #[derive(Deserialize)]
    struct Figure {
        figure: Option<String>,
    }
    let figure = toml::from_str::<Figure>(text).ok().and_then(|f| f.figure);
    figure
        .and_then(|f| {
            let digits: String = f.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        })
        .unwrap_or(u32::MAX)
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

impl Named for PlotKind {
    const ALL: &'static [PlotKind] = &[
        PlotKind::Eg,
        PlotKind::Excess,
        PlotKind::Columns,
        PlotKind::Overlaps,
        PlotKind::Spectrum,
        PlotKind::Reconstructions,
        PlotKind::Decoders,
    ];
    const WHAT: &'static str = "plot kind";
    const KEY: &'static str = "kind";

    fn name(self) -> &'static str {
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
}

deserialize_by_name!(PlotKind);

impl PlotKind {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub title: String,
    pub about: String,
    /// The figure of the paper the experiment reproduces (`2`, `5(d)`, `6 and 8`).
    #[serde(default)]
    pub figure: Option<String>,
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
    pub command: toml::Spanned<RunCommand>,
    /// The subcommand's options, keyed by their long names without `--`.
    #[serde(default)]
    pub args: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// Output stem: `<file>.png` and `<file>.svg`.
    pub file: toml::Spanned<String>,
    pub kind: toml::Spanned<PlotKind>,
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

/// Options that `reproduce` and `sweep` set themselves.
pub(crate) const RESERVED: [&str; 7] = [
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
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().any(|c| c != '.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
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

/// An experiment file being checked: where errors point.
struct Checker<'a> {
    path: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn error(&self, line: usize, msg: impl std::fmt::Display) -> String {
        located(self.path, line, msg)
    }

    /// Each run's command by run name (what the plots may read), after checking the names and
    /// that no run sets the outputs.
    fn runs(&self, exp: &Experiment) -> Result<HashMap<String, RunCommand>, String> {
        let mut commands = HashMap::new();
        for run in &exp.run {
            let line = line_of(self.text, run.name.span().start);
            let name = run.name.get_ref();
            if !is_plain_name(name) {
                return Err(self.error(line, format!("key `name`: `{name}` must be letters, digits, -, _ or .")));
            }
            if commands.insert(name.clone(), run.command()).is_some() {
                return Err(self.error(line, format!("key `name`: two runs are called `{name}`")));
            }
            if let Some(key) = run.args.keys().find(|k| RESERVED.contains(&k.as_str())) {
                return Err(self.error(
                    key_line(self.text, run.name.span().start, key),
                    format!("key `{key}`: reproduce sets the outputs itself; remove it"),
                ));
            }
        }
        Ok(commands)
    }

    /// A plot's file name: a name inside the output directory, used once. A path (`../x`,
    /// `/tmp/x`) or an empty name would write elsewhere.
    fn plot_file(&self, plot: &PlotSpec, files: &mut std::collections::BTreeSet<String>) -> Result<(), String> {
        let line = line_of(self.text, plot.file.span().start);
        let file = plot.file.get_ref();
        if !is_plain_name(file) {
            return Err(self.error(
                line,
                format!("key `file`: `{file}` must be letters, digits, -, _ or . (a name, not a path)"),
            ));
        }
        if !files.insert(file.clone()) {
            return Err(self.error(line, format!("key `file`: two plots write `{file}`")));
        }
        Ok(())
    }

    /// A plot's runs exist and write what its kind reads; found here, before anything runs,
    /// rather than when the plot looks for its files.
    fn plot_runs(
        &self,
        exp: &Experiment,
        plot: &PlotSpec,
        commands: &HashMap<String, RunCommand>,
    ) -> Result<(), String> {
        let line = line_of(self.text, plot.kind.span().start);
        let kind = *plot.kind.get_ref();
        if plot.runs.is_empty() {
            return Err(self.error(line, "key `runs`: an empty list draws nothing; name the runs to plot"));
        }
        if let Some(r) = plot.runs.iter().find(|r| !commands.contains_key(*r)) {
            return Err(self.error(line, format!("key `runs`: no run is called `{r}`")));
        }
        for name in &plot.runs {
            let command = commands[name];
            if !kind.reads().contains(&command) {
                let reads: Vec<&str> = kind.reads().iter().map(|c| c.name()).collect();
                return Err(self.error(
                    line,
                    format!(
                        "key `runs`: `{}` plots read the output of {}, but run `{name}` runs {}",
                        kind.name(),
                        one_of(&reads),
                        command.name()
                    ),
                ));
            }
        }
        if matches!(kind, PlotKind::Reconstructions | PlotKind::Decoders) {
            let keeps_none = |name: &&String| {
                exp.run
                    .iter()
                    .find(|r| r.name.get_ref() == *name)
                    .is_some_and(|r| !r.args.contains_key("images"))
            };
            if let Some(name) = plot.runs.iter().find(keeps_none) {
                return Err(self.error(
                    line,
                    format!("key `runs`: `{}` plots draw the images of `sgd --images`, but run `{name}` keeps none (give it `images = 8`)", kind.name()),
                ));
            }
        }
        Ok(())
    }

    /// The keys that go with a plot's runs: labels, SGD-only runs, columns.
    fn plot_keys(&self, plot: &PlotSpec) -> Result<(), String> {
        let line = line_of(self.text, plot.kind.span().start);
        if !plot.labels.is_empty() && plot.labels.len() != plot.runs.len() {
            return Err(self.error(line, "key `labels`: give one label per run"));
        }
        if let Some(r) = plot.sgd_only.iter().find(|r| !plot.runs.contains(*r)) {
            return Err(self.error(line, format!("key `sgd_only`: `{r}` is not among the plot's runs")));
        }
        if *plot.kind.get_ref() == PlotKind::Columns && plot.columns.is_empty() {
            return Err(self.error(line, "key `columns`: a columns plot needs at least one column"));
        }
        Ok(())
    }
}

impl Experiment {
    /// Parses and checks an experiment file (`path` names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Experiment, String> {
        let exp: Experiment = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            located(path, line, e.message())
        })?;
        let checker = Checker { path, text };
        let commands = checker.runs(&exp)?;
        let mut files = std::collections::BTreeSet::new();
        for plot in &exp.plot {
            checker.plot_file(plot, &mut files)?;
            checker.plot_runs(&exp, plot, &commands)?;
            checker.plot_keys(plot)?;
        }
        Ok(exp)
    }

    /// The title as `reproduce --list` shows it, with the figure of the paper.
    pub fn listing(&self) -> String {
        match &self.figure {
            Some(f) => format!("figure {f}: {}", self.title),
            None => self.title.clone(),
        }
    }
}

impl RunSpec {
    /// The run's command.
    pub fn command(&self) -> RunCommand {
        *self.command.get_ref()
    }

    /// The command line this run stands for, without the program name and outputs.
    pub fn argv(&self, text: &str, path: &str) -> Result<Vec<String>, String> {
        let mut argv = vec![self.command().name().to_string()];
        for (key, value) in &self.args {
            let line = || key_line(text, self.name.span().start, key);
            push_key(&mut argv, key, value).map_err(|msg| located(path, line(), msg))?;
        }
        Ok(argv)
    }
}

/// The option that `key = value` stands for: `true` is a flag, lists are comma-separated
/// (`--spikes 9,3,1`) except for `--param`, which repeats.
pub fn push_key(argv: &mut Vec<String>, key: &str, value: &toml::Value) -> Result<(), String> {
    let flag = format!("--{key}");
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(format!("{f:e}")),
            _ => Err(format!("key `{key}`: expected a number or a string")),
        }
    };
    match value {
        toml::Value::Boolean(true) => argv.push(flag),
        toml::Value::Boolean(false) => {}
        toml::Value::Array(items) if key == "param" => {
            for item in items {
                push_option(argv, &flag, scalar(item)?);
            }
        }
        toml::Value::Array(items) => {
            let parts: Result<Vec<String>, String> = items.iter().map(scalar).collect();
            push_option(argv, &flag, parts?.join(","));
        }
        other => push_option(argv, &flag, scalar(other)?),
    }
    Ok(())
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
