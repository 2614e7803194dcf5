//! Name resolution and checking: turns the syntax tree into the typed IR, inlining `def`s
//! and expanding `sym`, with located errors for everything a person can get wrong.

use std::collections::HashMap;
use std::rc::Rc;

use crate::ast::{self, ExprKind, Idx, IdxArg, Signature};
use crate::error::{Error, Result, Span};
use crate::ir::*;

/// How deeply `def`s may call each other before we assume recursion.
const MAX_DEF_DEPTH: usize = 32;
/// Indices above this are surely a typo; the real bound K is checked at generation time.
const MAX_FIXED_INDEX: usize = 64;
const RESERVED: [&str; 6] = ["sum", "sym", "rho", "pi", "init", "symmetric"];

pub fn resolve(file: &ast::File) -> Result<Model> {
    Resolver::new(&file.path).run(file)
}

/// A resolved `d/dt` equation: its left-hand-side variables and its right-hand side.
type Equation = (Vec<VarId>, Option<VarId>, Expr);

struct StateDecl {
    hidden: usize,
    mode: bool,
    symmetric: bool,
    span: Span,
}

struct DefDecl<'a> {
    index_params: Vec<String>,
    fn_params: Vec<String>,
    body: &'a ast::Expr,
}

#[derive(Clone, Default)]
struct Scope<'a> {
    bindings: Vec<(String, Ix)>,
    fn_params: Vec<(String, &'a ast::Expr, Rc<Scope<'a>>)>,
    hole: Option<Ix>,
}

impl Scope<'_> {
    fn lookup(&self, name: &str) -> Option<Ix> {
        self.bindings.iter().rev().find(|(n, _)| n == name).map(|(_, ix)| *ix)
    }
}

struct Resolver<'a> {
    path: String,
    activations: Vec<ActivationDef>,
    hidden_names: Vec<String>,
    mode_names: Vec<String>,
    params: Vec<Param>,
    state_names: Vec<String>,
    state_decls: Vec<StateDecl>,
    let_names: Vec<String>,
    lets: Vec<Let>,
    defs: HashMap<String, DefDecl<'a>>,
    vars: Vec<VarInfo>,
    in_init: bool,
    def_depth: usize,
    sgd: Option<SgdDecl>,
}

impl<'a> Resolver<'a> {
    fn new(path: &str) -> Self {
        Resolver {
            path: path.to_string(),
            activations: vec![],
            hidden_names: vec![],
            mode_names: vec![],
            params: vec![],
            state_names: vec![],
            state_decls: vec![],
            let_names: vec![],
            lets: vec![],
            defs: HashMap::new(),
            vars: vec![],
            in_init: false,
            def_depth: 0,
            sgd: None,
        }
    }

    fn err<T>(&self, span: Span, msg: impl Into<String>) -> Result<T> {
        Err(Error::new(&self.path, span, msg))
    }

    fn is_declared(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
            || self.state_names.iter().any(|n| n == name)
            || self.let_names.iter().any(|n| n == name)
            || self.defs.contains_key(name)
            || self.hidden_names.iter().any(|n| n == name)
            || self.mode_names.iter().any(|n| n == name)
    }

    fn declare(&self, name: &ast::Name) -> Result<()> {
        let n = name.text.as_str();
        if RESERVED.contains(&n)
            || Func::ALL.iter().any(|(f, _)| *f == n)
            || Avg::ALL.iter().any(|(a, _)| *a == n)
            || Input::ALL.iter().any(|(i, _)| *i == n)
            || n == "d"
            || n == "_"
        {
            return self.err(name.span, format!("`{n}` is a built-in name and cannot be declared"));
        }
        if self.is_declared(n) {
            return self.err(name.span, format!("`{n}` is declared twice"));
        }
        Ok(())
    }

    fn fresh(&mut self, name: &str, kind: IndexKind) -> VarId {
        self.vars.push(VarInfo {
            name: name.to_string(),
            kind,
        });
        self.vars.len() - 1
    }

