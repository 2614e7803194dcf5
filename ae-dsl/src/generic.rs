//! K-generic lowering: the equations as loop nests over a run-time number of hidden units,
//! with every mode-independent value hoisted into arrays and the per-mode work in matrix form.
//!
//! The unroller ([`crate::unroll`]) fixes K at generation time; this module keeps the hidden
//! indices symbolic so that one generated type serves every K. What keeps it fast:
//! - every `let` (each Gaussian average among them) becomes an array over its indices, computed
//!   once per evaluation;
//! - every subexpression that depends on fewer hidden indices than the loop it sits in, or that
//!   does not depend on the mode inside a mode loop, is hoisted into an array of its own
//!   (loop-invariant code motion; equal subexpressions share one array);
//! - a per-mode right-hand side is brought into the normal form
//!   `Σ_groups coef[..] · Π factors`, where the coefficient is mode-independent and the factors
//!   are the mode's state entries and eigenvalue. Sums over hidden units whose index no factor
//!   uses move into the coefficient, so `Σ_{a≠k} c_ka ω_k` costs K² once, not K² per mode.
//!   Groups that are linear in one K-vector of mode states (`Σ_a C_ka ρ^p y[a; τ]`) become one
//!   matrix product over all modes; mode sums of two such vectors (`Σ_τ ρ^p y_k y_l`) likewise.

use std::collections::HashMap;
use std::fmt::Write;

use crate::ir::*;

/// A hidden-unit sum's range: all units, or those in relation `op` to another index.
pub type SumRange = Option<(CmpOp, Ix)>;

/// A lowered expression, evaluated at given values of its free hidden indices (and, where it
/// reads `Rho` or `ModeY`, at the current mode of the enclosing mode loop).
#[derive(Debug, Clone, PartialEq)]
pub enum L {
    Num(f64),
    Param(usize),
    /// The rescaled eigenvalue of the current mode.
    Rho,
    /// Entry of a state without mode index.
    Y {
        state: usize,
        hidden: Vec<Ix>,
    },
    /// Entry of a mode state at the current mode.
    ModeY {
        state: usize,
        hidden: Vec<Ix>,
    },
    /// Entry of a hoisted array, indexed by its variables.
    Temp {
        id: usize,
        args: Vec<Ix>,
    },
    Func(Func, Box<L>),
    Neg(Box<L>),
    Add(Box<L>, Box<L>),
    Sub(Box<L>, Box<L>),
    Mul(Box<L>, Box<L>),
    Div(Box<L>, Box<L>),
    Powi(Box<L>, i32),
    Avg(Avg, Vec<L>),
    /// A sum over hidden units.
    Sum {
        var: VarId,
        range: SumRange,
        body: Box<L>,
    },
}

/// One group of a normal form: `Σ_{sums} coef · Π factors`.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Mode-independent.
    pub coef: L,
    /// Mode-dependent (`Rho`, `ModeY`, or any other expression that reads them).
    pub factors: Vec<L>,
    /// Hidden-unit sums around the product, outermost first; each index is used by a factor.
    pub sums: Vec<(VarId, SumRange)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TempDef {
    /// A mode-independent expression.
    Expr(L),
    /// `Σ_τ Σ_groups`: a sum over modes.
    ModeSum(Vec<Group>),
}

/// A hoisted array: one value per assignment of `vars` (row-major, K^vars.len() entries).
#[derive(Debug, Clone, PartialEq)]
pub struct Temp {
    pub vars: Vec<VarId>,
    pub def: TempDef,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Mode-independent: a state without mode index, or an observable.
    Invariant(L),
    /// A mode state: the normal form at every mode.
    PerMode(Vec<Group>),
}

/// The value of one state's right-hand side (or one observable) at its left-hand indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub vars: Vec<VarId>,
    pub value: Value,
}

/// Everything a K-generic kernel computes, in evaluation order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// In dependency order: a temp reads only temps before it.
    pub temps: Vec<Temp>,
    /// One per state, in the model's order.
    pub rhs: Vec<Output>,
    /// One per observable, in the model's order.
    pub observables: Vec<Output>,
}

