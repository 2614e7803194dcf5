//! Front end of the aedyn equation language: parse, resolve, rewrite, unroll and emit.
//!
//! This crate holds all the logic of the code generator so that it can be tested directly;
//! `ae-macros` is a thin procedural-macro wrapper around [`emit::emit`].

pub mod activation;
pub mod ast;
mod closed_forms;
pub mod columns;
pub mod emit;
pub mod emit_generic;
pub mod error;
pub mod generic;
pub mod ir;
pub mod jacobian;
pub mod layout;
pub mod lexer;
pub mod parser;
pub mod passes;
pub mod pretty;
pub mod resolve;
pub mod schedule;
pub mod unroll;
pub mod user_activation;

pub use activation::ActivationKind;
pub use error::{Error, Result, Span};
pub use ir::Model;

/// Parses and resolves an equation file and applies the symbolic passes.
pub fn compile(path: &str, source: &str) -> Result<Model> {
    let file = parser::parse(path, source)?;
    let mut model = resolve::resolve(&file)?;
    passes::rewrite_ratios(&mut model);
    Ok(model)
}

/// Like [`compile`] but without the symbolic passes (the literal equations, for checking them).
pub fn compile_literal(path: &str, source: &str) -> Result<Model> {
    let file = parser::parse(path, source)?;
    resolve::resolve(&file)
}