    fn run(mut self, file: &'a ast::File) -> Result<Model> {
        // Pass 1: declarations that may be used before they appear.
        let mut model_name = None;
        for stmt in &file.stmts {
            self.declaration(stmt, &mut model_name)?;
        }
        // Pass 2: lets in order (a let sees only the lets above it), then equations and observables.
        for stmt in &file.stmts {
            if let ast::Stmt::Let { name, sig, body } = stmt {
                self.resolve_let(name, sig, body)?;
            }
        }
        let mut rhs: Vec<Option<Equation>> = vec![None; self.state_names.len()];
        let mut inits = Vec::new();
        let mut observables = Vec::new();
        for stmt in &file.stmts {
            match stmt {
                ast::Stmt::Ddt { name, sig, body } => self.equation(name, sig, body, &mut rhs)?,
                ast::Stmt::State { name, sig, init, .. } => {
                    let id = self.state_names.iter().position(|n| *n == name.text).unwrap_or(0);
                    let (scope, hidden, mode) = self.bind_lhs(name, sig, Some(id))?;
                    self.in_init = true;
                    let init = self.expr(init, &scope);
                    self.in_init = false;
                    inits.push((hidden, mode, init?));
                }
                ast::Stmt::Observe { name, sig, body } => {
                    observables.push(self.observable(name, sig, body, &observables)?)
                }
                _ => {}
            }
        }
        let states = self.states(rhs, inits)?;
        let name = model_name.unwrap_or_else(|| {
            let stem = self.path.rsplit('/').next().unwrap_or(&self.path);
            stem.trim_end_matches(".ae").to_string()
        });
        Ok(Model {
            name,
            path: self.path.clone(),
            vars: self.vars,
            params: self.params,
            states,
            lets: self.lets,
            observables,
            activations: self.activations,
            sgd: self.sgd,
            ratio_rewrites: 0,
        })
    }

    /// A declaration of pass 1: the file's name, indices, parameters, states and defs.
    fn declaration(&mut self, stmt: &'a ast::Stmt, model_name: &mut Option<String>) -> Result<()> {
        match stmt {
            ast::Stmt::Equations(n) => {
                if model_name.is_some() {
                    return self.err(n.span, "the file names its equations twice");
                }
                *model_name = Some(n.text.clone());
            }
            ast::Stmt::Sgd(rule) => {
                if self.sgd.is_some() {
                    return self.err(rule.span, "the file names its SGD rule twice");
                }
                if !SGD_RULES.contains(&rule.text.as_str()) {
                    return self.err(
                        rule.span,
                        format!(
                            "unknown SGD rule `{}`: the simulator runs {}",
                            rule.text,
                            SGD_RULES.join(", ")
                        ),
                    );
                }
                self.sgd = Some(SgdDecl {
                    rule: rule.text.clone(),
                    span: rule.span,
                });
            }
            ast::Stmt::Hidden(names) | ast::Stmt::Modes(names) => {
                for n in names {
                    self.declare(n)?;
                    if matches!(stmt, ast::Stmt::Hidden(_)) {
                        self.hidden_names.push(n.text.clone());
                    } else {
                        self.mode_names.push(n.text.clone());
                    }
                }
            }
            ast::Stmt::Param { name, default } => {
                self.declare(name)?;
                if let Some(v) = default {
                    if !v.is_finite() {
                        return self.err(name.span, "a parameter default must be finite");
                    }
                }
                self.params.push(Param {
                    name: name.text.clone(),
                    default: *default,
                });
            }
            ast::Stmt::State {
                name, sig, symmetric, ..
            } => {
                self.declare(name)?;
                let decl = self.shape_of(name, sig, *symmetric, true)?;
                self.state_names.push(name.text.clone());
                self.state_decls.push(decl);
            }
            ast::Stmt::Def {
                name,
                index_params,
                fn_params,
                body,
            } => self.def(name, index_params, fn_params, body)?,
            ast::Stmt::Activation { name, params, body } => self.activation(name, params, body)?,
            _ => {}
        }
        Ok(())
    }

    /// `activation name(x) = body`: a function of its one argument alone.
    fn activation(&mut self, name: &ast::Name, params: &[ast::Name], body: &ast::Expr) -> Result<()> {
        if crate::ActivationKind::parse(&name.text).is_some() {
            return self.err(
                name.span,
                format!(
                    "`{}` is a built-in activation (with closed forms or its own quadrature); give yours another name",
                    name.text
                ),
            );
        }
        self.declare(name)?;
        let arg = match params {
            [x] => x,
            [] => {
                return self.err(
                    name.span,
                    format!(
                        "activation `{}` needs its argument: `{}(x) = ...`",
                        name.text, name.text
                    ),
                )
            }
            [_, second, ..] => {
                return self.err(
                    second.span,
                    format!("an activation takes one argument; `{}` is a second", second.text),
                )
            }
        };
        let body = self.scalar(body, &arg.text)?;
        self.activations.push(ActivationDef {
            name: name.text.clone(),
            body,
            line: name.span.line,
            col: name.span.col,
        });
        Ok(())
    }

