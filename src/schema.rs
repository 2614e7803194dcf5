//! The files aedyn writes and the names of their columns, in one place that the writers
//! (ode, compare, reduced-vs-full) and the readers (reproduce's plots) share.

use crate::names::{deserialize_by_name, Named};

/// The subcommands that write files (those an experiment's run or a sweep's point may name).
/// Their names are the command line's subcommands (a test holds the two together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunCommand {
    Ode,
    Compare,
    Sgd,
    ReducedVsFull,
    Spectrum,
}

impl Named for RunCommand {
    const ALL: &'static [RunCommand] = &[
        RunCommand::Ode,
        RunCommand::Compare,
        RunCommand::Sgd,
        RunCommand::ReducedVsFull,
        RunCommand::Spectrum,
    ];
    const WHAT: &'static str = "command";
    const KEY: &'static str = "command";

    fn name(self) -> &'static str {
        match self {
            RunCommand::Ode => "ode",
            RunCommand::Compare => "compare",
            RunCommand::Sgd => "sgd",
            RunCommand::Spectrum => "spectrum",
            RunCommand::ReducedVsFull => "reduced-vs-full",
        }
    }
}

deserialize_by_name!(RunCommand);

/// Time, the first column of every table over time.
pub const TIME: &str = "t";
/// The generalisation error of `ode` and of each run of `reduced-vs-full`.
pub const EG: &str = "eg";
/// `compare`: eg from the ODE, and the mean, spread and test-set mean over SGD replicas.
pub const EG_ODE: &str = "eg_ode";
pub const EG_SGD_MEAN: &str = "eg_sgd_mean";
pub const EG_SGD_STD: &str = "eg_sgd_std";
pub const EG_SGD_TEST_MEAN: &str = "eg_sgd_test_mean";
/// `reduced-vs-full`'s full run: the misalignment and the rank-K PCA error.
pub const MISALIGNMENT: &str = "misalignment";
pub const EG_PCA: &str = "eg_pca";
/// `compare --overlaps`: one row per replica and unit.
pub const REPLICA: &str = "replica";
pub const UNIT: &str = "unit";

/// `spectrum`: eigenvalues by rank, with predictions and the outliers' standard errors.
pub const RANK: &str = "rank";
pub const EIGENVALUE: &str = "eigenvalue";
pub const PREDICTED: &str = "predicted";
pub const STDERR: &str = "stderr";
/// `spectrum --density`: the bulk's histogram, bin by bin, and the Marchenko-Pastur density.
pub const BIN: &str = "x";
pub const BIN_LOW: &str = "left";
pub const BIN_HIGH: &str = "right";
pub const DENSITY: &str = "density";
pub const MP_DENSITY: &str = "mp_density";

/// `sgd --images`: which image a row holds, its index, and the pixels.
pub const IMAGE: &str = "image";
pub const INDEX: &str = "index";
pub const IMAGE_ORIGINAL: &str = "original";
pub const IMAGE_ALL: &str = "all";
pub const IMAGE_DECODER: &str = "decoder";

const EG_PCA_PREFIX: &str = "eg_pca_";
const ODE_SUFFIX: &str = "_ode";
const SGD_SUFFIX: &str = "_sgd";

pub use ae_dsl::columns::csv_name;

/// `compare`: the PCA error with `rank` components (`eg_pca_3`).
pub fn eg_pca(rank: usize) -> String {
    format!("{EG_PCA_PREFIX}{rank}")
}

/// The rank of a PCA-error column (`eg_pca_3` is 3), if `column` is one.
pub fn pca_rank(column: &str) -> Option<usize> {
    column.strip_prefix(EG_PCA_PREFIX)?.parse().ok()
}

/// `compare`: an order parameter from the ODE (`Q_0_1_ode`) and the SGD mean (`Q_0_1_sgd`).
pub fn ode_column(observable: &str) -> String {
    format!("{}{ODE_SUFFIX}", csv_name(observable))
}

pub fn sgd_column(observable: &str) -> String {
    format!("{}{SGD_SUFFIX}", csv_name(observable))
}

/// Whether a column holds SGD means (drawn as markers, not lines).
pub fn is_sgd_column(column: &str) -> bool {
    column.ends_with(SGD_SUFFIX)
}

/// The quantity a column shows on either side: `Q_0_1_ode` and `Q_0_1_sgd` are `Q_0_1`.
pub fn quantity(column: &str) -> &str {
    column.trim_end_matches(ODE_SUFFIX).trim_end_matches(SGD_SUFFIX)
}

