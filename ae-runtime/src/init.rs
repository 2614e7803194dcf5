//! Initial order parameters (the inputs of `init` expressions) from weights, from the informed
//! start of docs/theory.md section 3, or from a typical i.i.d. draw in the strict limit D -> infinity.

use ae_core::averages::Evaluate as _;
use rand_distr::{Distribution, StandardNormal};

use crate::data::{dot, rng, stream, Spiked, Weights};
use crate::interp::InitInputs;

fn zeros(k: usize, n: usize) -> Vec<Vec<f64>> {
    vec![vec![0.0; n]; k]
}

/// Order parameters of `weights` with respect to the spike directions `eig` (rows) of `data`.
///
/// `omega0 = w.e`, `varpi0 = v.e / sqrt(D)`, and the bulk sums
/// `Qb0 = (sigma^2/D) w_k P w_l`, `Rb0 = (sigma^2/D) v_k P w_l / sqrt(D)`,
/// `Tb0 = (sigma^2/D) v_k P v_l / D` with `P` the projector off the spikes.
pub fn from_weights(weights: &Weights, eig: &[Vec<f64>], data: &Spiked) -> InitInputs {
    from_projections(
        weights,
        eig.len(),
        project(&weights.w, eig),
        project(&weights.v, eig),
        data,
    )
}

/// The projections `rows[k] . eig[m]`, as one matrix product (K x D times D x M): for a full
/// eigenbasis of real data (M = D) this is what observing a run costs, and dot products one by
/// one took ten times as long at D = 768.
fn project(rows: &[Vec<f64>], eig: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (k, m) = (rows.len(), eig.len());
    let d = rows.first().map_or(0, Vec::len);
    if k == 0 || m == 0 || d == 0 {
        return vec![vec![0.0; m]; k];
    }
    let a: Vec<f64> = rows.concat();
    let b: Vec<f64> = eig.concat();
    let mut c = vec![0.0; k * m];
    // SAFETY: a is k x d and b is m x d, both row-major and as long as their strides say (b read
    // as its transpose, d x m, with row stride 1 and column stride d); c is k x m.
    unsafe {
        matrixmultiply::dgemm(
            k,
            d,
            m,
            1.0,
            a.as_ptr(),
            d as isize,
            1,
            b.as_ptr(),
            1,
            d as isize,
            0.0,
            c.as_mut_ptr(),
            m as isize,
            1,
        );
    }
    c.chunks(m).map(<[f64]>::to_vec).collect()
}

/// `from_weights` given the projections `wt = w.e` and `vt = v.e` onto the modes.
fn from_projections(weights: &Weights, m: usize, wt: Vec<Vec<f64>>, vt: Vec<Vec<f64>>, data: &Spiked) -> InitInputs {
    let (k, d) = (weights.k(), weights.d() as f64);
    let sq = d.sqrt();
    let s2d = data.sigma * data.sigma / d;
    let mut inputs = InitInputs {
        k,
        m,
        omega0: wt.clone(),
        varpi0: vt.iter().map(|r| r.iter().map(|x| x / sq).collect()).collect(),
        qb0: zeros(k, k),
        rb0: zeros(k, k),
        tb0: zeros(k, k),
        t00: zeros(k, k),
    };
    // Without a bulk (real data, whose full eigenbasis leaves nothing off the modes) the bulk
    // sums are multiplied by 0: only T0 is left to compute.
    let bulk = s2d != 0.0;
    for a in 0..k {
        for b in 0..k {
            let vv_full = dot(&weights.v[a], &weights.v[b]);
            inputs.t00[a][b] = vv_full / d;
            if !bulk {
                continue;
            }
            let spike = |x: &[f64], y: &[f64]| -> f64 { x.iter().zip(y).map(|(p, q)| p * q).sum() };
            let ww = dot(&weights.w[a], &weights.w[b]) - spike(&wt[a], &wt[b]);
            let vw = dot(&weights.v[a], &weights.w[b]) - spike(&vt[a], &wt[b]);
            let vv = vv_full - spike(&vt[a], &vt[b]);
            inputs.qb0[a][b] = s2d * ww;
            inputs.rb0[a][b] = s2d * vw / sq;
            inputs.tb0[a][b] = s2d * vv / d;
        }
    }
    inputs
}

/// Order parameters for every mode of a full basis (`eig` holds all D rows): no bulk.
pub fn from_weights_full(weights: &Weights, eig: &[Vec<f64>]) -> InitInputs {
    from_weights(weights, eig, &no_bulk(weights.d()))
}

/// `from_weights_full` in the canonical basis, where the weights' entries are their
/// coordinates: the same numbers to the bit (a dot product with a unit vector adds only
/// zeros), without the D x D identity (20 GB at D = 50 000) or its K D^2 products.
pub fn from_coordinates(weights: &Weights) -> InitInputs {
    from_projections(
        weights,
        weights.d(),
        weights.w.clone(),
        weights.v.clone(),
        &no_bulk(weights.d()),
    )
}