    /// An activation's body: numbers, `pi`, the argument, arithmetic and the language's
    /// functions; nothing that depends on the network.
    fn scalar(&self, e: &ast::Expr, arg: &str) -> Result<Scalar> {
        let b = |s: Scalar| Box::new(s);
        Ok(match &e.kind {
            ExprKind::Num(v) => Scalar::Num(*v),
            ExprKind::Name(n) if n == arg => Scalar::Arg,
            ExprKind::Name(n) if n == "pi" => Scalar::Num(std::f64::consts::PI),
            ExprKind::Name(n) => {
                return self.err(
                    e.span,
                    format!("unknown name `{n}` in an activation: its body may use only its argument `{arg}`, numbers, pi and the functions"),
                )
            }
            ExprKind::Neg(a) => Scalar::Neg(b(self.scalar(a, arg)?)),
            ExprKind::Binary(op, x, y) => {
                let (x, y) = (b(self.scalar(x, arg)?), b(self.scalar(y, arg)?));
                match op {
                    ast::BinOp::Add => Scalar::Add(x, y),
                    ast::BinOp::Sub => Scalar::Sub(x, y),
                    ast::BinOp::Mul => Scalar::Mul(x, y),
                    ast::BinOp::Div => Scalar::Div(x, y),
                }
            }
            ExprKind::Pow(x, n) => Scalar::Powi(b(self.scalar(x, arg)?), *n),
            ExprKind::Call { name, index_args, args } => {
                let Some((_, f)) = Func::ALL.iter().find(|(fname, _)| fname == name) else {
                    let funcs: Vec<&str> = Func::ALL.iter().map(|(n, _)| *n).collect();
                    return self.err(
                        e.span,
                        format!("unknown function `{name}` in an activation: expected one of {}", funcs.join(", ")),
                    );
                };
                if args.len() != 1 || !index_args.is_empty() {
                    return self.err(e.span, format!("`{name}` takes one argument, found {}", args.len()));
                }
                Scalar::Func(*f, b(self.scalar(&args[0], arg)?))
            }
            _ => {
                return self.err(
                    e.span,
                    "an activation's body may use only its argument, numbers, arithmetic and the functions (no indices, sums or averages)",
                )
            }
        })
    }

    /// `def name(indices; functions) = body`: checked parameters, inlined where it is called.
    fn def(
        &mut self,
        name: &ast::Name,
        index_params: &[ast::Name],
        fn_params: &[ast::Name],
        body: &'a ast::Expr,
    ) -> Result<()> {
        self.declare(name)?;
        let mut seen: Vec<&str> = vec![];
        for p in index_params.iter().chain(fn_params) {
            if seen.contains(&p.text.as_str()) {
                return self.err(p.span, format!("parameter `{}` appears twice", p.text));
            }
            seen.push(&p.text);
        }
        for p in index_params {
            if !self.hidden_names.contains(&p.text) && !self.mode_names.contains(&p.text) {
                return self.err(
                    p.span,
                    format!(
                        "index parameter `{}` is not a declared index (declare it with `hidden` or `modes` before the def)",
                        p.text
                    ),
                );
            }
        }
        self.defs.insert(
            name.text.clone(),
            DefDecl {
                index_params: index_params.iter().map(|p| p.text.clone()).collect(),
                fn_params: fn_params.iter().map(|p| p.text.clone()).collect(),
                body,
            },
        );
        Ok(())
    }

    fn resolve_let(&mut self, name: &ast::Name, sig: &Signature, body: &'a ast::Expr) -> Result<()> {
        self.declare(name)?;
        let (scope, hidden, mode) = self.bind_lhs(name, sig, None)?;
        let body = self.expr(body, &scope)?;
        self.let_names.push(name.text.clone());
        self.lets.push(Let {
            name: name.text.clone(),
            hidden,
            mode,
            body,
        });
        Ok(())
    }

    /// `d/dt name[...] = body`: the state's one equation.
    fn equation(
        &mut self,
        name: &ast::Name,
        sig: &Signature,
        body: &'a ast::Expr,
        rhs: &mut [Option<Equation>],
    ) -> Result<()> {
        let Some(id) = self.state_names.iter().position(|n| *n == name.text) else {
            let hint = if self.let_names.contains(&name.text) {
                " (it is a `let`; only states have equations)"
            } else {
                ""
            };
            return self.err(
                name.span,
                format!("`d/dt {}`: no state named `{}`{hint}", name.text, name.text),
            );
        };
        if rhs[id].is_some() {
            return self.err(name.span, format!("state `{}` has a second `d/dt` equation", name.text));
        }
        let (scope, hidden, mode) = self.bind_lhs(name, sig, Some(id))?;
        let body = self.expr(body, &scope)?;
        rhs[id] = Some((hidden, mode, body));
        Ok(())
    }

    /// `observe name[...] = body`. Observables have a namespace of their own: `observe Q[k,l] =
    /// Q[k,l]` is fine.
    fn observable(
        &mut self,
        name: &ast::Name,
        sig: &Signature,
        body: &'a ast::Expr,
        earlier: &[Observable],
    ) -> Result<Observable> {
        if sig.mode.is_some() {
            return self.err(
                name.span,
                "an observable cannot have a mode index (sum over the modes instead)",
            );
        }
        if earlier.iter().any(|o| o.name == name.text) {
            return self.err(name.span, format!("observable `{}` is declared twice", name.text));
        }
        let (scope, hidden, _) = self.bind_lhs(name, sig, None)?;
        let body = self.expr(body, &scope)?;
        Ok(Observable {
            name: name.text.clone(),
            hidden,
            body,
            span: name.span,
        })
    }