/// Lowers the right-hand sides and observables of `model` for a run-time K.
pub fn lower(model: &Model) -> Plan {
    let mut lw = Lowerer {
        model,
        temps: vec![],
        keys: HashMap::new(),
        let_temps: HashMap::new(),
    };
    let rhs = model
        .states
        .iter()
        .map(|s| {
            let value = if s.mode {
                Value::PerMode(lw.normal_form(&s.rhs, &s.lhs_hidden))
            } else {
                let l = lw.expr(&s.rhs);
                Value::Invariant(lw.hoist(l, &s.lhs_hidden, false))
            };
            Output {
                vars: s.lhs_hidden.clone(),
                value,
            }
        })
        .collect();
    let observables = model
        .observables
        .iter()
        .map(|o| {
            let l = lw.expr(&o.body);
            Output {
                vars: o.hidden.clone(),
                value: Value::Invariant(lw.hoist(l, &o.hidden, false)),
            }
        })
        .collect();
    Plan {
        temps: lw.temps,
        rhs,
        observables,
    }
}

impl L {
    fn leafy(&self) -> bool {
        match self {
            L::Num(_) | L::Param(_) | L::Rho | L::Y { .. } | L::ModeY { .. } | L::Temp { .. } => true,
            L::Neg(a) => a.leafy(),
            _ => false,
        }
    }

    /// Reads the current mode (its eigenvalue or a mode state).
    pub fn varying(&self) -> bool {
        let mut v = false;
        self.visit(&mut |l| v |= matches!(l, L::Rho | L::ModeY { .. }));
        v
    }

    fn visit(&self, f: &mut dyn FnMut(&L)) {
        f(self);
        match self {
            L::Func(_, a) | L::Neg(a) | L::Powi(a, _) => a.visit(f),
            L::Add(a, b) | L::Sub(a, b) | L::Mul(a, b) | L::Div(a, b) => {
                a.visit(f);
                b.visit(f);
            }
            L::Avg(_, args) => args.iter().for_each(|a| a.visit(f)),
            L::Sum { body, .. } => body.visit(f),
            _ => {}
        }
    }

    /// Free hidden-unit variables in order of first appearance.
    pub fn free_vars(&self) -> Vec<VarId> {
        let mut out = Vec::new();
        self.collect_free(&mut Vec::new(), &mut out);
        out
    }

    fn collect_free(&self, bound: &mut Vec<VarId>, out: &mut Vec<VarId>) {
        let mut push = |ix: &Ix, bound: &Vec<VarId>| {
            if let Ix::Var(v) = ix {
                if !bound.contains(v) && !out.contains(v) {
                    out.push(*v);
                }
            }
        };
        match self {
            L::Y { hidden, .. } | L::ModeY { hidden, .. } => hidden.iter().for_each(|i| push(i, bound)),
            L::Temp { args, .. } => args.iter().for_each(|i| push(i, bound)),
            L::Func(_, a) | L::Neg(a) | L::Powi(a, _) => a.collect_free(bound, out),
            L::Add(a, b) | L::Sub(a, b) | L::Mul(a, b) | L::Div(a, b) => {
                a.collect_free(bound, out);
                b.collect_free(bound, out);
            }
            L::Avg(_, args) => args.iter().for_each(|a| a.collect_free(bound, out)),
            L::Sum { var, range, body } => {
                if let Some((_, ix)) = range {
                    push(ix, bound);
                }
                bound.push(*var);
                body.collect_free(bound, out);
                bound.pop();
            }
            L::Num(_) | L::Param(_) | L::Rho => {}
        }
    }

