//! The integration tests, as one binary (as ripgrep does): one link of the library and the
//! kernels instead of one per file. Run one group with `cargo test --test all <module>::`.

mod common;

mod activations;
mod citations;
mod cli;
mod differential;
mod docs_commands;
mod equations;
mod figure2;
mod figures;
mod finite_d;
mod generator;
mod hostile;
mod house;
mod jit;
mod jit_fuzz;
mod loaders;
mod memory_limits;
mod near_singularities;
mod oscillating;
mod pairing;
mod provenance;
mod realdata;
mod reduced;
mod reproduce;
mod sgd_claims;
mod signals;
mod snapshots;
mod sweep;
mod variants;
