//! The claims of the paper's figures 1(b), 5(d), 7 and 9 (docs/theory.md section 9), each run through the
//! command line as its experiment runs it, at a size that fits the test suite.

use crate::common::{aedyn, temp};

/// A CSV written by aedyn: header and rows (empty cells are NaN).
struct Csv {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Csv {
    fn read(path: &std::path::Path) -> Csv {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap().split(',').map(String::from).collect();
        let rows = lines
            .map(|l| {
                l.split(',')
                    .map(|v| if v.is_empty() { f64::NAN } else { v.parse().unwrap() })
                    .collect()
            })
            .collect();
        Csv { header, rows }
    }

    fn column(&self, name: &str) -> Vec<f64> {
        let j = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header));
        self.rows.iter().map(|r| r[j]).collect()
    }

    fn last(&self, name: &str) -> f64 {
        *self.column(name).last().unwrap()
    }
}

/// Runs `aedyn <command> --quiet --out <file> args...` and reads the CSV.
fn run(command: &str, args: &[&str], name: &str) -> Csv {
    let out = temp(name);
    let mut all = vec![command, "--quiet", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, _, err) = aedyn(&all);
    assert_eq!(code, 0, "{all:?}: {err}");
    Csv::read(&out)
}

const PATCHES: [&str; 6] = ["--data", "data/china.jpg", "--patch", "8", "--stride", "2"];

#[test]
fn the_spiked_spectrum_has_a_marchenko_pastur_bulk_and_outliers_where_predicted() {
    // Figure 1(b). N = 1600 samples of spikes 9,3,1 on a bulk sigma = 1 in D = 400: ratio
    // gamma = 1/4, bulk edges (1 -+ 1/2)^2 = 0.25 and 2.25.
    let (d, n, m) = (400.0_f64, 1600.0_f64, 3.0_f64);
    let density = temp("spectrum-density.csv");
    let spectrum = run(
        "spectrum",
        &[
            "--d",
            "400",
            "--samples",
            "1600",
            "--spikes",
            "9,3,1",
            "--seed",
            "2",
            "--density",
            density.to_str().unwrap(),
        ],
        "spectrum.csv",
    );
    let eig = spectrum.column("eigenvalue");
    let (predicted, stderr) = (spectrum.column("predicted"), spectrum.column("stderr"));
    // Each outlier within 4 of its standard errors of ell (1 + gamma / (ell - 1)) (a deviation
    // that large has a probability of 6e-5 for a Gaussian fluctuation).
    for i in 0..3 {
        assert!(
            (eig[i] - predicted[i]).abs() < 4.0 * stderr[i],
            "outlier {i}: {} against {} +- {}",
            eig[i],
            predicted[i],
            stderr[i]
        );
    }
    assert!(stderr[3].is_nan(), "the bulk has no standard error column");
    // The bulk's edges: the extreme eigenvalues of a Wishart matrix of p = D - M dimensions
    // fluctuate on the Tracy-Widom scale (Johnstone 2001) around (sqrt(N) -+ sqrt(p))^2 / N;
    // 6 of those scales bound them. The law's edges (with D) differ from those centres by
    // O(M/D), which the bound includes.
    let p = d - m;
    let top_centre = (n.sqrt() + p.sqrt()).powi(2) / n;
    let top_scale = (n.sqrt() + p.sqrt()) * (1.0 / n.sqrt() + 1.0 / p.sqrt()).powf(1.0 / 3.0) / n;
    let bottom_centre = (n.sqrt() - p.sqrt()).powi(2) / n;
    let bottom_scale = (n.sqrt() - p.sqrt()) * (1.0 / p.sqrt() - 1.0 / n.sqrt()).powf(1.0 / 3.0) / n;
    let (top, bottom) = (eig[3], *eig.last().unwrap());
    assert!(
        (top - top_centre).abs() < 6.0 * top_scale + (2.25 - top_centre).abs(),
        "top of the bulk {top}, centre {top_centre}, scale {top_scale}"
    );
    assert!(
        (bottom - bottom_centre).abs() < 6.0 * bottom_scale + (0.25 - bottom_centre).abs(),
        "bottom of the bulk {bottom}, centre {bottom_centre}, scale {bottom_scale}"
    );
    // The bulk's mean: sigma^2 = 1, less the share the outliers take from it (each sits about
    // gamma sigma^2 above its spike: a shift of M gamma / p), within 4 standard deviations of
    // the mean of p chi-square-like eigenvalues, sqrt(2 / (N p)).
    let bulk = &eig[3..];
    let mean = bulk.iter().sum::<f64>() / bulk.len() as f64;
    let expected = 1.0 - m * (d / n) / p;
    assert!(
        (mean - expected).abs() < 4.0 * (2.0 / (n * p)).sqrt(),
        "bulk mean {mean} against {expected}"
    );
    // The shape: the histogram's distribution function against Marchenko-Pastur's. Bulk
    // eigenvalues are rigid (they deviate from their quantiles by O(log D / D)), so the
    // largest difference of the two distribution functions stays below 8/D = 0.02.
    let hist = Csv::read(&density);
    let (left, right) = (hist.column("left"), hist.column("right"));
    let (empirical, law) = (hist.column("density"), hist.column("mp_density"));
    let (mut cdf_empirical, mut cdf_law, mut worst) = (0.0, 0.0, 0.0_f64);
    for i in 0..left.len() {
        let width = right[i] - left[i];
        cdf_empirical += empirical[i] * width;
        cdf_law += law[i] * width;
        worst = worst.max((cdf_empirical - cdf_law).abs());
    }
    assert!((cdf_empirical - 1.0).abs() < 1e-9 && (cdf_law - 1.0).abs() < 1e-6);
    assert!(worst < 8.0 / d, "distribution functions differ by {worst}");
}

