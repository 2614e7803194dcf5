//! aedyn: learning dynamics of shallow non-linear autoencoders. This library holds the jobs
//! that the command-line program and the tests share; the generated kernels live in
//! `aedyn-kernels`.

pub mod backend;
pub mod cli;
/// The generated kernels (crate `aedyn-kernels`), under the name the jobs and tests use.
pub use aedyn_kernels as models;
pub mod compare;
pub mod error;
pub mod experiment;
pub mod files;
pub mod memory;
pub mod names;
pub mod plot;
pub mod reduced;
pub mod run;
pub mod schema;
pub mod source;
pub mod spectrum;
pub mod sweep;