    /// Renames variables (free and bound) by `f`.
    pub fn rename(&self, f: &dyn Fn(VarId) -> VarId) -> L {
        let ix = |i: &Ix| match i {
            Ix::Var(v) => Ix::Var(f(*v)),
            other => *other,
        };
        let b = |l: &L| Box::new(l.rename(f));
        match self {
            L::Num(_) | L::Param(_) | L::Rho => self.clone(),
            L::Y { state, hidden } => L::Y {
                state: *state,
                hidden: hidden.iter().map(ix).collect(),
            },
            L::ModeY { state, hidden } => L::ModeY {
                state: *state,
                hidden: hidden.iter().map(ix).collect(),
            },
            L::Temp { id, args } => L::Temp {
                id: *id,
                args: args.iter().map(ix).collect(),
            },
            L::Func(func, a) => L::Func(*func, b(a)),
            L::Neg(a) => L::Neg(b(a)),
            L::Add(x, y) => L::Add(b(x), b(y)),
            L::Sub(x, y) => L::Sub(b(x), b(y)),
            L::Mul(x, y) => L::Mul(b(x), b(y)),
            L::Div(x, y) => L::Div(b(x), b(y)),
            L::Powi(x, n) => L::Powi(b(x), *n),
            L::Avg(a, args) => L::Avg(*a, args.iter().map(|x| x.rename(f)).collect()),
            L::Sum { var, range, body } => L::Sum {
                var: f(*var),
                range: range.map(|(op, i)| (op, ix(&i))),
                body: b(body),
            },
        }
    }

    /// A text that is equal for two expressions exactly when they are equal up to the names
    /// of their variables: free variables are numbered by `free`, bound ones in order of
    /// appearance.
    fn canonical(&self, free: &[VarId]) -> String {
        let mut names: Vec<VarId> = free.to_vec();
        let mut out = String::new();
        self.write_canonical(&mut names, &mut out);
        out
    }

    fn write_canonical(&self, names: &mut Vec<VarId>, out: &mut String) {
        let ix = |i: &Ix, names: &mut Vec<VarId>| -> String {
            match i {
                Ix::Fixed(n) => format!("#{n}"),
                Ix::Var(v) => match names.iter().position(|w| w == v) {
                    Some(p) => format!("v{p}"),
                    None => {
                        names.push(*v);
                        format!("v{}", names.len() - 1)
                    }
                },
            }
        };
        match self {
            L::Num(v) => write!(out, "{:?}", v.to_bits()).unwrap(),
            L::Param(i) => write!(out, "p{i}").unwrap(),
            L::Rho => out.push_str("rho"),
            L::Y { state, hidden } | L::ModeY { state, hidden } => {
                let tag = if matches!(self, L::Y { .. }) { "y" } else { "my" };
                let h: Vec<String> = hidden.iter().map(|i| ix(i, names)).collect();
                write!(out, "{tag}{state}[{}]", h.join(",")).unwrap();
            }
            L::Temp { id, args } => {
                let h: Vec<String> = args.iter().map(|i| ix(i, names)).collect();
                write!(out, "t{id}[{}]", h.join(",")).unwrap();
            }
            L::Func(f, a) => {
                write!(out, "{}(", f.name()).unwrap();
                a.write_canonical(names, out);
                out.push(')');
            }
            L::Neg(a) => {
                out.push_str("-(");
                a.write_canonical(names, out);
                out.push(')');
            }
            L::Add(a, b) | L::Sub(a, b) | L::Mul(a, b) | L::Div(a, b) => {
                let op = match self {
                    L::Add(..) => '+',
                    L::Sub(..) => '-',
                    L::Mul(..) => '*',
                    _ => '/',
                };
                out.push('(');
                a.write_canonical(names, out);
                out.push(op);
                b.write_canonical(names, out);
                out.push(')');
            }
            L::Powi(a, n) => {
                out.push('(');
                a.write_canonical(names, out);
                write!(out, ")^{n}").unwrap();
            }
            L::Avg(avg, args) => {
                write!(out, "{}(", avg.name()).unwrap();
                for a in args {
                    a.write_canonical(names, out);
                    out.push(',');
                }
                out.push(')');
            }
            L::Sum { var, range, body } => {
                let r = range
                    .map(|(op, i)| format!("{op:?}{}", ix(&i, names)))
                    .unwrap_or_default();
                let v = ix(&Ix::Var(*var), names);
                write!(out, "sum({v}{r},").unwrap();
                body.write_canonical(names, out);
                out.push(')');
            }
        }
    }
}

fn boxed(l: L) -> Box<L> {
    Box::new(l)
}

/// A term of a normal form while it is being built.
#[derive(Debug, Clone)]
struct Term {
    coef: L,
    factors: Vec<L>,
    sums: Vec<(VarId, SumRange)>,
}

