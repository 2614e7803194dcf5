//! Drawing an experiment's plots from the CSV files of its runs: one function per plot kind.

use std::path::{Path, PathBuf};

use super::{PlotKind, PlotSpec, RunCommand, RunSpec};
use crate::plot::{self, Curves, Mark, Series, Table};
use crate::schema::{self, Outputs};

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

/// A named grid of values: a row of images, or a heat map.
type Panel = (String, Vec<Vec<f64>>);

/// One plot being drawn: its spec, the experiment's runs, and the directory of their files.
struct Drawing<'a> {
    plot: &'a PlotSpec,
    runs: &'a [RunSpec],
    dir: &'a Path,
}

impl Drawing<'_> {
    /// The legend name of the plot's run `i` (its label, else its name).
    fn label(&self, i: usize) -> String {
        self.plot
            .labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| self.plot.runs[i].clone())
    }

    fn command(&self, name: &str) -> RunCommand {
        self.runs
            .iter()
            .find(|r| r.name.get_ref() == name)
            .map_or(RunCommand::Ode, RunSpec::command)
    }

    fn main_output(&self, name: &str) -> PathBuf {
        self.dir.join(Outputs::of(self.command(name), name).main)
    }

    /// Validation has checked that the plot's kind goes with its runs' commands.
    fn second_output(&self, name: &str) -> PathBuf {
        self.dir
            .join(Outputs::of(self.command(name), name).second.unwrap_or_default())
    }

    /// ODE lines, SGD markers and the first run's PCA errors.
    fn eg(&self, curves: &mut Curves) -> Result<(), String> {
        let plot = self.plot;
        for (i, run) in plot.runs.iter().enumerate() {
            let file = self.main_output(run);
            let table = read(&file)?;
            let t = column(&table, schema::TIME, &file)?.to_vec();
            let ode = match self.command(run) {
                RunCommand::Compare => Some(schema::EG_ODE),
                RunCommand::Sgd => None,
                _ => Some(schema::EG),
            };
            if let Some(ode) = ode.filter(|_| !plot.sgd_only.contains(run)) {
                curves.series.push(Series {
                    label: format!("{} (ODE)", self.label(i)),
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
                    label: format!("{} (SGD)", self.label(i)),
                    x: t.clone(),
                    y: mean.to_vec(),
                    err: Some(std.to_vec()),
                    mark: Mark::Points,
                    color: i,
                });
            }
            if i == 0 {
                self.pca_lines(&table, &file, curves)?;
            }
        }
        Ok(())
    }

    /// The PCA errors of `table` as reference lines: the ranks the plot asks for, or all.
    fn pca_lines(&self, table: &Table, file: &Path, curves: &mut Curves) -> Result<(), String> {
        let plot = self.plot;
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
        Ok(())
    }

    /// eg - eg_PCA of each reduced-vs-full run: the full run (line) and the reduced (dashed).
    fn excess(&self, curves: &mut Curves) -> Result<(), String> {
        curves.y_label = self.plot.y_label.clone().unwrap_or_else(|| "eg - eg_PCA(K)".into());
        curves.log_y = true;
        for (i, run) in self.plot.runs.iter().enumerate() {
            let full_file = self.main_output(run);
            let full = read(&full_file)?;
            let pca = column(&full, schema::EG_PCA, &full_file)?[0];
            let reduced_file = self.second_output(run);
            let reduced = read(&reduced_file)?;
            for (table, file, what, mark) in [
                (&full, &full_file, "full", Mark::Line),
                (&reduced, &reduced_file, "reduced", Mark::Dashed),
            ] {
                let eg = column(table, schema::EG, file)?;
                curves.series.push(Series {
                    label: format!("{} ({what})", self.label(i)),
                    x: column(table, schema::TIME, file)?.to_vec(),
                    y: eg.iter().map(|e| e - pca).collect(),
                    err: None,
                    mark,
                    color: i,
                });
            }
        }
        Ok(())
    }

    /// Chosen columns against t. `X_ode` and `X_sgd` are one quantity: they share a colour.
    fn columns(&self, curves: &mut Curves) -> Result<(), String> {
        let plot = self.plot;
        curves.y_label = plot.y_label.clone().unwrap_or_default();
        let mut bases: Vec<String> = Vec::new();
        for (i, run) in plot.runs.iter().enumerate() {
            // A reduced-vs-full run's columns are those of its reduced run.
            let file = if self.command(run) == RunCommand::ReducedVsFull {
                self.second_output(run)
            } else {
                self.main_output(run)
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
                    format!("{}: ", self.label(i))
                } else {
                    String::new()
                };
                let base = format!("{run}/{}", schema::quantity(name));
                let color = bases.iter().position(|b| *b == base).unwrap_or_else(|| {
                    bases.push(base);
                    bases.len() - 1
                });
                curves.series.push(Series {
                    label: format!("{prefix}{}", schema::describe(name)),
                    x: t.clone(),
                    y,
                    err: None,
                    mark,
                    color,
                });
            }
        }
        Ok(())
    }

    /// The rows of an image grid: held-out images and their reconstructions, or decoder rows.
    fn image_rows(&self, kind: PlotKind) -> Result<(Vec<Panel>, usize), String> {
        let mut rows = Vec::new();
        let mut side = 0;
        for (i, run) in self.plot.runs.iter().enumerate() {
            let file = self.dir.join(Outputs::images_file(run));
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
                rows.push((format!("{}: decoder rows", self.label(i)), group(schema::IMAGE_DECODER)));
                continue;
            }
            if i == 0 {
                rows.push(("held-out images".to_string(), group(schema::IMAGE_ORIGINAL)));
            }
            rows.push((format!("{}: all neurons", self.label(i)), group(schema::IMAGE_ALL)));
            // The partial rows, named `first<M>`.
            let mut partial: Vec<&String> = images
                .iter()
                .map(|(w, _)| w)
                .filter(|w| w.starts_with("first"))
                .collect();
            partial.dedup();
            for name in partial {
                let units = name.trim_start_matches("first");
                rows.push((format!("{}: first {units} neurons", self.label(i)), group(name)));
            }
        }
        Ok((rows, side))
    }

    /// Replica 0's final decoder overlaps of each run: another replica may learn another
    /// rotation, so averaging would blur it.
    fn overlap_panels(&self) -> Result<Vec<Panel>, String> {
        let mut panels = Vec::new();
        for (i, run) in self.plot.runs.iter().enumerate() {
            let file = self.second_output(run);
            let table = read(&file)?;
            let replica = column(&table, schema::REPLICA, &file)?;
            let spikes: Vec<&[f64]> = (2..table.header.len()).map(|j| &table.columns[j][..]).collect();
            let rows: Vec<Vec<f64>> = (0..replica.len())
                .filter(|r| replica[*r] == 0.0)
                .map(|r| spikes.iter().map(|c| c[r]).collect())
                .collect();
            panels.push((self.label(i), rows));
        }
        Ok(panels)
    }
}