    /// Every state with its equation and initial value; a state without an equation is an error.
    fn states(&self, mut rhs: Vec<Option<Equation>>, inits: Vec<Equation>) -> Result<Vec<State>> {
        let mut states = Vec::new();
        for (id, ((name, decl), (init_hidden, init_mode, init))) in
            self.state_names.iter().zip(&self.state_decls).zip(inits).enumerate()
        {
            let Some((lhs_hidden, lhs_mode, rhs)) = rhs[id].take() else {
                return self.err(
                    decl.span,
                    format!("state `{name}` has no equation: add `d/dt {name}... = ...`"),
                );
            };
            states.push(State {
                name: name.clone(),
                hidden: decl.hidden,
                mode: decl.mode,
                symmetric: decl.symmetric,
                lhs_hidden,
                lhs_mode,
                rhs,
                init_hidden,
                init_mode,
                init,
                span: decl.span,
            });
        }
        if states.is_empty() {
            return self.err(
                Span {
                    line: 1,
                    col: 1,
                    ..Span::default()
                },
                "the file declares no state",
            );
        }
        Ok(states)
    }

    fn shape_of(&self, name: &ast::Name, sig: &Signature, symmetric: bool, is_state: bool) -> Result<StateDecl> {
        if sig.hidden.len() > 2 {
            return self.err(
                sig.hidden[2].span,
                format!(
                    "`{}` has {} hidden-unit indices; at most 2 are supported",
                    name.text,
                    sig.hidden.len()
                ),
            );
        }
        if symmetric && sig.hidden.len() != 2 {
            return self.err(
                name.span,
                format!(
                    "`{}` is declared symmetric but does not have two hidden-unit indices",
                    name.text
                ),
            );
        }
        if sig.mode.is_some() && is_state && self.mode_names.is_empty() {
            return self.err(
                name.span,
                "a mode index needs a `modes` declaration (for example `modes tau`)",
            );
        }
        Ok(StateDecl {
            hidden: sig.hidden.len(),
            mode: sig.mode.is_some(),
            symmetric,
            span: name.span,
        })
    }

    /// Binds the index names of a left-hand side `name[k, l; tau]` as fresh variables.
    fn bind_lhs(
        &mut self,
        name: &ast::Name,
        sig: &Signature,
        state: Option<usize>,
    ) -> Result<(Scope<'a>, Vec<VarId>, Option<VarId>)> {
        if let Some(id) = state {
            let decl = &self.state_decls[id];
            if sig.hidden.len() != decl.hidden || sig.mode.is_some() != decl.mode {
                return self.err(
                    name.span,
                    format!(
                        "`{}` is declared with {}; here it has {}",
                        name.text,
                        describe_shape(decl.hidden, decl.mode),
                        describe_shape(sig.hidden.len(), sig.mode.is_some())
                    ),
                );
            }
        } else {
            self.shape_of(name, sig, false, false)?;
        }
        let mut scope = Scope::default();
        let mut hidden = Vec::new();
        for idx in &sig.hidden {
            let v = self.lhs_index(idx, IndexKind::Hidden, &scope)?;
            scope.bindings.push((self.vars[v].name.clone(), Ix::Var(v)));
            hidden.push(v);
        }
        let mode = match &sig.mode {
            Some(idx) => {
                let v = self.lhs_index(idx, IndexKind::Mode, &scope)?;
                scope.bindings.push((self.vars[v].name.clone(), Ix::Var(v)));
                Some(v)
            }
            None => None,
        };
        Ok((scope, hidden, mode))
    }

    fn lhs_index(&mut self, idx: &Idx, kind: IndexKind, scope: &Scope) -> Result<VarId> {
        let IdxArg::Var(n) = &idx.arg else {
            return self.err(idx.span, "a left-hand side takes index names, not numbers or `_`");
        };
        self.check_index_name(n, kind, idx.span)?;
        if scope.lookup(n).is_some() {
            return self.err(idx.span, format!("index `{n}` appears twice on the left-hand side"));
        }
        Ok(self.fresh(n, kind))
    }

    fn check_index_name(&self, n: &str, kind: IndexKind, span: Span) -> Result<()> {
        let (names, other, what, decl) = match kind {
            IndexKind::Hidden => (&self.hidden_names, &self.mode_names, "a hidden-unit index", "hidden"),
            IndexKind::Mode => (&self.mode_names, &self.hidden_names, "a mode index", "modes"),
        };
        if names.iter().any(|x| x == n) {
            Ok(())
        } else if other.iter().any(|x| x == n) {
            self.err(span, format!("`{n}` is not {what} here"))
        } else {
            self.err(span, format!("unknown index `{n}`: declare it with `{decl} {n}`"))
        }
    }

