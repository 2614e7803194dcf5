//! What `compare` and `sgd` produce: the run's records and the CSV files written from them.

use ae_dsl::ir::Input;

use super::{CompareJob, Images, Measure};
use crate::error::RunError;
use crate::run::OdeRun;
use crate::schema;

/// Observables of every replica at every output time: `[replica][time][observable]`.
pub type ReplicaObservables = Vec<Vec<Vec<f64>>>;

pub struct CompareRun {
    /// The output times (t = 0 first).
    pub times: Vec<f64>,
    /// The ODE's run (`compare`; none for `sgd`).
    pub ode: Option<OdeRun>,
    pub sgd: ReplicaObservables,
    /// Reconstructed fraction of each spike's variance: `[replica][time][spike]`.
    pub sgd_spikes: ReplicaObservables,
    /// The same from the ODE, `[time][spike]` (when the ODE file is spike+bulk vanilla).
    pub ode_spikes: Option<Vec<Vec<f64>>>,
    /// Monte-Carlo eg of each replica on the held-out set, `[replica][time]` (empty: none).
    pub sgd_test_eg: Vec<Vec<f64>>,
    /// The same for the first `partial` neurons' reconstruction (empty: none).
    pub sgd_partial_eg: Vec<Vec<f64>>,
    pub partial: Option<usize>,
    /// Each replica's (|w_k|, |v_k|) at every output time, `[replica][time]`.
    pub norms: Vec<Vec<(Vec<f64>, Vec<f64>)>>,
    /// Replica 0's reconstructions of held-out samples (when asked for).
    pub images: Option<Images>,
    pub pca: Vec<f64>,
    /// Each replica's biases at the end (zeros unless they are trained).
    pub final_bias: Vec<Vec<f64>>,
    /// Each replica's final |cos| between decoder row k and spike (or top eigenvector) m, K x M.
    pub final_overlaps: Vec<Vec<Vec<f64>>>,
    /// Names of the SGD side's observables (the measuring equations').
    pub sgd_names: Vec<String>,
    /// Whether the activation is positively homogeneous: then the scale-free products
    /// Q_kk T0_kk are written (docs/theory.md section 10).
    pub homogeneous: bool,
    /// Columns of eg among the ODE's and the SGD side's observables.
    pub(super) ode_eg_column: usize,
    pub(super) sgd_eg_column: usize,
}

/// Mean and (sample) standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Order parameters are written as SGD-only columns up to this K (5 matrices of K^2 entries
/// each: at K = 64 they would be 20 000 columns).
const SGD_ONLY_OBSERVABLES_MAX_K: usize = 8;

impl CompareRun {
    /// A run of `job` with no replica recorded yet, no ODE and no PCA errors.
    pub(super) fn empty(job: &CompareJob, measure: &Measure) -> CompareRun {
        CompareRun {
            times: job.ode.times.clone(),
            ode: None,
            sgd: Vec::new(),
            sgd_spikes: Vec::new(),
            ode_spikes: None,
            sgd_test_eg: Vec::new(),
            sgd_partial_eg: Vec::new(),
            partial: job.partial,
            norms: Vec::new(),
            images: None,
            pca: Vec::new(),
            final_bias: Vec::new(),
            final_overlaps: Vec::new(),
            sgd_names: measure.observable_names().to_vec(),
            homogeneous: measure.homogeneous(),
            ode_eg_column: 0,
            sgd_eg_column: measure.eg_column,
        }
    }

    /// Index of an observable by name on both sides (the ODE file's names).
    pub fn ode_index(&self, name: &str) -> Option<usize> {
        self.ode.as_ref()?.observable_names.iter().position(|n| n == name)
    }

    /// Seed-averaged SGD eg at every output time.
    pub fn sgd_eg(&self) -> Vec<(f64, f64)> {
        let j = self.sgd_eg_column;
        (0..self.times.len())
            .map(|i| mean_std(&self.sgd.iter().map(|r| r[i][j]).collect::<Vec<_>>()))
            .collect()
    }

    /// eg from the ODE at every output time (empty without the ODE).
    pub fn ode_eg(&self) -> Vec<f64> {
        let i = self.ode_eg_column;
        self.ode.as_ref().map_or_else(Vec::new, |ode| {
            ode.trajectory.observables.iter().map(|o| o[i]).collect()
        })
    }

    /// Mean over replicas of `value(replica)` at output `i`.
    fn replica_mean<T>(records: &[Vec<T>], i: usize, value: impl Fn(&T) -> f64) -> f64 {
        mean_std(&records.iter().map(|r| value(&r[i])).collect::<Vec<_>>()).0
    }