#[test]
fn real_spectra_are_written_by_rank_without_a_law() {
    let spectrum = run("spectrum", &PATCHES, "spectrum-patches.csv");
    assert_eq!(spectrum.header, ["rank", "eigenvalue"]);
    let eig = spectrum.column("eigenvalue");
    assert_eq!(eig.len(), 64);
    assert!(eig.windows(2).all(|w| w[0] >= w[1]));
    // Standardised data: tr(Omega) / D = 1.
    assert!((eig.iter().sum::<f64>() / 64.0 - 1.0).abs() < 1e-9);
}

#[test]
#[ignore = "heavy (two SGD runs of 7.7e6 steps, about 17 s in a test build): run by .ci/run's step of ignored tests"]
fn standard_conditions_tied_fails_untied_learns_every_component_norms_move_apart() {
    // Figure 7: plain SGD (lambda = w.x, one learning rate, weights of variance 1/D) on
    // standardised 8x8 image patches, erf, K = 4, lr = 1e-4, t = 1.2e5 (7.7e6 steps).
    // Measured: tied eg 0.183 against PCA(1) 0.053; untied reconstructs 0.980 or more of
    // each of the top 4 components' variance, and its eg (0.0386) lies between PCA(4) and
    // PCA(3); its encoder norms fall from about 1 to 0.2 while its decoder norms grow to 9.
    let common = [
        "--scaling",
        "standard",
        "--k",
        "4",
        "--lr",
        "1e-4",
        "--t-end",
        "1.2e5",
        "--points",
        "8",
        "--seeds",
        "1",
    ];
    let mut untied_args = PATCHES.to_vec();
    untied_args.extend_from_slice(&common);
    let mut tied_args = untied_args.clone();
    tied_args.push("--tied");
    let untied = run("sgd", &untied_args, "standard-untied.csv");
    let tied = run("sgd", &tied_args, "standard-tied.csv");
    let (pca1, pca3, pca4) = (
        untied.last("eg_pca_1"),
        untied.last("eg_pca_3"),
        untied.last("eg_pca_4"),
    );
    // Tied stays above the rank-1 error (by a factor 3.4 measured; "above" is the claim).
    assert!(tied.last("eg_sgd_mean") > pca1, "tied {}", tied.last("eg_sgd_mean"));
    // Untied learns every one of the K components: 0.95 leaves room for the fourth, the
    // slowest, whose fraction still rises as about 1 - c/t.
    for m in 1..=4 {
        let fraction = untied.last(&format!("spike{m}_reconstructed_sgd"));
        assert!(fraction > 0.95, "PC {m}: {fraction}");
    }
    let eg = untied.last("eg_sgd_mean");
    assert!(pca4 < eg && eg < pca3, "untied eg {eg}, PCA(4) {pca4}, PCA(3) {pca3}");
    // Norms: the means over units of |w_k| and |v_k|, at the start and at the end; a factor
    // 2 either way is the claim's direction with margin (measured 5 and 9).
    let mean_norm = |prefix: &str, row: usize| {
        (0..4)
            .map(|k| untied.column(&format!("{prefix}_norm_{k}_sgd"))[row])
            .sum::<f64>()
            / 4.0
    };
    let end = untied.rows.len() - 1;
    assert!(mean_norm("w", end) < 0.5 * mean_norm("w", 0), "encoder norms");
    assert!(mean_norm("v", end) > 2.0 * mean_norm("v", 0), "decoder norms");
}