/// Normal forms are multiplied out; past this many terms a product is kept whole instead.
const MAX_TERMS: usize = 256;

struct Lowerer<'m> {
    model: &'m Model,
    temps: Vec<Temp>,
    /// Canonical text of each temp, for sharing equal ones.
    keys: HashMap<String, usize>,
    let_temps: HashMap<usize, usize>,
}

impl Lowerer<'_> {
    /// Lowers without normal forms: lets become temps, mode lets are inlined, mode sums
    /// become temps.
    fn expr(&mut self, e: &Expr) -> L {
        let b = |l: L| Box::new(l);
        match e {
            Expr::Num(v) => L::Num(*v),
            Expr::Param(i) => L::Param(*i),
            Expr::Rho(_) => L::Rho,
            Expr::State { id, hidden, mode } => {
                if mode.is_some() {
                    L::ModeY {
                        state: *id,
                        hidden: hidden.clone(),
                    }
                } else {
                    L::Y {
                        state: *id,
                        hidden: hidden.clone(),
                    }
                }
            }
            Expr::Let { id, hidden, mode } => match mode {
                Some(m) => {
                    let body = self.inline_let(*id, hidden, *m);
                    self.expr(&body)
                }
                None => L::Temp {
                    id: self.let_temp(*id),
                    args: hidden.clone(),
                },
            },
            Expr::Input { .. } => unreachable!("inputs appear only in init expressions, which are not lowered"),
            Expr::Func(f, a) => L::Func(*f, b(self.expr(a))),
            Expr::Neg(a) => L::Neg(b(self.expr(a))),
            Expr::Add(x, y) => L::Add(b(self.expr(x)), b(self.expr(y))),
            Expr::Sub(x, y) => L::Sub(b(self.expr(x)), b(self.expr(y))),
            Expr::Mul(x, y) => L::Mul(b(self.expr(x)), b(self.expr(y))),
            Expr::Div(x, y) => L::Div(b(self.expr(x)), b(self.expr(y))),
            Expr::Powi(x, n) => L::Powi(b(self.expr(x)), *n),
            Expr::Avg(avg, args) => L::Avg(*avg, args.iter().map(|a| self.expr(a)).collect()),
            Expr::Sum { var, range, body } => match range {
                Range::Hidden(c) => L::Sum {
                    var: *var,
                    range: *c,
                    body: b(self.expr(body)),
                },
                Range::Modes => {
                    let terms = self.poly(body);
                    let mut vars = Vec::new();
                    for t in &terms {
                        for v in term_free_vars(t) {
                            if !vars.contains(&v) {
                                vars.push(v);
                            }
                        }
                    }
                    let groups = self.normalise(terms, &vars);
                    let id = self.intern(
                        Temp {
                            vars: vars.clone(),
                            def: TempDef::ModeSum(groups),
                        },
                        &vars,
                    );
                    L::Temp {
                        id,
                        args: vars.iter().map(|v| Ix::Var(*v)).collect(),
                    }
                }
            },
        }
    }

    /// The body of a let with a mode index, with its indices replaced by the reference's.
    fn inline_let(&self, id: usize, hidden: &[Ix], mode: Ix) -> Expr {
        let l = &self.model.lets[id];
        let (lh, lm) = (l.hidden.clone(), l.mode);
        let hidden = hidden.to_vec();
        l.body.map_indices(&move |ix| match ix {
            Ix::Var(v) if Some(v) == lm => mode,
            Ix::Var(v) => match lh.iter().position(|w| *w == v) {
                Some(p) => hidden[p],
                None => ix,
            },
            other => other,
        })
    }

    fn let_temp(&mut self, id: usize) -> usize {
        if let Some(t) = self.let_temps.get(&id) {
            return *t;
        }
        let l = &self.model.lets[id];
        let vars = l.hidden.clone();
        let body = self.expr(&l.body);
        let body = self.hoist(body, &vars, false);
        let t = self.intern(
            Temp {
                vars: vars.clone(),
                def: TempDef::Expr(body),
            },
            &vars,
        );
        self.let_temps.insert(id, t);
        t
    }

    /// Adds a temp, or finds an equal one.
    fn intern(&mut self, temp: Temp, vars: &[VarId]) -> usize {
        let key = match &temp.def {
            TempDef::Expr(l) => format!("E{}", l.canonical(vars)),
            TempDef::ModeSum(groups) => {
                let mut names = vars.to_vec();
                let mut s = String::from("S");
                for g in groups {
                    s.push_str(&group_key(g, &mut names));
                    s.push('|');
                    g.coef.write_canonical(&mut names, &mut s);
                    s.push(';');
                }
                s
            }
        };
        if let Some(id) = self.keys.get(&key) {
            return *id;
        }
        self.temps.push(temp);
        let id = self.temps.len() - 1;
        self.keys.insert(key, id);
        id
    }

    /// A temp holding `body` over `vars` (after hoisting inside it), as a reference.
    fn materialise(&mut self, body: L, vars: Vec<VarId>) -> L {
        let body = self.hoist(body, &vars, false);
        let id = self.intern(
            Temp {
                vars: vars.clone(),
                def: TempDef::Expr(body),
            },
            &vars,
        );
        L::Temp {
            id,
            args: vars.into_iter().map(Ix::Var).collect(),
        }
    }

    /// Loop-invariant code motion: a mode-independent subexpression that uses fewer hidden
    /// indices than the loops around it (`context`), or that sits inside a mode loop
    /// (`in_mode_loop`), becomes a temp over the indices it uses.
    fn hoist(&mut self, l: L, context: &[VarId], in_mode_loop: bool) -> L {
        if !l.leafy() && !l.varying() {
            let free = l.free_vars();
            if in_mode_loop || free.len() < context.len() {
                return self.materialise(l, free);
            }
        }
        let h = |x: Box<L>, this: &mut Self| boxed(this.hoist(*x, context, in_mode_loop));
        match l {
            L::Func(f, a) => L::Func(f, h(a, self)),
            L::Neg(a) => L::Neg(h(a, self)),
            L::Add(a, b) => L::Add(h(a, self), h(b, self)),
            L::Sub(a, b) => L::Sub(h(a, self), h(b, self)),
            L::Mul(a, b) => L::Mul(h(a, self), h(b, self)),
            L::Div(a, b) => L::Div(h(a, self), h(b, self)),
            L::Powi(a, n) => L::Powi(h(a, self), n),
            L::Avg(avg, args) => L::Avg(
                avg,
                args.into_iter().map(|a| self.hoist(a, context, in_mode_loop)).collect(),
            ),
            L::Sum { var, range, body } => {
                let mut inner = context.to_vec();
                inner.push(var);
                L::Sum {
                    var,
                    range,
                    body: boxed(self.hoist(*body, &inner, in_mode_loop)),
                }
            }
            leaf => leaf,
        }
    }

    /// The normal form of a mode state's right-hand side, at its left-hand indices.
    fn normal_form(&mut self, e: &Expr, lhs: &[VarId]) -> Vec<Group> {
        let terms = self.poly(e);
        self.normalise(terms, lhs)
    }

    /// The terms of a mode-dependent expression (see the module documentation).
    fn poly(&mut self, e: &Expr) -> Vec<Term> {
        let lowered = self.expr(e);
        if !lowered.varying() {
            return vec![Term {
                coef: lowered,
                factors: vec![],
                sums: vec![],
            }];
        }
        let factor = |l: L| {
            vec![Term {
                coef: L::Num(1.0),
                factors: vec![l],
                sums: vec![],
            }]
        };
        match e {
            Expr::Let {
                id,
                hidden,
                mode: Some(m),
            } => {
                let body = self.inline_let(*id, hidden, *m);
                self.poly(&body)
            }
            Expr::Neg(a) => negate(self.poly(a)),
            Expr::Add(a, b) => {
                let mut t = self.poly(a);
                t.extend(self.poly(b));
                t
            }
            Expr::Sub(a, b) => {
                let mut t = self.poly(a);
                t.extend(negate(self.poly(b)));
                t
            }
            Expr::Mul(a, b) => {
                let (pa, pb) = (self.poly(a), self.poly(b));
                product(&pa, &pb).unwrap_or_else(|| factor(lowered))
            }
            Expr::Div(a, b) => {
                let den = self.expr(b);
                if den.varying() {
                    return factor(lowered);
                }
                self.poly(a)
                    .into_iter()
                    .map(|t| Term {
                        coef: L::Div(boxed(t.coef), boxed(den.clone())),
                        ..t
                    })
                    .collect()
            }
            Expr::Powi(a, n) if (1..=3).contains(n) => {
                let pa = self.poly(a);
                let mut acc = pa.clone();
                for _ in 1..*n {
                    match product(&acc, &pa) {
                        Some(p) => acc = p,
                        None => return factor(lowered),
                    }
                }
                acc
            }
            Expr::Sum {
                var,
                range: Range::Hidden(c),
                body,
            } => self
                .poly(body)
                .into_iter()
                .map(|mut t| {
                    t.sums.insert(0, (*var, *c));
                    t
                })
                .collect(),
            // Rho, mode states and anything non-polynomial: one factor.
            _ => factor(lowered),
        }
    }

    /// Moves each term's sums that no factor needs into its coefficient, merges terms with
    /// the same factors and sums, and hoists every coefficient into a temp.
    fn normalise(&mut self, terms: Vec<Term>, context: &[VarId]) -> Vec<Group> {
        let mut groups: Vec<(String, Group)> = Vec::new();
        for t in terms {
            let mut used: Vec<VarId> = Vec::new();
            for f in &t.factors {
                for v in f.free_vars() {
                    if !used.contains(&v) {
                        used.push(v);
                    }
                }
            }
            // A kept sum whose range depends on another summed index keeps that one too.
            let mut keep: Vec<bool> = t.sums.iter().map(|(v, _)| used.contains(v)).collect();
            loop {
                let mut changed = false;
                for i in 0..t.sums.len() {
                    if !keep[i] {
                        continue;
                    }
                    if let Some((_, Ix::Var(w))) = t.sums[i].1 {
                        if let Some(j) = t.sums.iter().position(|(v, _)| *v == w) {
                            if !keep[j] {
                                keep[j] = true;
                                changed = true;
                            }
                        }
                    }
                }
                if !changed {
                    break;
                }
            }
            let mut coef = t.coef;
            for (i, (v, r)) in t.sums.iter().enumerate().rev() {
                if !keep[i] {
                    coef = L::Sum {
                        var: *v,
                        range: *r,
                        body: boxed(coef),
                    };
                }
            }
            let sums: Vec<(VarId, SumRange)> = t.sums.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| *s).collect();
            let mut factors = t.factors;
            let mut names = context.to_vec();
            names.extend(sums.iter().map(|(v, _)| *v));
            factors.sort_by_cached_key(|f| f.canonical(&names));
            let group = Group { coef, factors, sums };
            let key = group_key(&group, &mut context.to_vec());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => {
                    // Rename this term's summed indices to the group's, position by position.
                    let map: Vec<(VarId, VarId)> = group
                        .sums
                        .iter()
                        .zip(&g.sums)
                        .map(|((a, _), (b, _))| (*a, *b))
                        .collect();
                    let renamed = group
                        .coef
                        .rename(&|v| map.iter().find(|(a, _)| *a == v).map(|(_, b)| *b).unwrap_or(v));
                    let prev = std::mem::replace(&mut g.coef, L::Num(0.0));
                    g.coef = L::Add(boxed(prev), boxed(renamed));
                }
                None => groups.push((key, group)),
            }
        }
        groups
            .into_iter()
            .map(|(_, mut g)| {
                let mut scope = context.to_vec();
                scope.extend(g.sums.iter().map(|(v, _)| *v));
                let coef = std::mem::replace(&mut g.coef, L::Num(0.0));
                g.coef = if coef.leafy() {
                    coef
                } else {
                    // Context indices first, then summed ones: a coefficient of `Σ_a c ω[a]`
                    // is the matrix c[k, a].
                    let used = coef.free_vars();
                    let vars: Vec<VarId> = scope.iter().copied().filter(|v| used.contains(v)).collect();
                    self.materialise(coef, vars)
                };
                g.factors = g.factors.into_iter().map(|f| self.hoist(f, &scope, true)).collect();
                g
            })
            .collect()
    }
}