    /// Each replica's final decoder overlaps: columns replica, unit, then one per spike.
    pub fn write_overlaps_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let m = self
            .final_overlaps
            .first()
            .and_then(|r| r.first())
            .map_or(0, |row| row.len());
        let mut header = vec![schema::REPLICA.to_string(), schema::UNIT.to_string()];
        header.extend((0..m).map(schema::spike_overlap));
        writeln!(out, "{}", header.join(","))?;
        for (r, matrix) in self.final_overlaps.iter().enumerate() {
            for (k, row) in matrix.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
                writeln!(out, "{r},{k},{}", cells.join(","))?;
            }
        }
        Ok(())
    }

    /// Replica 0's held-out samples, their reconstructions and its first decoder rows, one
    /// image per row: columns `image` (original, all, first<M> or decoder), `index`, then the
    /// D pixels.
    pub fn write_images_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let Some(images) = &self.images else {
            return Ok(());
        };
        let d = images.originals.first().map_or(0, Vec::len);
        let mut header = vec![schema::IMAGE.to_string(), schema::INDEX.to_string()];
        header.extend((0..d).map(schema::pixel));
        writeln!(out, "{}", header.join(","))?;
        let partial = schema::partial_image(images.partial_units);
        for (what, rows) in [
            (schema::IMAGE_ORIGINAL, &images.originals),
            (schema::IMAGE_ALL, &images.full),
            (partial.as_str(), &images.partial),
            (schema::IMAGE_DECODER, &images.decoder),
        ] {
            for (i, row) in rows.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
                writeln!(out, "{what},{i},{}", cells.join(","))?;
            }
        }
        Ok(())
    }

    pub fn write_csv(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let k = self.norms.first().and_then(|r| r.first()).map_or(0, |(w, _)| w.len());
        let ode_names = self.ode.as_ref().map(|o| &o.observable_names[..]);
        let columns = header(&HeaderParts {
            sgd_names: &self.sgd_names,
            ode_names,
            pca: self.pca.len(),
            test: !self.sgd_test_eg.is_empty(),
            partial: self.partial,
            ode_spikes: self.ode_spikes.is_some(),
            homogeneous: self.homogeneous,
            k,
        });
        let (header, shared) = (columns.names, columns.shared);
        let with_norms = self.ode.is_none();
        writeln!(out, "{}", header.join(","))?;
        let eg_sgd = self.sgd_eg();
        let eg_ode = self.ode_eg();
        for (i, t) in self.times.iter().enumerate() {
            let mut row = vec![format!("{t:e}")];
            if let Some(eg) = eg_ode.get(i) {
                row.push(format!("{eg:e}"));
            }
            row.extend([format!("{:e}", eg_sgd[i].0), format!("{:e}", eg_sgd[i].1)]);
            if !self.sgd_test_eg.is_empty() {
                row.push(format!("{:e}", Self::replica_mean(&self.sgd_test_eg, i, |v| *v)));
            }
            if !self.sgd_partial_eg.is_empty() {
                row.push(format!("{:e}", Self::replica_mean(&self.sgd_partial_eg, i, |v| *v)));
            }
            row.extend(self.pca.iter().map(|p| format!("{p:e}")));
            for (oi, sj) in &shared {
                if let (Some(oi), Some(ode)) = (oi, &self.ode) {
                    row.push(format!("{:e}", ode.trajectory.observables[i][*oi]));
                }
                row.push(format!("{:e}", Self::replica_mean(&self.sgd, i, |o| o[*sj])));
            }
            for product in &columns.scale_free {
                if let (Some((q, t0)), Some(ode)) = (product.ode, &self.ode) {
                    let o = &ode.trajectory.observables[i];
                    row.push(format!("{:e}", o[q] * o[t0]));
                }
                let (q, t0) = product.sgd;
                row.push(format!("{:e}", Self::replica_mean(&self.sgd, i, |o| o[q] * o[t0])));
            }
            for m in 0..self.pca.len() {
                if let Some(ode) = &self.ode_spikes {
                    row.push(format!("{:e}", ode[i][m]));
                }
                row.push(format!("{:e}", Self::replica_mean(&self.sgd_spikes, i, |r| r[m])));
            }
            if with_norms {
                for j in 0..k {
                    row.push(format!("{:e}", Self::replica_mean(&self.norms, i, |(w, _)| w[j])));
                }
                for j in 0..k {
                    row.push(format!("{:e}", Self::replica_mean(&self.norms, i, |(_, v)| v[j])));
                }
            }
            writeln!(out, "{}", row.join(","))?;
        }
        Ok(())
    }
}

/// What decides the columns of a `compare` or `sgd` CSV.
struct HeaderParts<'a> {
    /// The measuring equations' observables (eg first).
    sgd_names: &'a [String],
    /// The ODE's observables (`compare`), or none (`sgd`).
    ode_names: Option<&'a [String]>,
    /// PCA ranks 1..=pca.
    pca: usize,
    test: bool,
    partial: Option<usize>,
    /// Whether the ODE's state carries the per-mode overlaps (for its reconstructed fractions).
    ode_spikes: bool,
    /// Whether to write the scale-free products Q_kk T0_kk (homogeneous activations).
    homogeneous: bool,
    k: usize,
}

