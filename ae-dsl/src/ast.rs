//! Syntax tree of an equation file, as written (names not yet resolved).

use crate::error::Span;

#[derive(Debug, Clone, PartialEq)]
pub enum IdxArg {
    /// An index variable (`k`, `tau`).
    Var(String),
    /// A fixed index value (`0`).
    Int(usize),
    /// The hole `_` of a function argument to a `def` (`omega[_; tau]`).
    Hole,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    pub arg: IdxArg,
    pub span: Span,
}

/// Index list `[h1, h2; m]`: hidden-unit slots before the `;`, the mode slot after it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signature {
    pub hidden: Vec<Idx>,
    pub mode: Option<Idx>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Le,
    Lt,
    Ge,
    Gt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    /// A bare name: parameter, constant or index variable.
    Name(String),
    /// `name[...]`: state, derived quantity, `rho[tau]`, initial-value input.
    Indexed(String, Signature),
    /// `name(args)` or `name(index args; args)`; `sum` and `sym` are parsed into their own forms.
    Call {
        name: String,
        index_args: Vec<Idx>,
        args: Vec<Expr>,
    },
    Sum {
        var: Idx,
        constraint: Option<(CmpOp, Idx)>,
        body: Box<Expr>,
    },
    Sym {
        first: Idx,
        second: Idx,
        body: Box<Expr>,
    },
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, i32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Equations(Name),
    /// `sgd rule`: the SGD rule whose dynamics the equations describe, which `compare` pairs
    /// them with.
    Sgd(Name),
    Hidden(Vec<Name>),
    Modes(Vec<Name>),
    Param {
        name: Name,
        default: Option<f64>,
    },
    State {
        name: Name,
        sig: Signature,
        symmetric: bool,
        init: Expr,
    },
    Let {
        name: Name,
        sig: Signature,
        body: Expr,
    },
    Def {
        name: Name,
        index_params: Vec<Name>,
        fn_params: Vec<Name>,
        body: Expr,
    },
    Ddt {
        name: Name,
        sig: Signature,
        body: Expr,
    },
    Observe {
        name: Name,
        sig: Signature,
        body: Expr,
    },
    /// `activation name(x) = body`.
    Activation {
        name: Name,
        params: Vec<Name>,
        body: Expr,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: String,
    pub stmts: Vec<Stmt>,
}