    fn ix(&self, idx: &Idx, kind: IndexKind, scope: &Scope) -> Result<Ix> {
        let (ix, span) = match &idx.arg {
            IdxArg::Int(n) => {
                if kind == IndexKind::Mode {
                    return self.err(idx.span, "a mode slot takes a mode index, not a number");
                }
                if *n >= MAX_FIXED_INDEX {
                    return self.err(idx.span, format!("fixed index {n} is out of range"));
                }
                return Ok(Ix::Fixed(*n));
            }
            IdxArg::Hole => match scope.hole {
                Some(ix) => (ix, idx.span),
                None => {
                    return self.err(
                        idx.span,
                        "`_` stands only in an argument of a def, where it marks the index the def supplies",
                    )
                }
            },
            IdxArg::Var(n) => match scope.lookup(n) {
                Some(ix) => (ix, idx.span),
                None => {
                    if self.hidden_names.contains(n) || self.mode_names.contains(n) {
                        return self.err(
                            idx.span,
                            format!("index `{n}` is not bound here: put it on the left-hand side or sum over it with `sum({n}, ...)`"),
                        );
                    }
                    return self.err(idx.span, format!("unknown index `{n}`"));
                }
            },
        };
        let actual = match ix {
            Ix::Var(v) => self.vars[v].kind,
            Ix::Fixed(_) => IndexKind::Hidden,
        };
        if actual != kind {
            let want = match kind {
                IndexKind::Hidden => "a hidden-unit index",
                IndexKind::Mode => "a mode index",
            };
            return self.err(span, format!("this slot takes {want}"));
        }
        Ok(ix)
    }

    fn sig_ixs(
        &self,
        name: &str,
        span: Span,
        sig: &Signature,
        hidden: usize,
        mode: bool,
        scope: &Scope,
    ) -> Result<(Vec<Ix>, Option<Ix>)> {
        if sig.hidden.len() != hidden || sig.mode.is_some() != mode {
            return self.err(
                span,
                format!(
                    "`{name}` takes {}, found {}",
                    describe_shape(hidden, mode),
                    describe_shape(sig.hidden.len(), sig.mode.is_some())
                ),
            );
        }
        let h = sig
            .hidden
            .iter()
            .map(|i| self.ix(i, IndexKind::Hidden, scope))
            .collect::<Result<Vec<_>>>()?;
        let m = match &sig.mode {
            Some(i) => Some(self.ix(i, IndexKind::Mode, scope)?),
            None => None,
        };
        Ok((h, m))
    }

    fn expr(&mut self, e: &'a ast::Expr, scope: &Scope<'a>) -> Result<Expr> {
        let b = Box::new;
        Ok(match &e.kind {
            ExprKind::Num(v) => Expr::Num(*v),
            ExprKind::Name(n) => {
                if let Some(i) = self.params.iter().position(|p| p.name == *n) {
                    Expr::Param(i)
                } else if n == "pi" {
                    Expr::Num(std::f64::consts::PI)
                } else if scope.lookup(n).is_some() {
                    return self.err(e.span, format!("index `{n}` cannot be used as a value"));
                } else if self.state_names.contains(n)
                    || self.let_names.contains(n)
                    || Input::ALL.iter().any(|(i, _)| i == n)
                {
                    return self.indexed(e, n, &Signature::default(), scope);
                } else {
                    return self.unknown(e.span, n);
                }
            }
            ExprKind::Indexed(n, sig) => return self.indexed(e, n, sig, scope),
            ExprKind::Neg(a) => Expr::Neg(b(self.expr(a, scope)?)),
            ExprKind::Binary(op, x, y) => {
                let (x, y) = (b(self.expr(x, scope)?), b(self.expr(y, scope)?));
                match op {
                    ast::BinOp::Add => Expr::Add(x, y),
                    ast::BinOp::Sub => Expr::Sub(x, y),
                    ast::BinOp::Mul => Expr::Mul(x, y),
                    ast::BinOp::Div => Expr::Div(x, y),
                }
            }
            ExprKind::Pow(x, n) => Expr::Powi(b(self.expr(x, scope)?), *n),
            ExprKind::Sum { var, constraint, body } => {
                let IdxArg::Var(n) = &var.arg else {
                    return self.err(var.span, "`sum` needs an index name to sum over");
                };
                if scope.lookup(n).is_some() {
                    return self.err(
                        var.span,
                        format!("index `{n}` is already bound here; sum over another name"),
                    );
                }
                let kind = if self.hidden_names.contains(n) {
                    IndexKind::Hidden
                } else if self.mode_names.contains(n) {
                    IndexKind::Mode
                } else {
                    return self.err(
                        var.span,
                        format!("unknown index `{n}`: declare it with `hidden {n}` or `modes {n}`"),
                    );
                };
                let range = match (kind, constraint) {
                    (IndexKind::Hidden, Some((op, other))) => {
                        Range::Hidden(Some((*op, self.ix(other, IndexKind::Hidden, scope)?)))
                    }
                    (IndexKind::Hidden, None) => Range::Hidden(None),
                    (IndexKind::Mode, Some((_, other))) => {
                        return self.err(other.span, "a sum over modes takes no constraint");
                    }
                    (IndexKind::Mode, None) => Range::Modes,
                };
                let v = self.fresh(n, kind);
                let mut inner = scope.clone();
                if kind == IndexKind::Mode {
                    // One mode index at a time: a mode sum cannot see an outer mode index.
                    let vars = &self.vars;
                    inner
                        .bindings
                        .retain(|(_, ix)| !matches!(ix, Ix::Var(w) if vars[*w].kind == IndexKind::Mode));
                    if matches!(inner.hole, Some(Ix::Var(w)) if vars[w].kind == IndexKind::Mode) {
                        inner.hole = None;
                    }
                }
                inner.bindings.push((n.clone(), Ix::Var(v)));
                Expr::Sum {
                    var: v,
                    range,
                    body: b(self.expr(body, &inner)?),
                }
            }
            ExprKind::Sym { first, second, body } => {
                let k = self.ix(first, IndexKind::Hidden, scope)?;
                let l = self.ix(second, IndexKind::Hidden, scope)?;
                if k == l {
                    return self.err(second.span, "`sym` swaps two different indices");
                }
                let body = self.expr(body, scope)?;
                let swapped = body.map_indices(&|ix| {
                    if ix == k {
                        l
                    } else if ix == l {
                        k
                    } else {
                        ix
                    }
                });
                Expr::Add(b(body), b(swapped))
            }
            ExprKind::Call { name, index_args, args } => return self.call(e, name, index_args, args, scope),
        })
    }