fn no_bulk(d: usize) -> Spiked {
    Spiked {
        d: crate::data::Dim::Finite(d),
        spikes: vec![],
        sigma: 0.0,
    }
}

/// The informed start `w_k = a e_k`, `v_k = b sqrt(D) e_k` (needs K <= M).
pub fn informed(k: usize, m: usize, a: f64, b: f64) -> InitInputs {
    let mut inputs = InitInputs {
        k,
        m,
        omega0: zeros(k, m),
        varpi0: zeros(k, m),
        qb0: zeros(k, k),
        rb0: zeros(k, k),
        tb0: zeros(k, k),
        t00: zeros(k, k),
    };
    for i in 0..k.min(m) {
        inputs.omega0[i][i] = a;
        inputs.varpi0[i][i] = b;
        inputs.t00[i][i] = b * b;
    }
    inputs
}

/// An aligned start with its own scale per unit: `w_k = a_k e_k`, `v_k = b_k sqrt(D) e_k`
/// (needs K <= M; the informed start is the case of equal `a_k`, `b_k`).
pub fn aligned(m: usize, a: &[f64], b: &[f64]) -> InitInputs {
    let k = a.len().min(b.len());
    let mut inputs = informed(k, m, 0.0, 0.0);
    for i in 0..k.min(m) {
        inputs.omega0[i][i] = a[i];
        inputs.varpi0[i][i] = b[i];
        inputs.t00[i][i] = b[i] * b[i];
    }
    inputs
}

/// The decoder scale that minimises the aligned error of a unit with encoder scale `a` on a
/// mode of rescaled eigenvalue `rho` (docs/theory.md section 7): `b = E[u g(a u)] / E[g(a u)^2]`,
/// `u ~ N(0, rho)`. With `Q = rho a^2`, `E[u g(a u)] = J2(Q, Q, Q) / a` and
/// `E[g(a u)^2] = I2(Q, Q, Q)`.
pub fn perfect_decoder(act: impl Into<ae_core::activation::Activation>, rho: f64, a: f64) -> f64 {
    let act = act.into();
    use ae_dsl::ir::Avg;
    let q = rho * a * a;
    act.average(Avg::J2, &[q, q, q]) / a / act.average(Avg::I2, &[q, q, q])
}

/// The aligned excess of one unit over the PCA error, `½ E[(u - b g(a u))^2]` with
/// `u ~ N(0, rho)` (docs/theory.md section 7): `½ (rho - 2 b E[u g] + b^2 E[g^2])`.
pub fn aligned_excess(act: impl Into<ae_core::activation::Activation>, rho: f64, a: f64, b: f64) -> f64 {
    let act = act.into();
    use ae_dsl::ir::Avg;
    let q = rho * a * a;
    let ug = act.average(Avg::J2, &[q, q, q]) / a;
    let gg = act.average(Avg::I2, &[q, q, q]);
    0.5 * (rho - 2.0 * b * ug + b * b * gg)
}

/// A typical i.i.d. N(0, std^2) start in the strict limit: the spike projections of the encoder
/// are O(1) draws, those of the decoder vanish as 1/sqrt(D), and the bulk sums take their
/// averages `Qb = sigma^2 std^2 I`, `T0 = std^2 I`, `Rb = Tb = 0`.
pub fn typical_infinite(k: usize, data: &Spiked, std: f64, seed: u64) -> InitInputs {
    let m = data.spikes.len();
    let mut r = rng(seed, stream::WEIGHTS);
    let mut inputs = informed(k, m, 0.0, 0.0);
    for row in inputs.omega0.iter_mut() {
        for x in row.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut r);
            *x = std * z;
        }
    }
    for i in 0..k {
        inputs.qb0[i][i] = data.sigma * data.sigma * std * std;
        inputs.t00[i][i] = std * std;
    }
    inputs
}

/// Coordinates of each row of `rows` in an orthonormal basis of R^D whose first M vectors are
/// the spike directions `eig` (exactly, with their signs) and whose other D - M vectors span the
/// bulk (a Householder completion: any orthonormal bulk basis is as good as another).
pub fn full_basis_coordinates(rows: &[Vec<f64>], eig: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let d = rows.first().map_or(0, |r| r.len());
    let m = eig.len();
    if m == 0 {
        return rows.to_vec();
    }
    let e = nalgebra::DMatrix::from_fn(d, m, |i, j| eig[j][i]);
    let qr = e.qr();
    let r = qr.r();
    rows.iter()
        .map(|row| {
            let mut x = nalgebra::DMatrix::from_column_slice(d, 1, row);
            qr.q_tr_mul(&mut x);
            let mut out: Vec<f64> = x.column(0).iter().copied().collect();
            for (j, c) in out.iter_mut().take(m).enumerate() {
                // E = Q R with orthonormal E makes R diagonal with entries +-1.
                *c *= r[(j, j)].signum();
            }
            out
        })
        .collect()
}
