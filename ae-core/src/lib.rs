//! What compiled kernels call, and nothing else: the Gaussian averages of
//! `docs/theory.md` section 5 (closed forms and quadrature), the [`kernel::Kernel`] trait shared
//! by generated, JIT-compiled and interpreted right-hand sides, the assembly of symbolic
//! Jacobians, and the matrix products of the K-generic kernels.
//!
//! The generated kernels depend on this crate alone (not on the integrators, the simulator or
//! the loaders), so that editing those does not recompile them.

pub mod activation;
pub mod averages;
pub mod generic;
pub mod jumps;
pub mod kernel;
pub mod mehler;
pub mod piecewise;
pub mod quadrature;
pub mod ramp;
mod resolution;
mod singularities;
#[cfg(test)]
mod testing;