/// The text shared by groups with the same factors and sums (up to names of summed indices).
fn group_key(g: &Group, names: &mut Vec<VarId>) -> String {
    let mut s = String::new();
    for (v, r) in &g.sums {
        names.push(*v);
        let r = r
            .map(|(op, i)| match i {
                Ix::Var(w) => format!("{op:?}v{}", names.iter().position(|x| *x == w).unwrap_or(usize::MAX)),
                Ix::Fixed(n) => format!("{op:?}#{n}"),
            })
            .unwrap_or_default();
        write!(s, "sum{r},").unwrap();
    }
    for f in &g.factors {
        f.write_canonical(names, &mut s);
        s.push('*');
    }
    s
}

fn term_free_vars(t: &Term) -> Vec<VarId> {
    let bound: Vec<VarId> = t.sums.iter().map(|(v, _)| *v).collect();
    let mut out = Vec::new();
    let mut add = |v: VarId| {
        if !bound.contains(&v) && !out.contains(&v) {
            out.push(v);
        }
    };
    for (_, r) in &t.sums {
        if let Some((_, Ix::Var(w))) = r {
            add(*w);
        }
    }
    t.coef.free_vars().into_iter().for_each(&mut add);
    for f in &t.factors {
        f.free_vars().into_iter().for_each(&mut add);
    }
    out
}

