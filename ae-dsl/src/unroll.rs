//! Unrolling for a fixed K: every hidden-unit index becomes a number and the equations become
//! one hash-consed expression graph, so shared subexpressions (each Gaussian average, each
//! order parameter) exist once. Modes stay symbolic: a node is either loop-invariant or
//! "at the current mode", and mode sums are nodes of their own.

use std::collections::HashMap;

use crate::activation::ActivationKind;
use crate::error::{Error, Result, Span};
use crate::ir::*;
use crate::layout::{entry, tuples, Layout};

pub type NodeId = usize;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// A constant, stored as its bit pattern so nodes can be hashed.
    Const(u64),
    Param(usize),
    /// A state entry without mode index, at this position of the state vector.
    Y(usize),
    /// Entry `entry` of mode state `state`, at the current mode.
    ModeY {
        state: usize,
        entry: usize,
    },
    /// The rescaled eigenvalue of the current mode.
    Rho,
    /// Sum over all modes of a node that depends on the current mode.
    ModeSum(NodeId),
    Neg(NodeId),
    Add(NodeId, NodeId),
    Sub(NodeId, NodeId),
    Mul(NodeId, NodeId),
    Div(NodeId, NodeId),
    Powi(NodeId, i32),
    Func(Func, NodeId),
    Avg(Avg, Vec<NodeId>),
    /// The gradient of an average with respect to its arguments: one value per argument.
    AvgGrad(Avg, Vec<NodeId>),
    /// Component `j` of an `AvgGrad` node.
    Part(NodeId, usize),
}

impl Node {
    pub fn children(&self) -> Vec<NodeId> {
        match self {
            Node::Const(_) | Node::Param(_) | Node::Y(_) | Node::ModeY { .. } | Node::Rho => vec![],
            Node::ModeSum(a) | Node::Neg(a) | Node::Powi(a, _) | Node::Func(_, a) | Node::Part(a, _) => vec![*a],
            Node::Add(a, b) | Node::Sub(a, b) | Node::Mul(a, b) | Node::Div(a, b) => vec![*a, *b],
            Node::Avg(_, args) | Node::AvgGrad(_, args) => args.clone(),
        }
    }
}

/// Where an output value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `dy[i]` for a state without mode index.
    Y(usize),
    /// Entry of a mode state at the current mode.
    ModeY { state: usize, entry: usize },
    /// Observable number `i`.
    Out(usize),
    /// A partial derivative (see [`crate::jacobian`]).
    Jac { row: JacIx, col: JacIx },
}

/// A row or column of the Jacobian's building blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JacIx {
    /// State entry `i` without mode index.
    Y(usize),
    /// Entry of a mode state at the current mode.
    Mode { state: usize, entry: usize },
    /// Mode sum number `i` (in the order of [`Program::mode_sums`]).
    Sum(usize),
}

/// An unrolled computation: nodes in topological order and the outputs they feed.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub nodes: Vec<Node>,
    pub outputs: Vec<(Target, NodeId)>,
}

/// Checks that every fixed index of the model is below `k`.
pub fn check_k(model: &Model, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::new(&model.path, Span::default(), "K must be at least 1"));
    }
    let mut worst = None;
    let mut visit = |e: &Expr| {
        collect_fixed(e, &mut |n| {
            if n >= k {
                worst = Some(worst.unwrap_or(0).max(n));
            }
        });
    };
    for s in &model.states {
        visit(&s.rhs);
        visit(&s.init);
    }
    for l in &model.lets {
        visit(&l.body);
    }
    for o in &model.observables {
        visit(&o.body);
    }
    match worst {
        Some(n) => Err(Error::new(
            &model.path,
            Span::default(),
            format!("the equations use hidden unit {n}, which does not exist for K = {k}"),
        )),
        None => Ok(()),
    }
}

