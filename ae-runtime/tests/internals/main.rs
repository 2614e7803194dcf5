//! The runtime's tests of its parts (integrators, generator, SGD, loaders) against the built
//! library: outside the crate, so that `cargo test` does not compile the crate a second time.

mod data;
mod fused;
mod init;
mod normal;
mod ode;
mod rosenbrock;
mod sgd;