/// Draws one plot from the CSV files of its runs in `dir`; returns the files written.
pub fn draw(plot: &PlotSpec, runs: &[RunSpec], dir: &Path) -> Result<Vec<PathBuf>, String> {
    let drawing = Drawing { plot, runs, dir };
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
    let kind = *plot.kind.get_ref();
    match kind {
        PlotKind::Eg => drawing.eg(&mut curves)?,
        PlotKind::Excess => drawing.excess(&mut curves)?,
        PlotKind::Columns => drawing.columns(&mut curves)?,
        PlotKind::Spectrum => {
            let mut panels = Vec::new();
            for (i, run) in plot.runs.iter().enumerate() {
                panels.extend(spectrum_panels(
                    &drawing.label(i),
                    &drawing.main_output(run),
                    &drawing.second_output(run),
                )?);
            }
            plot::write_panels(&panels, &stem)?;
        }
        PlotKind::Reconstructions | PlotKind::Decoders => {
            let (rows, side) = drawing.image_rows(kind)?;
            plot::write_image_grid(&plot.title, &rows, side, &stem)?;
        }
        PlotKind::Overlaps => plot::write_heatmaps(&plot.title, &drawing.overlap_panels()?, &stem)?,
    }
    if matches!(kind, PlotKind::Eg | PlotKind::Excess | PlotKind::Columns) {
        plot::write_curves(&curves, &stem)?;
    }
    Ok(vec![stem.with_extension("png"), stem.with_extension("svg")])
}
