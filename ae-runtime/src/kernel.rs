//! The interface shared by generated right-hand sides and the interpreter.

/// A right-hand side for one (equation file, K, activation), with its parameters and modes.
pub trait Kernel: Send + Sync {
    /// Name of the equations (`vanilla`, ...).
    fn equations(&self) -> &str;
    fn activation(&self) -> &str;
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
}
