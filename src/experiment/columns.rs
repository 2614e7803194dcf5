//! The columns plots read, found among those their runs will write before anything runs.

use super::{key_line, located, Experiment, PlotKind, RunCommand};
use crate::schema;

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
            let kind = *plot.kind.get_ref();
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
