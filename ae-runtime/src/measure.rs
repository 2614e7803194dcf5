//! Quantities measured from order parameters, shared by the ODE and SGD sides.

use ae_core::averages::Evaluate as _;
use ae_dsl::ir::Avg;

use ae_core::activation::Activation;

/// Fraction of the variance along each mode m that the network reconstructs,
/// `1 - E[(u_m - sum_k varpi_km g(lambda_k))^2] / rho_m` with `u_m = e_m.x / sqrt(D)`:
///
/// `E[(..)^2] = rho_m - 2 sum_k varpi_km J2(rho_m, rho_m omega_km, Q_kk)
///            + sum_kl varpi_km varpi_lm I2(Q_kk, Q_kl, Q_ll)`,
///
/// since `u_m ~ N(0, rho_m)` has covariance `rho_m omega_km` with `lambda_k`.
/// `omega`, `varpi` are K x M, `q` is K x K, `rho` the rescaled eigenvalues.
pub fn mode_reconstruction(
    act: impl Into<Activation>,
    rho: &[f64],
    omega: &[Vec<f64>],
    varpi: &[Vec<f64>],
    q: &[Vec<f64>],
) -> Vec<f64> {
    let act = act.into();
    let k = omega.len();
    rho.iter()
        .enumerate()
        .map(|(m, &r)| {
            let mut err = r;
            for a in 0..k {
                err -= 2.0 * varpi[a][m] * act.average(Avg::J2, &[r, r * omega[a][m], q[a][a]]);
                for b in 0..k {
                    err += varpi[a][m] * varpi[b][m] * act.average(Avg::I2, &[q[a][a], q[a][b], q[b][b]]);
                }
            }
            1.0 - err / r
        })
        .collect()
}
