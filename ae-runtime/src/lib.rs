//! Runtime of aedyn: Gaussian averages, the IR interpreter, data models and initial
//! conditions, adaptive integration of generated or interpreted equations.

pub mod averages;
pub mod bdf;
pub mod data;
pub mod generic;
pub mod init;
pub mod integrate;
pub mod interp;
pub mod kernel;
pub mod measure;
pub mod normal;
pub mod realdata;
pub mod rosenbrock;
pub mod sgd;

pub use nalgebra;
pub use ode_solvers;
