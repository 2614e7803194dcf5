//! Readable text of the typed IR (after `def` inlining, `sym` expansion and the symbolic
//! passes): what the generator actually sees, for snapshots and for debugging equation files.

use std::fmt::Write;

use crate::ir::{CmpOp, Expr, Ix, Model, Range};

/// The value of an index variable where it is bound.
pub type Bound<'a> = &'a dyn Fn(usize) -> Option<usize>;

impl Model {
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "equations {} ({} ratio rewrite(s))",
            self.name, self.ratio_rewrites
        );
        for p in &self.params {
            match p.default {
                Some(v) => {
                    let _ = writeln!(out, "param {} = {v}", p.name);
                }
                None => {
                    let _ = writeln!(out, "param {}", p.name);
                }
            }
        }
        for s in &self.states {
            let lhs = self.lhs(&s.name, &s.lhs_hidden, s.lhs_mode);
            let sym = if s.symmetric { " symmetric" } else { "" };
            let _ = writeln!(
                out,
                "state {}{sym} init {}",
                self.lhs(&s.name, &s.init_hidden, s.init_mode),
                self.expr(&s.init)
            );
            let _ = writeln!(out, "  d/dt {lhs} = {}", self.expr(&s.rhs));
        }
        for l in &self.lets {
            let _ = writeln!(
                out,
                "let {} = {}",
                self.lhs(&l.name, &l.hidden, l.mode),
                self.expr(&l.body)
            );
        }
        for o in &self.observables {
            let _ = writeln!(
                out,
                "observe {} = {}",
                self.lhs(&o.name, &o.hidden, None),
                self.expr(&o.body)
            );
        }
        out
    }

    fn var(&self, v: usize) -> String {
        format!("{}{}", self.vars[v].name, v)
    }

    fn ix(&self, ix: &Ix, bound: Bound) -> String {
        match ix {
            Ix::Var(v) => bound(*v).map_or_else(|| self.var(*v), |value| value.to_string()),
            Ix::Fixed(n) => n.to_string(),
        }
    }

    fn lhs(&self, name: &str, hidden: &[usize], mode: Option<usize>) -> String {
        let h: Vec<String> = hidden.iter().map(|v| self.var(*v)).collect();
        self.indexed(name, h, mode.map(|m| self.var(m)))
    }

    fn indexed(&self, name: &str, hidden: Vec<String>, mode: Option<String>) -> String {
        match (hidden.is_empty(), mode) {
            (true, None) => name.to_string(),
            (_, None) => format!("{name}[{}]", hidden.join(",")),
            (_, Some(m)) => format!("{name}[{};{m}]", hidden.join(",")),
        }
    }

    fn ixs(&self, hidden: &[Ix], mode: &Option<Ix>, bound: Bound) -> (Vec<String>, Option<String>) {
        (
            hidden.iter().map(|i| self.ix(i, bound)).collect(),
            mode.as_ref().map(|m| self.ix(m, bound)),
        )
    }

    /// Fully parenthesised infix text of an expression.
    pub fn expr(&self, e: &Expr) -> String {
        self.expr_bound(e, &|_| None)
    }

    /// Like [`Model::expr`], with the values of bound index variables filled in.
    pub fn expr_bound(&self, e: &Expr, bound: Bound) -> String {
        let show = |i: &Ix| self.ix(i, bound);
        let sub = |e: &Expr| self.expr_bound(e, bound);
        match e {
            Expr::Num(v) => format!("{v}"),
            Expr::Param(i) => self.params[*i].name.clone(),
            Expr::Rho(i) => format!("rho[{}]", show(i)),
            Expr::State { id, hidden, mode } => {
                let (h, m) = self.ixs(hidden, mode, bound);
                self.indexed(&self.states[*id].name, h, m)
            }
            Expr::Let { id, hidden, mode } => {
                let (h, m) = self.ixs(hidden, mode, bound);
                self.indexed(&self.lets[*id].name, h, m)
            }
            Expr::Input { input, hidden, mode } => {
                let (h, m) = self.ixs(hidden, mode, bound);
                self.indexed(input.name(), h, m)
            }
            Expr::Func(f, a) => format!("{}({})", f.name(), sub(a)),
            Expr::Neg(a) => format!("(-{})", sub(a)),
            Expr::Add(a, b) => format!("({} + {})", sub(a), sub(b)),
            Expr::Sub(a, b) => format!("({} - {})", sub(a), sub(b)),
            Expr::Mul(a, b) => format!("{} * {}", sub(a), sub(b)),
            Expr::Div(a, b) => format!("{} / ({})", sub(a), sub(b)),
            Expr::Powi(a, n) => format!("({})^{n}", sub(a)),
            Expr::Avg(avg, args) => {
                let args: Vec<String> = args.iter().map(&sub).collect();
                format!("{}({})", avg.name(), args.join(", "))
            }
            Expr::Sum { var, range, body } => {
                let head = match range {
                    Range::Modes | Range::Hidden(None) => self.var(*var),
                    Range::Hidden(Some((op, ix))) => {
                        let op = match op {
                            CmpOp::Ne => "!=",
                            CmpOp::Le => "<=",
                            CmpOp::Lt => "<",
                            CmpOp::Ge => ">=",
                            CmpOp::Gt => ">",
                        };
                        format!("{} {op} {}", self.var(*var), show(ix))
                    }
                };
                format!("sum({head}, {})", sub(body))
            }
        }
    }
}
