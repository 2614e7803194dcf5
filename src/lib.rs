//! aedyn: learning dynamics of shallow non-linear autoencoders. This library holds the generated
//! kernels and the jobs that the command-line program and the tests share.

pub mod cli;
pub mod compare;
pub mod experiment;
pub mod models;
pub mod plot;
pub mod reduced;
pub mod run;