    fn unknown<T>(&self, span: Span, n: &str) -> Result<T> {
        let hint = if Avg::ALL.iter().any(|(a, _)| *a == n) || Func::ALL.iter().any(|(f, _)| *f == n) {
            format!(": `{n}` is a function; call it with parentheses")
        } else if n.starts_with('I') || n.starts_with('J') {
            ". The Gaussian averages are I2, J2, I21, I22, I3".to_string()
        } else {
            String::new()
        };
        self.err(span, format!("unknown name `{n}`{hint}"))
    }

    fn indexed(&mut self, e: &'a ast::Expr, n: &str, sig: &Signature, scope: &Scope<'a>) -> Result<Expr> {
        if n == "rho" {
            let idx = match (&sig.hidden[..], &sig.mode) {
                ([i], None) | ([], Some(i)) => i,
                _ => return self.err(e.span, "`rho` takes one mode index: `rho[tau]`"),
            };
            return Ok(Expr::Rho(self.ix(idx, IndexKind::Mode, scope)?));
        }
        if let Some((_, arg, caller)) = scope.fn_params.iter().rev().find(|(p, _, _)| p == n) {
            let (arg, caller) = (*arg, caller.clone());
            let [i] = &sig.hidden[..] else {
                return self.err(
                    e.span,
                    format!("function parameter `{n}` takes exactly one index: `{n}[a]`"),
                );
            };
            if sig.mode.is_some() {
                return self.err(
                    e.span,
                    format!("function parameter `{n}` takes exactly one index: `{n}[a]`"),
                );
            }
            let ix = self.ix(i, IndexKind::Hidden, scope)?;
            let mut inner = (*caller).clone();
            inner.hole = Some(ix);
            return self.expr(arg, &inner);
        }
        if let Some(id) = self.state_names.iter().position(|s| s == n) {
            if self.in_init {
                return self.err(
                    e.span,
                    format!(
                        "an initial value cannot read state `{n}`; use the inputs omega0, varpi0, Qb0, Rb0, Tb0, T00"
                    ),
                );
            }
            let (h, m) = (self.state_decls[id].hidden, self.state_decls[id].mode);
            let (hidden, mode) = self.sig_ixs(n, e.span, sig, h, m, scope)?;
            return Ok(Expr::State { id, hidden, mode });
        }
        if let Some(id) = self.let_names.iter().position(|s| s == n) {
            if self.in_init {
                return self.err(
                    e.span,
                    format!("an initial value cannot read `{n}`; use the inputs omega0, varpi0, Qb0, Rb0, Tb0, T00"),
                );
            }
            let l = &self.lets[id];
            let (h, m) = (l.hidden.len(), l.mode.is_some());
            let (hidden, mode) = self.sig_ixs(n, e.span, sig, h, m, scope)?;
            return Ok(Expr::Let { id, hidden, mode });
        }
        if let Some((_, input)) = Input::ALL.iter().find(|(i, _)| *i == n) {
            if !self.in_init {
                return self.err(
                    e.span,
                    format!("`{n}` is an initial value and may be used only after `init`"),
                );
            }
            let (h, m) = input.shape();
            let (hidden, mode) = self.sig_ixs(n, e.span, sig, h, m, scope)?;
            return Ok(Expr::Input {
                input: *input,
                hidden,
                mode,
            });
        }
        if self.params.iter().any(|p| p.name == n) {
            return self.err(e.span, format!("parameter `{n}` takes no indices"));
        }
        if self.defs.contains_key(n) {
            return self.err(e.span, format!("`{n}` is a def; call it with parentheses"));
        }
        if self.hidden_names.iter().chain(&self.mode_names).any(|x| x == n) {
            return self.err(e.span, format!("index `{n}` cannot be indexed"));
        }
        self.unknown(e.span, n)
    }

