//! Typed intermediate representation: resolved names, index variables and shapes.

pub use crate::ast::CmpOp;
use crate::error::Span;

/// An index variable introduced by an equation's left-hand side, a `let`, or a `sum`.
pub type VarId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// Hidden-unit index, range 0..K fixed at generation time.
    Hidden,
    /// Mode index, range over the runtime list `rho`.
    Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarInfo {
    pub name: String,
    pub kind: IndexKind,
}

/// A resolved index: a bound variable or a fixed hidden-unit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ix {
    Var(VarId),
    Fixed(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Sqrt,
    Exp,
    Log,
    Abs,
    Asin,
    Acos,
    Atan,
    Sin,
    Cos,
    Tanh,
    /// The error function erf(x) (so that erf(x / sqrt(2)) is the built-in activation).
    Erf,
    /// 1, -1, or 0 at 0: the derivative of `abs`.
    Sign,
}

impl Func {
    pub const ALL: [(&'static str, Func); 12] = [
        ("sqrt", Func::Sqrt),
        ("exp", Func::Exp),
        ("log", Func::Log),
        ("abs", Func::Abs),
        ("asin", Func::Asin),
        ("acos", Func::Acos),
        ("atan", Func::Atan),
        ("sin", Func::Sin),
        ("cos", Func::Cos),
        ("tanh", Func::Tanh),
        ("erf", Func::Erf),
        ("sign", Func::Sign),
    ];
    pub fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Func::Sqrt => x.sqrt(),
            Func::Exp => x.exp(),
            Func::Log => x.ln(),
            Func::Abs => x.abs(),
            Func::Asin => x.asin(),
            Func::Acos => x.acos(),
            Func::Atan => x.atan(),
            Func::Sin => x.sin(),
            Func::Cos => x.cos(),
            Func::Tanh => x.tanh(),
            Func::Erf => erf(x),
            Func::Sign => sign(x),
        }
    }
}

/// The language's `erf`: the C library's, where exp, log and the language's other functions
/// come from too (through std). It is accurate to 1 ulp, as the `libm` crate's port of the same
/// algorithm is, but computes its exponentials with the platform's faster exp: a quarter of a
/// run with GELU declared was spent in erf. Interpreter, compiled kernels and the JIT all
/// call this one.
#[inline]
pub fn erf(x: f64) -> f64 {
    mod c {
        extern "C" {
            pub fn erf(x: f64) -> f64;
        }
    }
    // SAFETY: C's erf is defined for every double (NaN in, NaN out) and touches no memory.
    unsafe { c::erf(x) }
}

/// The sign of x: 1, -1, or 0 at 0 (NaN stays NaN); the language's `sign`, and the derivative
/// it gives `abs`, so that a kink's own point has a value rather than 0/0. Inline: generated
/// kernels call it from another crate.
#[inline]
pub fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x * 0.0
    }
}

/// The Gaussian averages of docs/theory.md section 5; arguments are covariance entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Avg {
    /// E[g(x1) g(x2)], arguments C11, C12, C22.
    I2,
    /// E[x1 g(x2)], arguments C11, C12, C22.
    J2,
    /// E[g'(x1) x1 x2], arguments C11, C12, C22.
    I21,
    /// E[g'(x1) x2^2], arguments C11, C12, C22.
    I22,
    /// E[g'(x1) x2 g(x3)], arguments C11, C12, C13, C22, C23, C33.
    I3,
}

impl Avg {
    pub const ALL: [(&'static str, Avg); 5] = [
        ("I2", Avg::I2),
        ("J2", Avg::J2),
        ("I21", Avg::I21),
        ("I22", Avg::I22),
        ("I3", Avg::I3),
    ];
    pub fn name(self) -> &'static str {
        Avg::ALL
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
    pub fn arity(self) -> usize {
        match self {
            Avg::I3 => 6,
            _ => 3,
        }
    }
    pub fn method(self) -> &'static str {
        match self {
            Avg::I2 => "i2",
            Avg::J2 => "j2",
            Avg::I21 => "i21",
            Avg::I22 => "i22",
            Avg::I3 => "i3",
        }
    }
}

/// An activation's body: an expression of its one argument (`activation g(x) = ...`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Num(f64),
    /// The argument x.
    Arg,
    Func(Func, Box<Scalar>),
    Neg(Box<Scalar>),
    Add(Box<Scalar>, Box<Scalar>),
    Sub(Box<Scalar>, Box<Scalar>),
    Mul(Box<Scalar>, Box<Scalar>),
    Div(Box<Scalar>, Box<Scalar>),
    Powi(Box<Scalar>, i32),
}

