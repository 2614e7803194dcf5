//! Runtime of aedyn: the interpreter of equation files, initial conditions, adaptive
//! integration (`ode`), data models and loaders (`data`), and the exact SGD simulator (`sgd`).
//!
//! What compiled kernels call (Gaussian averages, the `Kernel` trait) lives in `ae-core`.

pub mod data;
pub mod init;
pub mod interp;
pub mod interrupt;
pub mod measure;
pub mod ode;
pub mod sgd;

pub use nalgebra;
pub use ode_solvers;