#[test]
fn only_truncated_sgd_reconstructs_well_from_its_first_neurons() {
    // Figure 5(d) at a size for the test suite: K = 16 on 8x8 patches (D = 64), t = 1000,
    // reconstruction by the first 3 neurons on 2000 held-out patches. Truncated SGD's first
    // neurons learn the top principal components in order, so their error approaches PCA(3)
    // (measured 6.6% above it; bound 20%: erf's aligned excess and the SGD noise still decay
    // at t = 1000); vanilla SGD spreads the components over all its neurons (measured: 10.6
    // times PCA(3); bound 2). With all neurons both approach PCA(16) (measured 0.0278 and
    // 0.0245 against 0.0182): within a factor 1.5 of each other.
    let common = [
        "--k",
        "16",
        "--t-end",
        "1000",
        "--points",
        "6",
        "--seeds",
        "1",
        "--test-samples",
        "2000",
        "--partial",
        "3",
    ];
    let mut vanilla_args = PATCHES.to_vec();
    vanilla_args.extend_from_slice(&common);
    let mut truncated_args = vanilla_args.clone();
    truncated_args.extend_from_slice(&["--rule", "truncated"]);
    let images = temp("partial-images.csv");
    truncated_args.extend_from_slice(&["--images", "4", "--images-out", images.to_str().unwrap()]);
    let vanilla = run("sgd", &vanilla_args, "partial-vanilla.csv");
    let truncated = run("sgd", &truncated_args, "partial-truncated.csv");
    let pca3 = truncated.last("eg_pca_3");
    let (first_truncated, first_vanilla) = (truncated.last("eg_sgd_partial_3"), vanilla.last("eg_sgd_partial_3"));
    assert!(
        first_truncated < 1.2 * pca3,
        "truncated, first 3: {first_truncated}, PCA(3) {pca3}"
    );
    assert!(
        first_vanilla > 2.0 * pca3,
        "vanilla, first 3: {first_vanilla}, PCA(3) {pca3}"
    );
    let (all_truncated, all_vanilla) = (truncated.last("eg_sgd_test_mean"), vanilla.last("eg_sgd_test_mean"));
    assert!(
        all_truncated < 1.5 * all_vanilla && all_vanilla < 1.5 * all_truncated,
        "all neurons: truncated {all_truncated}, vanilla {all_vanilla}"
    );
    // The images file: 4 originals, their reconstructions by all and by the first 3 neurons,
    // and the first 4 decoder rows, each of 64 pixels.
    let text = std::fs::read_to_string(&images).unwrap();
    let kinds: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    for kind in ["original", "all", "first3", "decoder"] {
        assert_eq!(kinds.iter().filter(|k| **k == kind).count(), 4, "{kind}");
    }
    assert!(text.lines().skip(1).all(|l| l.split(',').count() == 2 + 64));
}