impl Scalar {
    pub fn eval(&self, x: f64) -> f64 {
        match self {
            Scalar::Num(v) => *v,
            Scalar::Arg => x,
            Scalar::Func(f, a) => f.apply(a.eval(x)),
            Scalar::Neg(a) => -a.eval(x),
            Scalar::Add(a, b) => a.eval(x) + b.eval(x),
            Scalar::Sub(a, b) => a.eval(x) - b.eval(x),
            Scalar::Mul(a, b) => a.eval(x) * b.eval(x),
            Scalar::Div(a, b) => a.eval(x) / b.eval(x),
            Scalar::Powi(a, n) => a.eval(x).powi(*n),
        }
    }

    /// The arguments of every `abs` and `sign` in the expression: where they change sign, g'
    /// (or g itself) may jump.
    pub fn kink_arguments(&self) -> Vec<&Scalar> {
        let mut out = Vec::new();
        self.visit(&mut |s| {
            if let Scalar::Func(Func::Abs | Func::Sign, a) = s {
                out.push(&**a);
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut dyn FnMut(&'a Scalar)) {
        f(self);
        match self {
            Scalar::Func(_, a) | Scalar::Neg(a) | Scalar::Powi(a, _) => a.visit(f),
            Scalar::Add(a, b) | Scalar::Sub(a, b) | Scalar::Mul(a, b) | Scalar::Div(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Scalar::Num(_) | Scalar::Arg => {}
        }
    }
}

/// `activation name(x) = body`: an activation of the user's, selected by `--activation name`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationDef {
    pub name: String,
    pub body: Scalar,
    /// Where it is declared (line, column), for errors about it.
    pub line: usize,
    pub col: usize,
}

/// Order parameters of the initial weights, readable only in `init` expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// omega0[k; tau] = w_k . e_tau
    Omega0,
    /// varpi0[k; tau] = v_k . e_tau / sqrt(D)
    Varpi0,
    /// Qb0[k, l]: lumped bulk of Q
    Qb0,
    /// Rb0[k, l]: lumped bulk of R (decoder k, encoder l)
    Rb0,
    /// Tb0[k, l]: lumped bulk of T
    Tb0,
    /// T00[k, l] = v_k . v_l / D
    T00,
}

impl Input {
    pub const ALL: [(&'static str, Input); 6] = [
        ("omega0", Input::Omega0),
        ("varpi0", Input::Varpi0),
        ("Qb0", Input::Qb0),
        ("Rb0", Input::Rb0),
        ("Tb0", Input::Tb0),
        ("T00", Input::T00),
    ];
    pub fn name(self) -> &'static str {
        Input::ALL
            .iter()
            .find(|(_, i)| *i == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
    /// (hidden indices, has mode index)
    pub fn shape(self) -> (usize, bool) {
        match self {
            Input::Omega0 | Input::Varpi0 => (1, true),
            _ => (2, false),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    Hidden(Option<(CmpOp, Ix)>),
    Modes,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Param(usize),
    Rho(Ix),
    State {
        id: usize,
        hidden: Vec<Ix>,
        mode: Option<Ix>,
    },
    Let {
        id: usize,
        hidden: Vec<Ix>,
        mode: Option<Ix>,
    },
    Input {
        input: Input,
        hidden: Vec<Ix>,
        mode: Option<Ix>,
    },
    Func(Func, Box<Expr>),
    Neg(Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Powi(Box<Expr>, i32),
    Avg(Avg, Vec<Expr>),
    Sum {
        var: VarId,
        range: Range,
        body: Box<Expr>,
    },
}

impl Expr {
    /// Applies `f` to every index in the expression.
    pub fn map_indices(&self, f: &impl Fn(Ix) -> Ix) -> Expr {
        let ixs = |v: &Vec<Ix>| v.iter().map(|i| f(*i)).collect::<Vec<_>>();
        let b = |e: &Expr| Box::new(e.map_indices(f));
        match self {
            Expr::Num(_) | Expr::Param(_) => self.clone(),
            Expr::Rho(i) => Expr::Rho(f(*i)),
            Expr::State { id, hidden, mode } => Expr::State {
                id: *id,
                hidden: ixs(hidden),
                mode: mode.map(f),
            },
            Expr::Let { id, hidden, mode } => Expr::Let {
                id: *id,
                hidden: ixs(hidden),
                mode: mode.map(f),
            },
            Expr::Input { input, hidden, mode } => Expr::Input {
                input: *input,
                hidden: ixs(hidden),
                mode: mode.map(f),
            },
            Expr::Func(func, a) => Expr::Func(*func, b(a)),
            Expr::Neg(a) => Expr::Neg(b(a)),
            Expr::Add(x, y) => Expr::Add(b(x), b(y)),
            Expr::Sub(x, y) => Expr::Sub(b(x), b(y)),
            Expr::Mul(x, y) => Expr::Mul(b(x), b(y)),
            Expr::Div(x, y) => Expr::Div(b(x), b(y)),
            Expr::Powi(x, n) => Expr::Powi(b(x), *n),
            Expr::Avg(a, args) => Expr::Avg(*a, args.iter().map(|e| e.map_indices(f)).collect()),
            Expr::Sum { var, range, body } => Expr::Sum {
                var: *var,
                range: match range {
                    Range::Hidden(Some((op, ix))) => Range::Hidden(Some((*op, f(*ix)))),
                    other => other.clone(),
                },
                body: b(body),
            },
        }
    }

    /// Rebuilds the expression bottom-up, offering every node to `f` after its children.
    pub fn rewrite(&self, f: &mut dyn FnMut(Expr) -> Expr) -> Expr {
        let rebuilt = match self {
            Expr::Func(func, a) => Expr::Func(*func, Box::new(a.rewrite(f))),
            Expr::Neg(a) => Expr::Neg(Box::new(a.rewrite(f))),
            Expr::Add(x, y) => Expr::Add(Box::new(x.rewrite(f)), Box::new(y.rewrite(f))),
            Expr::Sub(x, y) => Expr::Sub(Box::new(x.rewrite(f)), Box::new(y.rewrite(f))),
            Expr::Mul(x, y) => Expr::Mul(Box::new(x.rewrite(f)), Box::new(y.rewrite(f))),
            Expr::Div(x, y) => Expr::Div(Box::new(x.rewrite(f)), Box::new(y.rewrite(f))),
            Expr::Powi(x, n) => Expr::Powi(Box::new(x.rewrite(f)), *n),
            Expr::Avg(a, args) => Expr::Avg(*a, args.iter().map(|e| e.rewrite(f)).collect()),
            Expr::Sum { var, range, body } => Expr::Sum {
                var: *var,
                range: range.clone(),
                body: Box::new(body.rewrite(f)),
            },
            leaf => leaf.clone(),
        };
        f(rebuilt)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub default: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub name: String,
    /// Number of hidden-unit indices (0, 1 or 2).
    pub hidden: usize,
    /// Whether the state has a mode index (one copy per mode).
    pub mode: bool,
    /// Stored once for k <= l (two hidden indices only).
    pub symmetric: bool,
    pub lhs_hidden: Vec<VarId>,
    pub lhs_mode: Option<VarId>,
    pub rhs: Expr,
    pub init_hidden: Vec<VarId>,
    pub init_mode: Option<VarId>,
    pub init: Expr,
    /// Where it is declared, for errors about its columns.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Let {
    pub name: String,
    pub hidden: Vec<VarId>,
    pub mode: Option<VarId>,
    pub body: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observable {
    pub name: String,
    pub hidden: Vec<VarId>,
    pub body: Expr,
    /// Where it is declared, for errors about its columns.
    pub span: Span,
}

/// The rules of online SGD that an equation file may say it describes (`sgd vanilla`).
pub const SGD_RULES: [&str; 3] = ["vanilla", "truncated", "sanger"];

/// `sgd rule`: which SGD the equations describe, so that `compare` pairs them with that rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SgdDecl {
    /// One of `SGD_RULES`.
    pub rule: String,
    pub span: Span,
}

/// A resolved equation file.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub path: String,
    pub vars: Vec<VarInfo>,
    pub params: Vec<Param>,
    pub states: Vec<State>,
    pub lets: Vec<Let>,
    pub observables: Vec<Observable>,
    /// The file's own activations.
    pub activations: Vec<ActivationDef>,
    /// The SGD rule the file says its equations describe, if it says.
    pub sgd: Option<SgdDecl>,
    /// How many `[I21 (..) + I22 (..)] / S` ratios the symbolic pass rewrote.
    pub ratio_rewrites: usize,
}

impl Model {
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
    pub fn has_modes(&self) -> bool {
        self.states.iter().any(|s| s.mode)
    }

    /// The state that carries an initial order parameter unchanged: the one declared as
    /// `state X[k; tau] init omega0[k; tau]` carries the encoder overlaps, whatever it is called.
    /// Its shape must be the input's, and its indices must be passed through in order.
    pub fn carrier(&self, input: Input) -> Option<usize> {
        let (hidden, mode) = input.shape();
        self.states.iter().position(|s| {
            let through = Expr::Input {
                input,
                hidden: s.init_hidden.iter().map(|v| Ix::Var(*v)).collect(),
                mode: s.init_mode.map(Ix::Var),
            };
            s.hidden == hidden && s.mode == mode && s.init == through
        })
    }

    /// The file's activation called `name`, if it declares one.
    pub fn activation(&self, name: &str) -> Option<&ActivationDef> {
        self.activations.iter().find(|a| a.name == name)
    }

    /// Index of the scalar observable `name` among the observables, if there is one.
    pub fn scalar_observable(&self, name: &str) -> Option<usize> {
        self.observables
            .iter()
            .position(|o| o.name == name && o.hidden.is_empty())
    }
}
