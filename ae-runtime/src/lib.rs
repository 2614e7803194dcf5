//! Runtime of aedyn: Gaussian averages, the IR interpreter, initial conditions, adaptive
//! integration of generated or interpreted equations.

pub mod averages;
pub mod interp;
pub mod kernel;

pub use nalgebra;
pub use ode_solvers;