/// A column in words, for legends: `Q_0_0_ode` is "Q_kk, unit 1 (ODE)", `Q_0_1_sgd` is
/// "Q_kl, units 1 and 2 (SGD)", `spike2_reconstructed_ode` is "spike 2 reconstructed (ODE)",
/// `w_norm_0_sgd` is "|w_k|, unit 1 (SGD)". Units count from 1, as people count them; a name
/// it does not know is returned as it is.
pub fn describe(column: &str) -> String {
    let base = quantity(column);
    let side = if is_sgd_column(column) {
        " (SGD)"
    } else if column.ends_with(ODE_SUFFIX) {
        " (ODE)"
    } else {
        ""
    };
    let words = match base {
        EG => "eg".to_string(),
        EG_SGD_TEST_MEAN => return "eg on held-out samples (SGD)".into(),
        _ if base.starts_with("eg_sgd_partial_") => {
            return format!(
                "eg of the first {} units, held out (SGD)",
                &base["eg_sgd_partial_".len()..]
            )
        }
        _ if base.starts_with("eg_sgd") => return "eg (SGD)".into(),
        _ => match pca_rank(base) {
            Some(rank) => return format!("PCA rank {rank}"),
            None => describe_indexed(base).unwrap_or_else(|| base.to_string()),
        },
    };
    format!("{words}{side}")
}

/// `Q_0_1` as "Q_kl, units 1 and 2", `spike2_reconstructed` as "spike 2 reconstructed".
fn describe_indexed(base: &str) -> Option<String> {
    if let Some(m) = base
        .strip_prefix("spike")
        .and_then(|r| r.strip_suffix("_reconstructed"))
    {
        return Some(format!("spike {m} reconstructed"));
    }
    let (name, indices) = match base.split_once('_') {
        Some(("w", rest)) | Some(("v", rest)) if rest.starts_with("norm_") => {
            let unit: usize = rest["norm_".len()..].parse().ok()?;
            return Some(format!("|{}_k|, unit {}", &base[..1], unit + 1));
        }
        Some((name, rest)) => (name, rest),
        None => return None,
    };
    let units: Vec<usize> = indices.split('_').map(str::parse).collect::<Result<_, _>>().ok()?;
    let symbol = if name == "QT0" {
        "Q_kk T0_kk".to_string()
    } else {
        name.to_string()
    };
    Some(match units.as_slice() {
        [k] => format!("{symbol}, unit {}", k + 1),
        // Per-mode overlaps: unit k with mode tau.
        [k, tau] if matches!(name, "omega" | "varpi") => format!("{symbol}, unit {}, mode {}", k + 1, tau + 1),
        [k, l] if k == l && name == "QT0" => format!("{symbol}, unit {}", k + 1),
        [k, l] if k == l => format!("{symbol}_kk, unit {}", k + 1),
        [k, l] => format!("{symbol}_kl, units {} and {}", k + 1, l + 1),
        _ => return None,
    })
}

/// `compare`: the reconstructed fraction of spike `m`'s variance (from 1), ODE and SGD.
pub fn spike_reconstructed(m: usize, ode: bool) -> String {
    let side = if ode { ODE_SUFFIX } else { SGD_SUFFIX };
    format!("spike{m}_reconstructed{side}")
}

/// The product Q_kk T0_kk of unit k, which the flat direction w -> c w, v -> v / c of a
/// homogeneous activation leaves unchanged (`QT0_1_1`; docs/theory.md section 10).
pub fn scale_free_product(k: usize) -> String {
    format!("QT0_{k}_{k}")
}

/// `--partial M`: the held-out eg of the first M neurons' reconstruction (`eg_sgd_partial_5`).
pub fn eg_sgd_partial(units: usize) -> String {
    format!("eg_sgd_partial_{units}")
}

/// `sgd --images`: the rows of reconstructions by the first `units` neurons (`first5`).
pub fn partial_image(units: usize) -> String {
    format!("first{units}")
}

/// `sgd --images`: pixel `i`'s column.
pub fn pixel(i: usize) -> String {
    format!("p{i}")
}

/// `sgd`: the mean over replicas of |w_k| and |v_k|, in the run's scaling (markers: SGD).
pub fn encoder_norm(k: usize) -> String {
    format!("w_norm_{k}{SGD_SUFFIX}")
}

pub fn decoder_norm(k: usize) -> String {
    format!("v_norm_{k}{SGD_SUFFIX}")
}

/// `compare --overlaps`: |cos| with spike `j` (from 0).
pub fn spike_overlap(j: usize) -> String {
    format!("spike_{j}")
}

/// The columns of the files a run writes, found before it runs: its main file, and the
/// second one where plots read it (reduced-vs-full's reduced run, spectrum's histogram).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputColumns {
    pub main: Vec<String>,
    pub second: Option<Vec<String>>,
}