fn collect_fixed(e: &Expr, f: &mut impl FnMut(usize)) {
    let mut ixs = |v: &[Ix]| {
        for ix in v {
            if let Ix::Fixed(n) = ix {
                f(*n)
            }
        }
    };
    match e {
        Expr::State { hidden, .. } | Expr::Let { hidden, .. } | Expr::Input { hidden, .. } => ixs(hidden),
        Expr::Func(_, a) | Expr::Neg(a) | Expr::Powi(a, _) => collect_fixed(a, f),
        Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) => {
            collect_fixed(a, f);
            collect_fixed(b, f);
        }
        Expr::Avg(_, args) => args.iter().for_each(|a| collect_fixed(a, f)),
        Expr::Sum { range, body, .. } => {
            if let Range::Hidden(Some((_, Ix::Fixed(n)))) = range {
                f(*n);
            }
            collect_fixed(body, f);
        }
        _ => {}
    }
}

/// Whether hidden unit `a` is in the range of a constrained sum, given the other index's value.
pub fn in_range(a: usize, op: CmpOp, other: usize) -> bool {
    match op {
        CmpOp::Ne => a != other,
        CmpOp::Le => a <= other,
        CmpOp::Lt => a < other,
        CmpOp::Ge => a >= other,
        CmpOp::Gt => a > other,
    }
}

pub(crate) struct Builder<'m> {
    model: &'m Model,
    k: usize,
    /// The activation whose closed-form averages are inlined as expressions, if any.
    inline: Option<ActivationKind>,
    layout: Layout,
    pub(crate) nodes: Vec<Node>,
    map: HashMap<Node, NodeId>,
    lets: HashMap<(usize, Vec<usize>), NodeId>,
    env: Vec<usize>,
}

fn is_const(n: &Node, v: f64) -> bool {
    matches!(n, Node::Const(b) if f64::from_bits(*b) == v)
}