fn negate(terms: Vec<Term>) -> Vec<Term> {
    terms
        .into_iter()
        .map(|t| Term {
            coef: L::Neg(boxed(t.coef)),
            ..t
        })
        .collect()
}

/// The product of two normal forms, multiplied out; None if it would be too large or if both
/// sides sum over one index (the same `sum` copied by `sym`).
fn product(a: &[Term], b: &[Term]) -> Option<Vec<Term>> {
    if a.len() * b.len() > MAX_TERMS {
        return None;
    }
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if x.sums.iter().any(|(v, _)| y.sums.iter().any(|(w, _)| w == v)) {
                return None;
            }
            let coef = match (&x.coef, &y.coef) {
                (L::Num(one), c) | (c, L::Num(one)) if *one == 1.0 => c.clone(),
                (c, d) => L::Mul(boxed(c.clone()), boxed(d.clone())),
            };
            let mut factors = x.factors.clone();
            factors.extend(y.factors.iter().cloned());
            let mut sums = x.sums.clone();
            sums.extend(y.sums.iter().copied());
            out.push(Term { coef, factors, sums });
        }
    }
    Some(out)
}

/// How a group of a mode state's normal form is evaluated by a matrix product: the group is
/// `ρ^power · Σ_{a in range} coef[k, a] · y[a; τ]` (or, without a sum, `ρ^power coef[k] y[k; τ]`)
/// for a mode state `source` with one hidden index, and the output has one hidden index `k`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGroup {
    pub source: usize,
    pub power: usize,
    /// The summed index and its range, or None for the diagonal `y[k; τ]`.
    pub sum: Option<(VarId, SumRange)>,
}

