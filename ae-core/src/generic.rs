//! Helpers of the K-generic generated kernels: symmetric storage and the per-mode matrix
//! products (matrixmultiply's dgemm, which picks AVX/FMA kernels at run time).
//!
//! A mode state with one hidden index is stored mode by mode, K entries per mode: an M x K
//! row-major matrix Y with `Y[τ, k] = y[τ K + k]`.

/// Position of `(i, j)` in a symmetric K x K state stored once for `i <= j`, row by row.
#[inline(always)]
pub fn sym_entry(k: usize, i: usize, j: usize) -> usize {
    let (a, b) = if i <= j { (i, j) } else { (j, i) };
    a * k - a * a.saturating_sub(1) / 2 + (b - a)
}

/// Below this many multiply-adds a plain loop beats dgemm's packing.
const SMALL: usize = 1 << 14;

/// `ρ_τ^power` for every mode.
fn powers(rho: &[f64], power: usize) -> Vec<f64> {
    rho.iter().map(|r| r.powi(power as i32)).collect()
}

/// `G[k, l] = Σ_τ ρ_τ^power Y1[τ, k] Y2[τ, l]` for M x K matrices Y1, Y2 (K x K, row-major).
pub fn gram(k: usize, m: usize, rho: &[f64], power: usize, y1: &[f64], y2: &[f64]) -> Vec<f64> {
    assert!(y1.len() >= m * k && y2.len() >= m * k && rho.len() >= m);
    let mut g = vec![0.0; k * k];
    if k == 0 || m == 0 {
        return g;
    }
    if m * k * k <= SMALL {
        for tau in 0..m {
            let w = rho[tau].powi(power as i32);
            let (r1, r2) = (&y1[tau * k..(tau + 1) * k], &y2[tau * k..(tau + 1) * k]);
            for (a, x) in r1.iter().enumerate() {
                let wx = w * x;
                for (gab, z) in g[a * k..(a + 1) * k].iter_mut().zip(r2) {
                    *gab += wx * z;
                }
            }
        }
        return g;
    }
    let scaled;
    let left: &[f64] = if power == 0 {
        y1
    } else {
        let w = powers(&rho[..m], power);
        scaled = y1[..m * k]
            .chunks_exact(k)
            .zip(&w)
            .flat_map(|(row, w)| row.iter().map(move |v| v * w))
            .collect::<Vec<f64>>();
        &scaled
    };
    let (k_, m_) = (k as isize, 1isize);
    // SAFETY: Y1ᵀ is K x M with strides (1, K) inside `left` (m * k entries), Y2 is M x K
    // with strides (K, 1) inside `y2`, G is K x K with strides (K, 1) inside `g`; all checked
    // above.
    unsafe {
        matrixmultiply::dgemm(
            k,
            m,
            k,
            1.0,
            left.as_ptr(),
            m_,
            k_,
            y2.as_ptr(),
            k_,
            m_,
            0.0,
            g.as_mut_ptr(),
            k_,
            m_,
        );
    }
    g
}

/// `out[τ, k] += ρ_τ^power Σ_a Y[τ, a] C[k, a]` for M x K matrices Y, out and K x K C.
pub fn mode_matmul(k: usize, m: usize, rho: &[f64], power: usize, y: &[f64], c: &[f64], out: &mut [f64]) {
    assert!(y.len() >= m * k && out.len() >= m * k && c.len() >= k * k && rho.len() >= m);
    if k == 0 || m == 0 {
        return;
    }
    if m * k * k <= SMALL {
        for tau in 0..m {
            let w = rho[tau].powi(power as i32);
            let row = &y[tau * k..(tau + 1) * k];
            for (o, c_row) in out[tau * k..(tau + 1) * k].iter_mut().zip(c.chunks_exact(k)) {
                let s: f64 = row.iter().zip(c_row).map(|(a, b)| a * b).sum();
                *o += w * s;
            }
        }
        return;
    }
    let k_ = k as isize;
    let product = |target: &mut [f64], beta: f64| {
        // SAFETY: Y is M x K with strides (K, 1) inside `y`, Cᵀ is K x K with strides (1, K)
        // inside `c`, the target is M x K with strides (K, 1); lengths checked above.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                k,
                1.0,
                y.as_ptr(),
                k_,
                1,
                c.as_ptr(),
                1,
                k_,
                beta,
                target.as_mut_ptr(),
                k_,
                1,
            );
        }
    };
    if power == 0 {
        product(out, 1.0);
        return;
    }
    let mut tmp = vec![0.0; m * k];
    product(&mut tmp, 0.0);
    let w = powers(&rho[..m], power);
    for ((row, t), w) in out[..m * k].chunks_exact_mut(k).zip(tmp.chunks_exact(k)).zip(&w) {
        for (o, v) in row.iter_mut().zip(t) {
            *o += w * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_gram(k: usize, m: usize, rho: &[f64], p: usize, y1: &[f64], y2: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; k * k];
        for t in 0..m {
            for a in 0..k {
                for b in 0..k {
                    g[a * k + b] += rho[t].powi(p as i32) * y1[t * k + a] * y2[t * k + b];
                }
            }
        }
        g
    }

    fn data(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + 1.0) * seed).sin()).collect()
    }

    /// Sums of at most M K = 3600 products of numbers below 1 in another order: rounding,
    /// below 1e-12 (both the plain loops and dgemm, which takes over above SMALL).
    #[test]
    fn products_match_naive_loops() {
        for &(k, m) in &[(1usize, 1usize), (3, 7), (5, 2), (9, 4), (20, 60), (60, 20)] {
            let rho = data(m, 0.3).iter().map(|v| v.abs() + 0.1).collect::<Vec<_>>();
            let (y1, y2) = (data(m * k, 0.7), data(m * k, 1.3));
            let c = data(k * k, 2.1);
            for p in 0..3 {
                let g = gram(k, m, &rho, p, &y1, &y2);
                for (a, b) in g.iter().zip(naive_gram(k, m, &rho, p, &y1, &y2)) {
                    assert!((a - b).abs() < 1e-12, "gram K={k} M={m} p={p}: {a} vs {b}");
                }
                let mut out = data(m * k, 0.9);
                let mut expect = out.clone();
                mode_matmul(k, m, &rho, p, &y1, &c, &mut out);
                for t in 0..m {
                    for kk in 0..k {
                        let s: f64 = (0..k).map(|a| y1[t * k + a] * c[kk * k + a]).sum();
                        expect[t * k + kk] += rho[t].powi(p as i32) * s;
                    }
                }
                for (a, b) in out.iter().zip(&expect) {
                    assert!((a - b).abs() < 1e-12, "mode_matmul K={k} M={m} p={p}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn symmetric_entries_are_row_by_row() {
        let k = 4;
        let mut next = 0;
        for i in 0..k {
            for j in i..k {
                assert_eq!(sym_entry(k, i, j), next);
                assert_eq!(sym_entry(k, j, i), next);
                next += 1;
            }
        }
    }
}