    /// A call of a function or a Gaussian average of the language, if `name` is one.
    fn builtin_call(
        &mut self,
        e: &'a ast::Expr,
        name: &str,
        index_args: &[Idx],
        args: &'a [ast::Expr],
        scope: &Scope<'a>,
    ) -> Result<Option<Expr>> {
        if let Some((_, f)) = Func::ALL.iter().find(|(n, _)| *n == name) {
            if args.len() != 1 || !index_args.is_empty() {
                return self.err(e.span, format!("`{name}` takes one argument, found {}", args.len()));
            }
            return Ok(Some(Expr::Func(*f, Box::new(self.expr(&args[0], scope)?))));
        }
        if let Some((_, avg)) = Avg::ALL.iter().find(|(n, _)| *n == name) {
            if args.len() != avg.arity() || !index_args.is_empty() {
                let entries = if avg.arity() == 3 {
                    "C11, C12, C22"
                } else {
                    "C11, C12, C13, C22, C23, C33"
                };
                return self.err(
                    e.span,
                    format!(
                        "`{name}` takes {} covariance entries ({entries}), found {}",
                        avg.arity(),
                        args.len()
                    ),
                );
            }
            let args = args.iter().map(|a| self.expr(a, scope)).collect::<Result<Vec<_>>>()?;
            return Ok(Some(Expr::Avg(*avg, args)));
        }
        Ok(None)
    }