/// A CSV's columns and where each computed column's values come from.
struct Columns {
    names: Vec<String>,
    /// For each order parameter written: its index on the ODE side (if any) and on the SGD side.
    shared: Vec<(Option<usize>, usize)>,
    scale_free: Vec<ScaleFree>,
}

/// A product Q_kk T0_kk written: its unit and the indices of its two factors on the ODE side
/// (none without the ODE) and on the SGD side.
struct ScaleFree {
    unit: usize,
    ode: Option<(usize, usize)>,
    sgd: (usize, usize),
}

/// Units whose Q_kk and T0_kk both exist on every side present.
fn scale_free_pairs(p: &HeaderParts) -> Vec<ScaleFree> {
    if !p.homogeneous {
        return Vec::new();
    }
    let find = |names: &[String], name: &str| names.iter().position(|n| n == name);
    (0..p.k)
        .filter_map(|k| {
            let (q, t0) = (format!("Q[{k},{k}]"), format!("T0[{k},{k}]"));
            let sgd = (find(p.sgd_names, &q)?, find(p.sgd_names, &t0)?);
            let ode = match p.ode_names {
                Some(names) => Some((find(names, &q)?, find(names, &t0)?)),
                None => None,
            };
            Some(ScaleFree { unit: k, ode, sgd })
        })
        .collect()
}

/// The columns and the sources of their values.
fn header(p: &HeaderParts) -> Columns {
    let mut header: Vec<String> = vec![schema::TIME.into()];
    if p.ode_names.is_some() {
        header.push(schema::EG_ODE.into());
    }
    header.extend([schema::EG_SGD_MEAN, schema::EG_SGD_STD].map(String::from));
    if p.test {
        header.push(schema::EG_SGD_TEST_MEAN.into());
    }
    if let Some(units) = p.partial {
        header.push(schema::eg_sgd_partial(units));
    }
    header.extend((1..=p.pca).map(schema::eg_pca));
    // Order parameters: with the ODE those present on both sides, ODE then SGD mean (found by
    // name through a map: the full spectrum's observables run to thousands, and a scan for
    // each was quadratic, 2 s of a real-data dry run); without it the SGD means of narrow
    // networks.
    let ode_index: Option<std::collections::HashMap<&str, usize>> = p.ode_names.map(|ode| {
        let mut index = std::collections::HashMap::new();
        for (i, o) in ode.iter().enumerate() {
            index.entry(o.as_str()).or_insert(i);
        }
        index
    });
    let shared: Vec<(Option<usize>, usize)> = p
        .sgd_names
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(j, n)| match &ode_index {
            Some(ode) => ode.get(n.as_str()).map(|&i| (Some(i), j)),
            None => (p.k <= SGD_ONLY_OBSERVABLES_MAX_K).then_some((None, j)),
        })
        .collect();
    for (ode, j) in &shared {
        if ode.is_some() {
            header.push(schema::ode_column(&p.sgd_names[*j]));
        }
        header.push(schema::sgd_column(&p.sgd_names[*j]));
    }
    let scale_free = scale_free_pairs(p);
    for product in &scale_free {
        let name = schema::scale_free_product(product.unit);
        if product.ode.is_some() {
            header.push(schema::ode_column(&name));
        }
        header.push(schema::sgd_column(&name));
    }
    for m in 1..=p.pca {
        if p.ode_spikes {
            header.push(schema::spike_reconstructed(m, true));
        }
        header.push(schema::spike_reconstructed(m, false));
    }
    if p.ode_names.is_none() {
        header.extend((0..p.k).map(schema::encoder_norm));
        header.extend((0..p.k).map(schema::decoder_norm));
    }
    Columns {
        names: header,
        shared,
        scale_free,
    }
}

impl CompareJob {
    /// The columns of the CSV this job writes, found by loading its equations, without
    /// running.
    pub fn header(&self) -> Result<Vec<String>, RunError> {
        let measure = Measure::new(&self.ode)?;
        let ode = if self.with_ode { Some(self.ode.load()?) } else { None };
        let k = self.ode.k;
        Ok(header(&HeaderParts {
            sgd_names: measure.observable_names(),
            ode_names: ode.as_ref().map(|h| &h.observable_names[..]),
            pca: self.ode.source.tracked_modes(k),
            test: self.test_samples > 0,
            partial: self.partial,
            ode_spikes: ode.as_ref().is_some_and(|h| h.carries(&[Input::Omega0, Input::Varpi0])),
            homogeneous: measure.homogeneous(),
            k,
        })
        .names)
    }
}