/// `spectrum`'s columns: by rank (with predictions for the spiked model), and the histogram.
pub fn spectrum_columns(with_law: bool) -> OutputColumns {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (main, second) = if with_law {
        (
            names(&[RANK, EIGENVALUE, PREDICTED, STDERR]),
            names(&[BIN, BIN_LOW, BIN_HIGH, DENSITY, MP_DENSITY]),
        )
    } else {
        (names(&[RANK, EIGENVALUE]), names(&[BIN, BIN_LOW, BIN_HIGH, DENSITY]))
    };
    OutputColumns {
        main,
        second: Some(second),
    }
}

/// The files one run writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// `ode`: t and observables; `compare`: ODE and SGD; `reduced-vs-full`: the full run.
    pub main: String,
    /// `compare`: the final overlaps; `reduced-vs-full`: the reduced run.
    pub second: Option<String>,
}

impl Outputs {
    /// The files a run of `command` called `stem` writes.
    pub fn of(command: RunCommand, stem: &str) -> Outputs {
        let (main, second) = match command {
            RunCommand::Ode => (format!("{stem}.csv"), None),
            RunCommand::Compare => (format!("{stem}.csv"), Some(format!("{stem}_overlaps.csv"))),
            RunCommand::ReducedVsFull => (format!("{stem}_full.csv"), Some(format!("{stem}_reduced.csv"))),
            // The images of `sgd` are written only when asked for: see `images_file`.
            RunCommand::Sgd => (format!("{stem}.csv"), None),
            RunCommand::Spectrum => (format!("{stem}.csv"), Some(format!("{stem}_density.csv"))),
        };
        Outputs { main, second }
    }

    pub fn all(&self) -> Vec<String> {
        std::iter::once(self.main.clone()).chain(self.second.clone()).collect()
    }

    /// The options that send a run of `command` called `stem` to these files.
    pub fn args(command: RunCommand, stem: &str) -> Vec<String> {
        let files = Outputs::of(command, stem);
        let mut args = match command {
            RunCommand::ReducedVsFull => return vec!["--out-prefix".into(), stem.to_string()],
            RunCommand::Ode | RunCommand::Compare | RunCommand::Sgd | RunCommand::Spectrum => {
                vec!["--out".into(), files.main]
            }
        };
        let second = match command {
            RunCommand::Spectrum => "--density",
            _ => "--overlaps",
        };
        if let Some(file) = files.second {
            args.extend([second.into(), file]);
        }
        args
    }

    /// `sgd --images`: the file of the images of a run called `stem`.
    pub fn images_file(stem: &str) -> String {
        format!("{stem}_images.csv")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(csv_name("omega[1;2]"), "omega_1_2");
        assert_eq!(csv_name("a[;2]"), "a_2");
        assert_eq!(pca_rank(&eg_pca(3)), Some(3));
        assert_eq!(pca_rank("eg_pca"), None);
        assert_eq!(quantity(&ode_column("Q[0,1]")), quantity(&sgd_column("Q[0,1]")));
        assert!(is_sgd_column(&spike_reconstructed(1, false)));
        assert!(!is_sgd_column(&spike_reconstructed(1, true)));
    }

    #[test]
    fn legends_are_words() {
        for (column, words) in [
            ("Q_0_0_ode", "Q_kk, unit 1 (ODE)"),
            ("T0_1_2_sgd", "T0_kl, units 2 and 3 (SGD)"),
            ("eg_ode", "eg (ODE)"),
            ("eg_sgd_mean", "eg (SGD)"),
            ("eg_sgd_test_mean", "eg on held-out samples (SGD)"),
            ("eg_sgd_partial_5", "eg of the first 5 units, held out (SGD)"),
            ("eg_pca_3", "PCA rank 3"),
            ("spike2_reconstructed_ode", "spike 2 reconstructed (ODE)"),
            ("w_norm_3_sgd", "|w_k|, unit 4 (SGD)"),
            ("QT0_0_0_sgd", "Q_kk T0_kk, unit 1 (SGD)"),
            ("omega_0_1", "omega, unit 1, mode 2"),
            ("a_2", "a, unit 3"),
            ("misalignment", "misalignment"),
        ] {
            assert_eq!(describe(column), words, "{column}");
        }
    }

    #[test]
    fn every_output_is_named_by_the_arguments_that_write_it() {
        for &command in RunCommand::ALL {
            let outputs = Outputs::of(command, "x");
            let args = Outputs::args(command, "x").join(" ");
            if command == RunCommand::ReducedVsFull {
                // One prefix names both files: reduced-vs-full derives them with `Outputs::of`.
                assert_eq!(args, "--out-prefix x");
                continue;
            }
            for file in outputs.all() {
                assert!(args.contains(&file), "{command:?}: {file} not in `{args}`");
            }
        }
    }
}