impl Builder<'_> {
    pub(crate) fn konst(&mut self, v: f64) -> NodeId {
        // -0.0 and 0.0 are one constant.
        let v = if v == 0.0 { 0.0 } else { v };
        self.intern(Node::Const(v.to_bits()))
    }

    pub(crate) fn intern(&mut self, n: Node) -> NodeId {
        if let Some(id) = self.map.get(&n) {
            return *id;
        }
        self.nodes.push(n.clone());
        self.map.insert(n, self.nodes.len() - 1);
        self.nodes.len() - 1
    }

    fn value(&self, id: NodeId) -> Option<f64> {
        match self.nodes[id] {
            Node::Const(b) => Some(f64::from_bits(b)),
            _ => None,
        }
    }

    /// Creates a node after local simplification (constant folding, neutral elements,
    /// a canonical operand order for `+` and `*` so that `a*b` and `b*a` are shared).
    pub(crate) fn mk(&mut self, n: Node) -> NodeId {
        use Node::*;
        let c = |b: &Self, id: NodeId| b.value(id);
        match n {
            Neg(a) => {
                if let Some(x) = c(self, a) {
                    return self.konst(-x);
                }
                if let Neg(inner) = self.nodes[a] {
                    return inner;
                }
                self.intern(Neg(a))
            }
            Add(a, b) => match (c(self, a), c(self, b)) {
                (Some(x), Some(y)) => self.konst(x + y),
                _ if is_const(&self.nodes[a], 0.0) => b,
                _ if is_const(&self.nodes[b], 0.0) => a,
                _ => self.intern(Add(a.min(b), a.max(b))),
            },
            Sub(a, b) => match (c(self, a), c(self, b)) {
                (Some(x), Some(y)) => self.konst(x - y),
                _ if is_const(&self.nodes[b], 0.0) => a,
                _ if is_const(&self.nodes[a], 0.0) => self.mk(Neg(b)),
                _ => self.intern(Sub(a, b)),
            },
            // `0 * x` stays a product unless x is a constant: x may be NaN (a covariance that
            // left positive definiteness), which the product must carry, as the interpreter does.
            Mul(a, b) => match (c(self, a), c(self, b)) {
                (Some(x), Some(y)) => self.konst(x * y),
                _ if is_const(&self.nodes[a], 1.0) => b,
                _ if is_const(&self.nodes[b], 1.0) => a,
                _ => self.intern(Mul(a.min(b), a.max(b))),
            },
            Div(a, b) => match (c(self, a), c(self, b)) {
                (Some(x), Some(y)) => self.konst(x / y),
                _ if is_const(&self.nodes[b], 1.0) => a,
                _ => self.intern(Div(a, b)),
            },
            Powi(a, p) => match (c(self, a), p) {
                (Some(x), _) => self.konst(x.powi(p)),
                (_, 0) => self.konst(1.0),
                (_, 1) => a,
                _ => self.intern(Powi(a, p)),
            },
            Func(f, a) => match c(self, a) {
                Some(x) => self.konst(f.apply(x)),
                None => self.intern(Func(f, a)),
            },
            ModeSum(a) if is_const(&self.nodes[a], 0.0) => self.konst(0.0),
            other => self.intern(other),
        }
    }

    fn ix(&self, ix: Ix) -> usize {
        match ix {
            Ix::Var(v) => self.env[v],
            Ix::Fixed(n) => n,
        }
    }

    fn expr(&mut self, e: &Expr) -> NodeId {
        match e {
            Expr::Num(v) => self.konst(*v),
            Expr::Param(i) => self.intern(Node::Param(*i)),
            Expr::Rho(_) => self.intern(Node::Rho),
            Expr::State { id, hidden, mode } => {
                let h: Vec<usize> = hidden.iter().map(|i| self.ix(*i)).collect();
                let s = &self.model.states[*id];
                if mode.is_some() {
                    let e = entry(self.k, &h, s.symmetric);
                    self.intern(Node::ModeY { state: *id, entry: e })
                } else {
                    let i = self.layout.index(*id, &h, None);
                    self.intern(Node::Y(i))
                }
            }
            Expr::Let { id, hidden, .. } => {
                let h: Vec<usize> = hidden.iter().map(|i| self.ix(*i)).collect();
                if let Some(n) = self.lets.get(&(*id, h.clone())) {
                    return *n;
                }
                let model = self.model;
                let l = &model.lets[*id];
                for (v, val) in l.hidden.iter().zip(&h) {
                    self.env[*v] = *val;
                }
                let n = self.expr(&l.body);
                self.lets.insert((*id, h), n);
                n
            }
            Expr::Input { .. } => unreachable!("inputs appear only in init expressions, which are not unrolled"),
            Expr::Func(f, a) => {
                let a = self.expr(a);
                self.mk(Node::Func(*f, a))
            }
            Expr::Neg(a) => {
                let a = self.expr(a);
                self.mk(Node::Neg(a))
            }
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                self.mk(match e {
                    Expr::Add(..) => Node::Add(a, b),
                    Expr::Sub(..) => Node::Sub(a, b),
                    Expr::Mul(..) => Node::Mul(a, b),
                    _ => Node::Div(a, b),
                })
            }
            Expr::Powi(a, p) => {
                let a = self.expr(a);
                self.mk(Node::Powi(a, *p))
            }
            Expr::Avg(avg, args) => {
                let mut args: Vec<NodeId> = args.iter().map(|a| self.expr(a)).collect();
                if let Some(activation) = self.inline {
                    if let Some(node) = crate::closed_forms::inline(self, activation, *avg, &args) {
                        return node;
                    }
                }
                // I2 is symmetric under x1 <-> x2: one canonical argument order shares I2_ka and I2_ak.
                if *avg == Avg::I2 && args[0] > args[2] {
                    args.swap(0, 2);
                }
                self.intern(Node::Avg(*avg, args))
            }
            Expr::Sum { var, range, body } => match range {
                Range::Modes => {
                    let b = self.expr(body);
                    self.mk(Node::ModeSum(b))
                }
                Range::Hidden(constraint) => {
                    let constraint = constraint.map(|(op, ix)| (op, self.ix(ix)));
                    let mut acc: Option<NodeId> = None;
                    for a in 0..self.k {
                        if let Some((op, other)) = constraint {
                            if !in_range(a, op, other) {
                                continue;
                            }
                        }
                        self.env[*var] = a;
                        let term = self.expr(body);
                        acc = Some(match acc {
                            None => term,
                            Some(prev) => self.mk(Node::Add(prev, term)),
                        });
                    }
                    match acc {
                        Some(n) => n,
                        None => self.konst(0.0),
                    }
                }
            },
        }
    }
}