/// Recognises [`LinearGroup`]s (see there).
pub fn linear_group(model: &Model, output_vars: &[VarId], g: &Group) -> Option<LinearGroup> {
    let [k] = output_vars else { return None };
    let mut power = 0;
    let mut source = None;
    for f in &g.factors {
        match f {
            L::Rho => power += 1,
            L::ModeY { state, hidden } if hidden.len() == 1 && source.is_none() => source = Some((*state, hidden[0])),
            _ => return None,
        }
    }
    let (source, ix) = source?;
    if model.states[source].hidden != 1 {
        return None;
    }
    let sum = match (&g.sums[..], ix) {
        ([], Ix::Var(v)) if v == *k => None,
        ([(a, range)], Ix::Var(v)) if v == *a => {
            match range {
                None => {}
                Some((_, Ix::Var(w))) if w == k => {}
                _ => return None,
            }
            Some((*a, *range))
        }
        _ => return None,
    };
    let allowed: Vec<VarId> = std::iter::once(*k).chain(sum.map(|(a, _)| a)).collect();
    if g.coef.free_vars().iter().any(|v| !allowed.contains(v)) {
        return None;
    }
    Some(LinearGroup { source, power, sum })
}

/// How a group of a mode sum over two indices is evaluated by a matrix product: the group is
/// `coef[k, l] · Σ_τ ρ^power · y1[k; τ] · y2[l; τ]` for mode states with one hidden index.
#[derive(Debug, Clone, PartialEq)]
pub struct GramGroup {
    pub left: usize,
    pub right: usize,
    pub power: usize,
}