#[test]
#[ignore = "the full figure 5(d): K = 64, about 2 minutes in a test build"]
fn only_truncated_sgd_reconstructs_well_from_its_first_five_of_64_neurons() {
    // The configuration of experiments/partial.toml at t = 1000: measured 0.0494 for the
    // truncated network's first 5 neurons against PCA(5) 0.0473, and 0.44 for vanilla's.
    let args = [
        "--data",
        "data/china.jpg",
        "--patch",
        "16",
        "--stride",
        "4",
        "--k",
        "64",
        "--t-end",
        "1000",
        "--points",
        "4",
        "--seeds",
        "1",
        "--test-samples",
        "2000",
        "--partial",
        "5",
    ];
    let vanilla = run("sgd", &args, "partial64-vanilla.csv");
    let mut truncated_args = args.to_vec();
    truncated_args.extend_from_slice(&["--rule", "truncated"]);
    let truncated = run("sgd", &truncated_args, "partial64-truncated.csv");
    let pca5 = truncated.last("eg_pca_5");
    assert!(truncated.last("eg_sgd_partial_5") < 1.1 * pca5);
    assert!(vanilla.last("eg_sgd_partial_5") > 2.0 * pca5);
}

#[test]
#[ignore = "heavy (four compare runs to t = 1e4, about 16 s in a test build): run by .ci/run's step of ignored tests"]
fn on_real_patches_tied_fails_relu_needs_biases_and_components_come_in_turn() {
    // Figure 9, on 8x8 patches of the shipped photograph (D = 64), K = 4, t = 1e4, 2 replicas.
    let common = [
        "--equations",
        "full_spectrum",
        "--k",
        "4",
        "--t-end",
        "1e4",
        "--t-min",
        "0.1",
        "--points",
        "30",
        "--seeds",
        "2",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = PATCHES.to_vec();
        args.extend_from_slice(&common);
        args.extend_from_slice(extra);
        args
    };
    let erf = run("compare", &with(&[]), "f9-erf.csv");
    let tied = run("compare", &with(&["--tied"]), "f9-tied.csv");
    let relu = run("compare", &with(&["--activation", "relu"]), "f9-relu.csv");
    let relu_bias = run(
        "compare",
        &with(&["--activation", "relu", "--bias", "--test-samples", "2000"]),
        "f9-relu-bias.csv",
    );
    let (pca1, pca3, pca4) = (erf.last("eg_pca_1"), erf.last("eg_pca_3"), erf.last("eg_pca_4"));
    // Tied erf fails: above even PCA(1) (measured 0.106 against 0.053), while untied reaches
    // PCA(4): within a quarter of the rank-3/rank-4 gap (measured 0.14 of it: the ODE's own
    // erf excess is 0.02 of it, and SGD at D = 64 sits about eg/D above the ODE).
    assert!(tied.last("eg_sgd_mean") > pca1, "tied {}", tied.last("eg_sgd_mean"));
    let untied = erf.last("eg_sgd_mean");
    assert!(untied - pca4 < 0.25 * (pca3 - pca4), "untied {untied}, PCA(4) {pca4}");
    // ReLU needs biases: trained biases bring SGD closer to PCA(4) (measured: the excess
    // falls from 0.0098 to 0.0053, by 0.54; bound 0.75, a margin of 10 replica spreads).
    let (plain, biased) = (relu.last("eg_sgd_mean"), relu_bias.last("eg_sgd_mean"));
    assert!(
        biased - pca4 < 0.75 * (plain - pca4),
        "relu {plain}, with biases {biased}, PCA(4) {pca4}"
    );
    // The components in turn: the first time each reaches half its variance grows with its
    // rank, in the ODE and in SGD (measured: t = 4, 150, 320, 800).
    let t = erf.column("t");
    for side in ["ode", "sgd"] {
        let half: Vec<f64> = (1..=4)
            .map(|m| {
                let fraction = erf.column(&format!("spike{m}_reconstructed_{side}"));
                let i = fraction
                    .iter()
                    .position(|f| *f > 0.5)
                    .expect("every component is learnt");
                t[i]
            })
            .collect();
        assert!(half.windows(2).all(|w| w[0] < w[1]), "{side}: {half:?}");
    }
}