pub(crate) fn builder(model: &Model, k: usize, inline: Option<ActivationKind>) -> Builder<'_> {
    Builder {
        model,
        k,
        inline,
        layout: Layout::new(model, k, 1),
        nodes: vec![],
        map: HashMap::new(),
        lets: HashMap::new(),
        env: vec![usize::MAX; model.vars.len()],
    }
}

/// The right-hand side of every state equation, unrolled for `k` hidden units.
pub fn unroll_rhs(model: &Model, k: usize) -> Program {
    unroll_rhs_inlined(model, k, None)
}

/// [`unroll_rhs`] with the closed-form averages of `inline` as expressions (see
/// [`crate::closed_forms`]).
pub fn unroll_rhs_inlined(model: &Model, k: usize, inline: Option<ActivationKind>) -> Program {
    let mut b = builder(model, k, inline);
    let outputs = rhs_outputs(&mut b);
    Program {
        nodes: b.nodes,
        outputs,
    }
}

pub(crate) fn rhs_outputs(b: &mut Builder) -> Vec<(Target, NodeId)> {
    let (model, k) = (b.model, b.k);
    let mut outputs = Vec::new();
    for (id, s) in model.states.iter().enumerate() {
        for t in tuples(k, s.hidden, s.symmetric) {
            for (v, val) in s.lhs_hidden.iter().zip(&t) {
                b.env[*v] = *val;
            }
            let n = b.expr(&s.rhs);
            let target = if s.mode {
                Target::ModeY {
                    state: id,
                    entry: entry(k, &t, s.symmetric),
                }
            } else {
                Target::Y(b.layout.index(id, &t, None))
            };
            outputs.push((target, n));
        }
    }
    outputs
}

/// Names of the observable outputs in order (`eg`, `Q[0,1]`, ...).
pub fn observable_names(model: &Model, k: usize) -> Vec<String> {
    let mut names = Vec::new();
    for o in &model.observables {
        for t in tuples(k, o.hidden.len(), false) {
            if t.is_empty() {
                names.push(o.name.clone());
            } else {
                let idx: Vec<String> = t.iter().map(|i| i.to_string()).collect();
                names.push(format!("{}[{}]", o.name, idx.join(",")));
            }
        }
    }
    names
}

/// Every observable, unrolled for `k` hidden units, in the order of `observable_names`.
pub fn unroll_observables(model: &Model, k: usize) -> Program {
    unroll_observables_inlined(model, k, None)
}

/// [`unroll_observables`] with the closed-form averages of `inline` as expressions.
pub fn unroll_observables_inlined(model: &Model, k: usize, inline: Option<ActivationKind>) -> Program {
    let mut b = builder(model, k, inline);
    let mut outputs = Vec::new();
    for o in &model.observables {
        for t in tuples(k, o.hidden.len(), false) {
            for (v, val) in o.hidden.iter().zip(&t) {
                b.env[*v] = *val;
            }
            let n = b.expr(&o.body);
            outputs.push((Target::Out(outputs.len()), n));
        }
    }
    Program {
        nodes: b.nodes,
        outputs,
    }
}