/// Recognises [`GramGroup`]s (see there).
pub fn gram_group(model: &Model, temp_vars: &[VarId], g: &Group) -> Option<GramGroup> {
    let [k, l] = temp_vars else { return None };
    if !g.sums.is_empty() {
        return None;
    }
    let mut power = 0;
    let (mut left, mut right) = (None, None);
    for f in &g.factors {
        match f {
            L::Rho => power += 1,
            L::ModeY { state, hidden } if hidden.len() == 1 && model.states[*state].hidden == 1 => match hidden[0] {
                Ix::Var(v) if v == *k && left.is_none() => left = Some(*state),
                Ix::Var(v) if v == *l && right.is_none() => right = Some(*state),
                _ => return None,
            },
            _ => return None,
        }
    }
    if g.coef.free_vars().iter().any(|v| v != k && v != l) {
        return None;
    }
    Some(GramGroup {
        left: left?,
        right: right?,
        power,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Model {
        let path = format!("{}/../equations/{name}.ae", env!("CARGO_MANIFEST_DIR"));
        let src = std::fs::read_to_string(&path).unwrap();
        crate::compile(&path, &src).unwrap()
    }

    /// The per-mode work of the spike files is all matrix products: every group of the vector
    /// states is linear in one K-vector, every mode sum of Q, R, T a Gram matrix.
    #[test]
    fn vector_files_lower_to_matrix_products() {
        for name in ["vanilla", "truncated", "full_spectrum"] {
            let model = shipped(name);
            let plan = lower(&model);
            for (s, out) in model.states.iter().zip(&plan.rhs) {
                if let Value::PerMode(groups) = &out.value {
                    assert!(!groups.is_empty());
                    for g in groups {
                        assert!(
                            linear_group(&model, &out.vars, g).is_some(),
                            "{name}: {} has a group that is not a matrix product: {g:?}",
                            s.name
                        );
                    }
                }
            }
            let mut grams = 0;
            for t in &plan.temps {
                if let TempDef::ModeSum(groups) = &t.def {
                    for g in groups {
                        if t.vars.len() == 2 {
                            assert!(gram_group(&model, &t.vars, g).is_some(), "{name}: {g:?}");
                            grams += 1;
                        }
                    }
                }
            }
            // Q, R and T (T0_modes is an observable of full_spectrum, in the same temps).
            assert!(grams >= 3, "{name}: {grams} Gram matrices");
        }
    }

    /// Equal subexpressions share one temp: I2 of (k, a) is computed once however many
    /// equations use it, and the encoder coefficient of `Σ_{a≠k} ... ω[k]` has moved out of
    /// the sum over a (only the output's index k is left).
    #[test]
    fn temps_are_shared_and_sums_leave_the_mode_loop() {
        let model = shipped("vanilla");
        let plan = lower(&model);
        let i2_temps = plan
            .temps
            .iter()
            .filter(|t| matches!(&t.def, TempDef::Expr(L::Avg(Avg::I2, _))))
            .count();
        assert_eq!(i2_temps, 1);
        let omega = model.states.iter().position(|s| s.name == "omega").unwrap();
        let Value::PerMode(groups) = &plan.rhs[omega].value else {
            panic!()
        };
        let diagonal: Vec<&Group> = groups
            .iter()
            .filter(|g| {
                g.sums.is_empty()
                    && g.factors
                        .iter()
                        .any(|f| matches!(f, L::ModeY { state, .. } if *state == omega))
            })
            .collect();
        assert!(!diagonal.is_empty());
        for g in diagonal {
            assert!(g.coef.free_vars().len() <= 1, "{g:?}");
        }
    }
}
