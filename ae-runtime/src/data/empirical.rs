//! Real data standardised and diagonalised: the empirical spectrum whose eigenpairs are the
//! modes of the full-spectrum equations (docs/theory.md section 2).
//!
//! Standardisation: samples are centred (the mean image is subtracted) and scaled by one common
//! factor so that the average variance per input coordinate is 1, i.e. tr(Omega)/D = 1 (the
//! spiked model with sigma = 1 and no spikes has the same normalisation).

use nalgebra::{DMatrix, SymmetricEigen};

use super::load::{fail, DataError, Samples};

/// Samples centred and scaled (see the module doc), with their empirical spectrum.
#[derive(Debug, Clone)]
pub struct RealData {
    pub source: String,
    pub d: usize,
    pub rows: Vec<Vec<f64>>,
    /// Eigenvalues of the empirical covariance, largest first.
    pub eigenvalues: Vec<f64>,
    /// The matching unit eigenvectors (rows).
    pub eigenvectors: Vec<Vec<f64>>,
    /// The common factor the centred samples were divided by.
    pub scale: f64,
}

impl RealData {
    /// Centres, scales and diagonalises. Needs more samples than dimensions for a covariance
    /// of full rank; at least 2 samples in any case.
    pub fn new(samples: Samples) -> Result<RealData, DataError> {
        let (n, d) = (samples.rows.len(), samples.d);
        if n < 2 || d == 0 {
            return fail(
                &samples.source,
                "samples",
                format!("{n} sample(s) of dimension {d}: a covariance needs at least 2 samples"),
            );
        }
        if n <= d {
            return fail(
                &samples.source,
                "samples",
                format!("{n} samples for D = {d}: a covariance of full rank needs more samples than dimensions"),
            );
        }
        let mut mean = vec![0.0; d];
        for row in &samples.rows {
            for (m, x) in mean.iter_mut().zip(row) {
                *m += x / n as f64;
            }
        }
        let mut rows: Vec<Vec<f64>> = samples
            .rows
            .iter()
            .map(|r| r.iter().zip(&mean).map(|(x, m)| x - m).collect())
            .collect();
        let var: f64 = rows.iter().flatten().map(|x| x * x).sum::<f64>() / (n * d) as f64;
        if var <= 0.0 {
            return fail(
                &samples.source,
                "samples",
                "every sample is the same: the covariance is zero",
            );
        }
        // Samples that differ only in their last few bits would be scaled up to unit
        // variance, and the run would integrate rounding noise.
        let mean_square: f64 = samples.rows.iter().flatten().map(|x| x * x).sum::<f64>() / (n * d) as f64;
        let rounding = (64.0 * f64::EPSILON).powi(2) * mean_square;
        if var <= rounding {
            return fail(
                &samples.source,
                "samples",
                format!(
                    "the samples differ only by rounding (variance {var:.3e} against a mean square of {mean_square:.3e}): there is nothing to learn"
                ),
            );
        }
        let scale = var.sqrt();
        rows.iter_mut().flatten().for_each(|x| *x /= scale);
        let Ok(cov) = covariance(&rows, d) else {
            return fail(
                &samples.source,
                "samples",
                format!(
                    "their covariance (D = {d}: {:.2} GB with its copy of the samples) does not fit in the memory this process can have",
                    covariance_bytes(n, d) / 1e9
                ),
            );
        };
        let (eigenvalues, eigenvectors) = eigen(cov);
        Ok(RealData {
            source: samples.source,
            d,
            rows,
            eigenvalues,
            eigenvectors,
            scale,
        })
    }

    /// Rescaled eigenvalues rho_tau / D, the modes of the full-spectrum equations.
    pub fn rho(&self) -> Vec<f64> {
        self.eigenvalues.iter().map(|r| r / self.d as f64).collect()
    }

    /// PCA error of rank r: (tr Omega - top r eigenvalues) / (2D).
    pub fn pca_error(&self, r: usize) -> f64 {
        let total: f64 = self.eigenvalues.iter().sum();
        let top: f64 = self.eigenvalues.iter().take(r).sum();
        (total - top) / (2.0 * self.d as f64)
    }
}

/// The bytes [`covariance`] asks for with `n` rows of dimension `d`: its copy of the rows and
/// the D x D result (in floating point, so that no size overflows).
pub fn covariance_bytes(n: usize, d: usize) -> f64 {
    (d as f64 * d as f64 + n as f64 * d as f64) * 8.0
}