impl Program {
    /// Number of distinct Gaussian averages the program computes per evaluation.
    pub fn average_count(&self) -> usize {
        self.reachable()
            .iter()
            .zip(&self.nodes)
            .filter(|(r, n)| **r && matches!(n, Node::Avg(..)))
            .count()
    }

    /// The mode sums some output depends on, in node order (which is also dependency order:
    /// a sum's body can only contain sums before it).
    pub fn mode_sums(&self) -> Vec<NodeId> {
        let reach = self.reachable();
        (0..self.nodes.len())
            .filter(|i| reach[*i] && matches!(self.nodes[*i], Node::ModeSum(_)))
            .collect()
    }

    /// Which nodes some output depends on.
    pub fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = self.outputs.iter().map(|(_, n)| *n).collect();
        while let Some(n) = stack.pop() {
            if !seen[n] {
                seen[n] = true;
                stack.extend(self.nodes[n].children());
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(src: &str) -> Model {
        crate::compile("t.ae", src).unwrap()
    }

    /// One Gaussian average per distinct argument list: I2(Q_kk, Q_ka, Q_aa) and
    /// I2(Q_aa, Q_ak, Q_kk) are one node (I2 is symmetric), so K = 3 has 6 of them, not 9.
    #[test]
    fn symmetric_averages_are_shared() {
        let src = "hidden k, a\nstate Q[k, a] symmetric init Qb0[k, a]\nd/dt Q[k, a] = I2(Q[k,k], Q[k,a], Q[a,a])\n";
        let program = unroll_rhs(&model(src), 3);
        assert_eq!(program.outputs.len(), 6);
        assert_eq!(program.average_count(), 6);
    }

    /// Constants fold, neutral elements vanish, and a sum over an empty range is zero; a
    /// product with zero stays a product (its other factor may be NaN, which it must carry).
    #[test]
    fn constants_fold_and_empty_sums_vanish() {
        let src = "hidden k, a\nstate x[k] init 0\nd/dt x[k] = (2 * 3 - 5) * x[k] + sum(a < 0, x[a])\n";
        let program = unroll_rhs(&model(src), 2);
        // dx_k/dt = x_k: the output is the state entry itself, with no operation node.
        for (target, node) in &program.outputs {
            let Target::Y(i) = target else { panic!("{target:?}") };
            assert_eq!(program.nodes[*node], Node::Y(*i));
        }
        let zero = unroll_rhs(&model("hidden k\nstate x[k] init 0\nd/dt x[k] = 0 * x[k]\n"), 1);
        let (_, node) = zero.outputs[0];
        assert!(matches!(zero.nodes[node], Node::Mul(..)), "{:?}", zero.nodes[node]);
    }

    /// A constrained sum leaves out the excluded units: sum(a != k, x[a]) at K = 3 adds the
    /// two other units.
    #[test]
    fn constrained_sums_skip_excluded_units() {
        let src = "hidden k, a\nstate x[k] init 0\nd/dt x[k] = sum(a != k, x[a])\n";
        let program = unroll_rhs(&model(src), 3);
        let (_, first) = program.outputs[0];
        let Node::Add(a, b) = program.nodes[first] else {
            panic!("expected a sum of two terms, got {:?}", program.nodes[first]);
        };
        let mut terms = [program.nodes[a].clone(), program.nodes[b].clone()];
        terms.sort_by_key(|n| format!("{n:?}"));
        assert_eq!(terms, [Node::Y(1), Node::Y(2)]);
    }

    /// A fixed unit beyond K is refused for that K, with the unit named.
    #[test]
    fn a_fixed_unit_beyond_k_is_refused() {
        let m = model("hidden k\nstate x[k] init 0\nd/dt x[k] = x[2]\n");
        assert!(check_k(&m, 3).is_ok());
        let err = check_k(&m, 2).unwrap_err();
        assert!(
            err.to_string()
                .contains("hidden unit 2, which does not exist for K = 2"),
            "{err}"
        );
    }
}