    fn call(
        &mut self,
        e: &'a ast::Expr,
        name: &str,
        index_args: &[Idx],
        args: &'a [ast::Expr],
        scope: &Scope<'a>,
    ) -> Result<Expr> {
        if let Some(expr) = self.builtin_call(e, name, index_args, args, scope)? {
            return Ok(expr);
        }
        let Some(def) = self.defs.get(name) else {
            if self.state_names.iter().chain(&self.let_names).any(|x| x == name) {
                return self.err(
                    e.span,
                    format!("`{name}` is indexed with brackets, not called: `{name}[...]`"),
                );
            }
            let funcs: Vec<&str> = Func::ALL.iter().map(|(n, _)| *n).collect();
            return self.err(
                e.span,
                format!(
                    "unknown function or average `{name}`. Gaussian averages: I2, J2, I21, I22, I3; functions: {}; or a `def` of this file",
                    funcs.join(", ")
                ),
            );
        };
        // `f(k, l)` for a def with index parameters only: the arguments are indices.
        let converted: Vec<Idx>;
        let (index_args, args): (&[Idx], &'a [ast::Expr]) = if index_args.is_empty()
            && def.fn_params.is_empty()
            && args.len() == def.index_params.len()
            && args
                .iter()
                .all(|a| matches!(a.kind, ExprKind::Name(_) | ExprKind::Num(_)))
        {
            converted = args
                .iter()
                .map(|a| Idx {
                    arg: match &a.kind {
                        ExprKind::Name(n) => IdxArg::Var(n.clone()),
                        ExprKind::Num(v) if v.fract() == 0.0 && *v >= 0.0 => IdxArg::Int(*v as usize),
                        _ => IdxArg::Hole,
                    },
                    span: a.span,
                })
                .collect();
            (&converted, &[])
        } else {
            (index_args, args)
        };
        self.inline_def(e, name, index_args, args, scope)
    }

    /// A `def` inlined at its call: index parameters bound to the index arguments, function
    /// parameters to the argument expressions in the caller's scope.
    fn inline_def(
        &mut self,
        e: &'a ast::Expr,
        name: &str,
        index_args: &[Idx],
        args: &'a [ast::Expr],
        scope: &Scope<'a>,
    ) -> Result<Expr> {
        let def = &self.defs[name];
        if index_args.len() != def.index_params.len() || args.len() != def.fn_params.len() {
            return self.err(
                e.span,
                format!(
                    "`{name}` takes {} index argument(s) and {} function argument(s): `{name}({})`; found {} and {}",
                    def.index_params.len(),
                    def.fn_params.len(),
                    if def.fn_params.is_empty() {
                        def.index_params.join(", ")
                    } else {
                        format!("{}; {}", def.index_params.join(", "), def.fn_params.join(", "))
                    },
                    index_args.len(),
                    args.len()
                ),
            );
        }
        if self.def_depth >= MAX_DEF_DEPTH {
            return self.err(
                e.span,
                format!("definitions nest more than {MAX_DEF_DEPTH} deep (is `{name}` recursive?)"),
            );
        }
        let body = def.body;
        let params: Vec<(String, IndexKind)> = def
            .index_params
            .iter()
            .map(|p| {
                let kind = if self.hidden_names.contains(p) {
                    IndexKind::Hidden
                } else {
                    IndexKind::Mode
                };
                (p.clone(), kind)
            })
            .collect();
        let fn_params = def.fn_params.clone();
        let caller = Rc::new(scope.clone());
        let mut inner = Scope::default();
        for ((p, kind), idx) in params.iter().zip(index_args) {
            inner.bindings.push((p.clone(), self.ix(idx, *kind, scope)?));
        }
        for (p, arg) in fn_params.iter().zip(args) {
            inner.fn_params.push((p.clone(), arg, caller.clone()));
        }
        self.def_depth += 1;
        let out = self.expr(body, &inner);
        self.def_depth -= 1;
        out
    }
}

fn describe_shape(hidden: usize, mode: bool) -> String {
    let h = match hidden {
        0 => "no hidden-unit index".to_string(),
        1 => "1 hidden-unit index".to_string(),
        n => format!("{n} hidden-unit indices"),
    };
    if mode {
        format!("{h} and a mode index")
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::{Avg, Expr, IndexKind, Ix};

    fn resolve(src: &str) -> crate::Result<crate::Model> {
        super::resolve(&crate::parser::parse("t.ae", src)?)
    }

    const HEAD: &str = "hidden k, l, a\nmodes tau\nstate x[k; tau] init omega0[k; tau]\n";

    /// Indices become variables of their kind; a state's reference carries its slots.
    #[test]
    fn indices_are_bound_by_kind() {
        let model = resolve(&format!("{HEAD}d/dt x[k; tau] = rho[tau] * x[k; tau]\n")).unwrap();
        let state = &model.states[0];
        let k = state.lhs_hidden[0];
        let tau = state.lhs_mode.expect("a mode index");
        assert_eq!(model.vars[k].kind, IndexKind::Hidden);
        assert_eq!(model.vars[tau].kind, IndexKind::Mode);
        let Expr::Mul(rho, x) = &state.rhs else {
            panic!("expected a product, got {:?}", state.rhs);
        };
        assert_eq!(**rho, Expr::Rho(Ix::Var(tau)));
        assert_eq!(
            **x,
            Expr::State {
                id: 0,
                hidden: vec![Ix::Var(k)],
                mode: Some(Ix::Var(tau)),
            }
        );
    }

    /// A def is inlined at its call, its index parameter bound to the argument, and `sym`
    /// expands into the expression plus its swap.
    #[test]
    fn defs_inline_and_sym_expands() {
        let src =
            "hidden k, l\nstate T[k, l] init T00[k, l]\ndef f(k) = T[k, k]\nd/dt T[k, l] = sym(k, l, f(k) * T[k, l])\n";
        let model = resolve(src).unwrap();
        let rhs = format!("{:?}", model.states[0].rhs);
        // Two products (the bracket and its swap), each reading T twice.
        assert!(matches!(model.states[0].rhs, Expr::Add(..)), "{rhs}");
        assert_eq!(rhs.matches("State").count(), 4, "{rhs}");
    }

    /// Averages take as many covariance entries as their arity, and a wrong count is an error
    /// naming the entries.
    #[test]
    fn averages_check_their_arity() {
        let ok = resolve(&format!(
            "{HEAD}let Q[k, l] = sum(tau, x[k; tau] * x[l; tau])\nd/dt x[k; tau] = I2(Q[k,k], Q[k,k], Q[k,k]) * x[k; tau]\n"
        ))
        .unwrap();
        assert!(format!("{:?}", ok.states[0].rhs).contains(&format!("{:?}", Avg::I2)));
        let err = resolve(&format!(
            "{HEAD}let Q[k, l] = sum(tau, x[k; tau] * x[l; tau])\nd/dt x[k; tau] = I3(Q[k,k], Q[k,k], Q[k,k]) * x[k; tau]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("`I3` takes 6 covariance entries"), "{err}");
    }

    /// Names are declared once and not over built-ins; every state needs its equation.
    #[test]
    fn declarations_are_checked() {
        let twice = resolve(&format!("{HEAD}param x\nd/dt x[k; tau] = 0\n")).unwrap_err();
        assert!(twice.to_string().contains("`x` is declared twice"), "{twice}");
        let builtin = resolve(&format!("{HEAD}param exp\nd/dt x[k; tau] = 0\n")).unwrap_err();
        assert!(builtin.to_string().contains("`exp` is a built-in name"), "{builtin}");
        let missing = resolve(HEAD).unwrap_err();
        assert!(missing.to_string().contains("state `x` has no equation"), "{missing}");
        assert_eq!((missing.span.line, missing.span.col), (3, 7));
    }
}
