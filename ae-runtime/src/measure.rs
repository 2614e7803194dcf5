//! Quantities measured from order parameters, shared by the ODE and SGD sides.

use ae_core::averages::Evaluate as _;
use ae_dsl::ir::Avg;

use ae_core::activation::Activation;

use crate::interp::InitInputs;

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
    // The I2 terms do not depend on the mode: computed once, not once per mode (K^2 averages
    // against K^2 M, which at K = 64 was most of observing a run).
    let i2: Vec<Vec<f64>> = (0..k)
        .map(|a| {
            (0..k)
                .map(|b| act.average(Avg::I2, &[q[a][a], q[a][b], q[b][b]]))
                .collect()
        })
        .collect();
    rho.iter()
        .enumerate()
        .map(|(m, &r)| {
            let mut err = r;
            for a in 0..k {
                err -= 2.0 * varpi[a][m] * act.average(Avg::J2, &[r, r * omega[a][m], q[a][a]]);
                for b in 0..k {
                    err += varpi[a][m] * varpi[b][m] * i2[a][b];
                }
            }
            1.0 - err / r
        })
        .collect()
}

/// `Q = sum_m rho_m omega_m omega_m^T + Qb` (K x K) from order-parameter inputs.
pub fn q_matrix(inputs: &InitInputs, rho: &[f64]) -> Vec<Vec<f64>> {
    (0..inputs.k)
        .map(|a| {
            let scaled: Vec<f64> = rho.iter().zip(&inputs.omega0[a]).map(|(r, w)| r * w).collect();
            (0..inputs.k)
                .map(|b| inputs.qb0[a][b] + scaled.iter().zip(&inputs.omega0[b]).map(|(s, w)| s * w).sum::<f64>())
                .collect()
        })
        .collect()
}

/// The reconstructed fraction of each of the first `tracked` modes, with Q from all of `rho`'s
/// modes.
pub fn top_mode_reconstruction(act: Activation, inputs: &InitInputs, rho: &[f64], tracked: usize) -> Vec<f64> {
    let q = q_matrix(inputs, rho);
    let cut = |m: &Vec<Vec<f64>>| m.iter().map(|r| r[..tracked].to_vec()).collect::<Vec<_>>();
    mode_reconstruction(act, &rho[..tracked], &cut(&inputs.omega0), &cut(&inputs.varpi0), &q)
}
