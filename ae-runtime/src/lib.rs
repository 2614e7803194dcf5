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

/// The inner parts of the SGD simulator that the runtime's own tests (`tests/internals`) check
/// directly: the fused pass, the generator's ziggurat, the tile and Gram sizes. Not part of the
/// API (hidden from the docs, no stability promise). Those tests live outside the crate because
/// unit tests would make `cargo test` compile the whole crate a second time, at opt-level 3.
#[doc(hidden)]
pub mod internals {
    pub use crate::data::sampling::GAUSSIAN_BATCH;
    pub use crate::sgd::fused::{pass_with, Pending, Rows, Sums, MAX_K};
    pub use crate::sgd::normal::{density, fast_path, fast_path_portable, tables, LAYERS, R, V};
    pub use crate::sgd::{GRAM_MAX_K, TILE};
}

pub use nalgebra;
pub use ode_solvers;