/// The covariance `Xᵀ X / n` of centred rows, by one matrix product (a rank-one update per
/// sample streams the whole D x D matrix through memory once per sample: 20 times slower at
/// D = 1024).
/// Memory that cannot be had (the copy of the rows and the D x D result, [`covariance_bytes`]) is
/// an error, not an abort.
pub fn covariance(rows: &[Vec<f64>], d: usize) -> Result<DMatrix<f64>, std::collections::TryReserveError> {
    let n = rows.len();
    let mut x = Vec::new();
    x.try_reserve_exact(n * d)?;
    for row in rows {
        x.extend_from_slice(&row[..d]);
    }
    let mut entries = Vec::new();
    entries.try_reserve_exact(d.saturating_mul(d))?;
    entries.resize(d * d, 0.0);
    let mut cov = DMatrix::<f64>::from_vec(d, d, entries);
    if n == 0 || d == 0 {
        return Ok(cov);
    }
    let (d_, one) = (d as isize, 1isize);
    // SAFETY: X is n x d row-major (strides d, 1) in `x`, Xᵀ is d x n with strides (1, d) in the
    // same buffer, and `cov` is d x d column-major (strides 1, d); all sizes as allocated.
    unsafe {
        matrixmultiply::dgemm(
            d,
            n,
            d,
            1.0 / n as f64,
            x.as_ptr(),
            one,
            d_,
            x.as_ptr(),
            d_,
            one,
            0.0,
            cov.as_mut_ptr(),
            one,
            d_,
        );
    }
    // The product is symmetric up to rounding of two summation orders; make it exactly so.
    for i in 0..d {
        for j in 0..i {
            let v = 0.5 * (cov[(i, j)] + cov[(j, i)]);
            cov[(i, j)] = v;
            cov[(j, i)] = v;
        }
    }
    Ok(cov)
}

/// Eigenpairs of a symmetric matrix, eigenvalues descending, eigenvectors as rows: nalgebra's
/// symmetric eigensolver, or with the `faer` feature (`fast-eigen` of the application) faer's
/// on one thread (measured: 0.15 s against 0.84 s at D = 1024, 3.9 s against 32 s at D = 3072;
/// `cargo bench --bench eigen --features fast-eigen`). The two agree to rounding, so outputs
/// are bit-identical within one build, not across the two.
pub fn eigen(m: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    if cfg!(feature = "faer") {
        eigen_faer(m)
    } else {
        eigen_nalgebra(m)
    }
}

/// The eigenvalues of a symmetric matrix, largest first, by nalgebra's solver (without the
/// eigenvectors). Here rather than at its callers because nalgebra's solver is generic: it is
/// compiled, and optimised, in the crate that calls it, and this crate is optimised in test
/// builds (a D = 1000 spectrum took 3.6 s from the app crate there).
pub fn eigenvalues(m: DMatrix<f64>) -> Vec<f64> {
    let mut values: Vec<f64> = m.symmetric_eigenvalues().iter().copied().collect();
    values.sort_by(|a, b| b.total_cmp(a));
    values
}

/// [`eigen`] by faer's self-adjoint eigensolver on one thread (bit-reproducible), nalgebra's
/// should faer's not converge. faer is compiled in any case (diffsol's linear algebra needs it),
/// so this costs no build time and is tested in every test run.
pub fn eigen_faer(m: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = m.nrows();
    let a = faer::Mat::<f64>::from_fn(d, d, |i, j| m[(i, j)]);
    faer::set_global_parallelism(faer::Par::Seq);
    let Ok(eig) = a.self_adjoint_eigen(faer::Side::Lower) else {
        return eigen_nalgebra(m);
    };
    let values: Vec<f64> = eig.S().column_vector().iter().copied().collect();
    let vectors = eig.U();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    let sorted = order.iter().map(|i| values[*i].max(0.0)).collect();
    let rows = order
        .iter()
        .map(|&j| (0..d).map(|i| vectors[(i, j)]).collect())
        .collect();
    (sorted, rows)
}

/// [`eigen`] by nalgebra's symmetric eigensolver (the fallback, and the reference in tests
/// and benchmarks).
pub fn eigen_nalgebra(m: DMatrix<f64>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = m.nrows();
    let eig = SymmetricEigen::new(m);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|a, b| eig.eigenvalues[*b].total_cmp(&eig.eigenvalues[*a]));
    let values = order.iter().map(|i| eig.eigenvalues[*i].max(0.0)).collect();
    let vectors = order
        .iter()
        .map(|i| eig.eigenvectors.column(*i).iter().copied().collect())
        .collect();
    (values, vectors)
}
