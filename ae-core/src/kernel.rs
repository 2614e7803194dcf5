//! The interface shared by generated right-hand sides and the interpreter.

/// A right-hand side for one (equation file, K, activation), with its parameters and modes.
pub trait Kernel: Send + Sync {
    /// Name of the equations (`vanilla`, ...).
    fn equations(&self) -> &str;
    fn activation(&self) -> crate::averages::ActivationKind;
    fn k(&self) -> usize;
    /// The equation file's text (to recover layout and names).
    fn source(&self) -> &str;
    /// Parameter values, in the order the file declares them.
    fn params(&self) -> &[f64];
    fn params_mut(&mut self) -> &mut [f64];
    /// Rescaled eigenvalues of the modes.
    fn rho(&self) -> &[f64];
    fn set_rho(&mut self, rho: Vec<f64>);
    /// `dy = f(y)`.
    fn rhs(&self, y: &[f64], dy: &mut [f64]);
    /// Observables, in the order of `ae_dsl::unroll::observable_names`.
    fn observe(&self, y: &[f64], out: &mut [f64]);
    /// Generated code (true) or the interpreter (false).
    fn is_generated(&self) -> bool;
    /// Writes the exact Jacobian `df/dy` at `y` into `jac`, column-major (`jac[col * n + row]`,
    /// `n = y.len()`), and returns true; kernels without one return false and leave `jac`
    /// alone (callers then use finite differences).
    fn jacobian(&self, _y: &[f64], _jac: &mut [f64]) -> bool {
        false
    }
}

/// Where a partial derivative of a generated Jacobian goes (see ae-dsl's `jacobian` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JacSlot {
    /// State entry `i` without mode index.
    Y(usize),
    /// Entry `entry` of a mode state whose block starts after `before` entries per mode of
    /// earlier mode states and has `stride` entries per mode; at the current mode.
    Mode { before: usize, stride: usize, entry: usize },
    /// Mode sum number `m`.
    Sum(usize),
}

/// Assembles a generated Jacobian from its partial derivatives. Generated code computes the
/// values with straight-line arithmetic and hands them over with their slots: scattering them
/// here, rather than with thousands of indexed stores in generated loops, keeps LLVM's loop
/// passes from taking minutes over the generated code.
///
/// With every mode sum `S_m = Σ_τ B_m(τ)` held fixed, `∂f/∂y` goes straight into `jac`;
/// `∂f/∂S` into `p` (n x ns), the per-mode `∂B_m/∂y` and `∂B_m/∂S_m'` add up in `g` (ns x n)
/// and `c` (ns x ns); [`JacobianBuilder::finish`] then forms `J = ∂f/∂y + p dS/dy`.
pub struct JacobianBuilder<'a> {
    jac: &'a mut [f64],
    n: usize,
    n_scalar: usize,
    ns: usize,
    modes: usize,
    p: Vec<f64>,
    g: Vec<f64>,
    c: Vec<f64>,
}

impl<'a> JacobianBuilder<'a> {
    /// For a state of `n` entries, `n_scalar` of them without mode index, `ns` mode sums and `modes` modes. Zeroes `jac` (n x n, column-major).
    pub fn new(jac: &'a mut [f64], n: usize, n_scalar: usize, ns: usize, modes: usize) -> Self {
        jac[..n * n].fill(0.0);
        JacobianBuilder {
            jac,
            n,
            n_scalar,
            ns,
            modes,
            p: vec![0.0; n * ns],
            g: vec![0.0; ns * n],
            c: vec![0.0; ns * ns],
        }
    }

    fn index(&self, slot: JacSlot, tau: usize) -> usize {
        match slot {
            JacSlot::Y(i) => i,
            JacSlot::Mode { before, stride, entry } => self.n_scalar + before * self.modes + tau * stride + entry,
            JacSlot::Sum(_) => unreachable!("a mode sum is not a state entry"),
        }
    }

    /// Puts `values[i]`, the partial derivative of row `slots[i].0` by column `slots[i].1`, at
    /// mode `tau` (ignored by slots without mode).
    pub fn put(&mut self, slots: &[(JacSlot, JacSlot)], values: &[f64], tau: usize) {
        let (n, ns) = (self.n, self.ns);
        for (&(row, col), &v) in slots.iter().zip(values) {
            match (row, col) {
                (JacSlot::Sum(m), JacSlot::Sum(m2)) => self.c[m2 * ns + m] += v,
                (JacSlot::Sum(m), col) => {
                    let c = self.index(col, tau);
                    self.g[c * ns + m] += v;
                }
                (row, JacSlot::Sum(m)) => {
                    let r = self.index(row, tau);
                    self.p[m * n + r] = v;
                }
                (row, col) => {
                    let (r, c) = (self.index(row, tau), self.index(col, tau));
                    self.jac[c * n + r] = v;
                }
            }
        }
    }

    /// Completes `dS/dy` (a sum's body contains only earlier sums, so one forward pass) and
    /// adds `p dS/dy` to the Jacobian.
    pub fn finish(self) {
        let JacobianBuilder {
            jac,
            n,
            ns,
            p,
            mut g,
            c,
            ..
        } = self;
        for m in 0..ns {
            for m2 in 0..m {
                let coupling = c[m2 * ns + m];
                if coupling != 0.0 {
                    for col in 0..n {
                        g[col * ns + m] += coupling * g[col * ns + m2];
                    }
                }
            }
        }
        for col in 0..n {
            let column = &mut jac[col * n..(col + 1) * n];
            for m in 0..ns {
                let total = g[col * ns + m];
                if total != 0.0 {
                    for (entry, pm) in column.iter_mut().zip(&p[m * n..(m + 1) * n]) {
                        *entry += pm * total;
                    }
                }
            }
        }
    }
}
