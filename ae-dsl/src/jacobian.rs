//! Symbolic Jacobian of an unrolled right-hand side, by differentiating the hash-consed graph.
//!
//! The number of modes is known only at run time, so the Jacobian is emitted in three blocks
//! that the runtime ([`ae_core::kernel::close_jacobian`]) puts together. Treat every mode sum
//! `S_m = Σ_τ B_m(τ)` as an independent variable; then
//!
//! ```text
//! J = ∂f/∂y |_S  +  (∂f/∂S) (dS/dy),
//! dS_m/dy = Σ_τ ∂B_m(τ)/∂y |_S  +  Σ_{m' < m} (Σ_τ ∂B_m(τ)/∂S_m') dS_m'/dy,
//! ```
//!
//! where a body can only contain earlier sums. The program's outputs are the partials
//! ([`Target::Jac`]): row `Y`/`Mode` with column `Y`/`Mode` is `∂f/∂y |_S` (a `Mode` column
//! means the row's own mode: at fixed sums a mode's equation sees only its own entries); row
//! `Y`/`Mode` with column `Sum` is `∂f/∂S`; row `Sum(m)` is `∂B_m(τ)/∂(column)` at one mode,
//! to be summed over the modes.

use std::collections::{BTreeMap, HashMap};

use crate::activation::ActivationKind;
use crate::ir::{Func, Model};
use crate::unroll::{builder, rhs_outputs, Builder, JacIx, Node, NodeId, Program, Target};

/// Partial derivatives of one node: column -> derivative node (absent means zero).
type Partials = BTreeMap<JacIx, NodeId>;

/// The partial derivatives of the right-hand side, unrolled for `k` hidden units.
pub fn unroll_jacobian(model: &Model, k: usize) -> Program {
    unroll_jacobian_inlined(model, k, None)
}

/// [`unroll_jacobian`] with the closed-form averages of `inline` as expressions, which the
/// differentiation goes through (no gradient of an average is called).
pub fn unroll_jacobian_inlined(model: &Model, k: usize, inline: Option<ActivationKind>) -> Program {
    let mut b = builder(model, k, inline);
    let outputs = rhs_outputs(&mut b);
    let rhs = Program {
        nodes: std::mem::take(&mut b.nodes),
        outputs,
    };
    let (reach, sums) = (rhs.reachable(), rhs.mode_sums());
    let Program { nodes, outputs: rhs } = rhs;
    b.nodes = nodes;
    let sum_index: HashMap<NodeId, usize> = sums.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    // Children come before parents, so one pass in node order differentiates everything.
    let mut partials: Vec<Partials> = vec![Partials::new(); reach.len()];
    for id in 0..reach.len() {
        if reach[id] {
            partials[id] = differentiate(&mut b, id, &partials, &sum_index);
        }
    }
    let mut outputs = Vec::new();
    let mut push = |row: JacIx, of: &Partials| {
        for (col, d) in of {
            outputs.push((Target::Jac { row, col: *col }, *d));
        }
    };
    for (target, id) in &rhs {
        let row = match *target {
            Target::Y(i) => JacIx::Y(i),
            Target::ModeY { state, entry } => JacIx::Mode { state, entry },
            other => unreachable!("right-hand sides write states, not {other:?}"),
        };
        push(row, &partials[*id]);
    }
    for (m, s) in sums.iter().enumerate() {
        let Node::ModeSum(body) = b.nodes[*s] else {
            unreachable!()
        };
        push(JacIx::Sum(m), &partials[body]);
    }
    Program {
        nodes: b.nodes,
        outputs,
    }
}

/// The derivative of node `of` with respect to the state entry `y[0]`, as a node of the same
/// graph (for the derivatives of an activation, whose argument is `y[0]`).
pub(crate) fn derivative(b: &mut Builder, of: NodeId) -> NodeId {
    let sums = HashMap::new();
    let mut partials: Vec<Partials> = Vec::with_capacity(of + 1);
    for id in 0..=of {
        let p = differentiate(b, id, &partials, &sums);
        partials.push(p);
    }
    match partials[of].get(&JacIx::Y(0)) {
        Some(d) => *d,
        None => b.konst(0.0),
    }
}

/// `acc += coef * of` for every column of `of` (`coef` None means 1), dropping zeros.
fn add_scaled(b: &mut Builder, acc: &mut Partials, coef: Option<NodeId>, of: &Partials) {
    for (col, d) in of {
        let term = match coef {
            Some(c) if matches!(b.nodes[c], Node::Const(bits) if f64::from_bits(bits) == -1.0) => b.mk(Node::Neg(*d)),
            Some(c) => b.mk(Node::Mul(c, *d)),
            None => *d,
        };
        let sum = match acc.get(col) {
            Some(prev) => b.mk(Node::Add(*prev, term)),
            None => term,
        };
        if matches!(b.nodes[sum], Node::Const(bits) if f64::from_bits(bits) == 0.0) {
            acc.remove(col);
        } else {
            acc.insert(*col, sum);
        }
    }
}

fn differentiate(b: &mut Builder, id: NodeId, partials: &[Partials], sums: &HashMap<NodeId, usize>) -> Partials {
    let one = |b: &mut Builder, col: JacIx| Partials::from([(col, b.konst(1.0))]);
    let mut acc = Partials::new();
    match b.nodes[id].clone() {
        Node::Const(_) | Node::Param(_) | Node::Rho => {}
        Node::Y(i) => acc = one(b, JacIx::Y(i)),
        Node::ModeY { state, entry } => acc = one(b, JacIx::Mode { state, entry }),
        Node::ModeSum(_) => acc = one(b, JacIx::Sum(sums[&id])),
        Node::Neg(a) => {
            let minus = b.konst(-1.0);
            add_scaled(b, &mut acc, Some(minus), &partials[a]);
        }
        Node::Add(x, y) => {
            add_scaled(b, &mut acc, None, &partials[x]);
            add_scaled(b, &mut acc, None, &partials[y]);
        }
        Node::Sub(x, y) => {
            let minus = b.konst(-1.0);
            add_scaled(b, &mut acc, None, &partials[x]);
            add_scaled(b, &mut acc, Some(minus), &partials[y]);
        }
        Node::Mul(x, y) => {
            add_scaled(b, &mut acc, Some(y), &partials[x]);
            add_scaled(b, &mut acc, Some(x), &partials[y]);
        }
        Node::Div(x, y) => {
            // d(x/y) = dx / y - (x/y) dy / y, reusing the quotient node itself.
            let one = b.konst(1.0);
            let inv = b.mk(Node::Div(one, y));
            let ratio = b.mk(Node::Div(id, y));
            let minus = b.mk(Node::Neg(ratio));
            add_scaled(b, &mut acc, Some(inv), &partials[x]);
            add_scaled(b, &mut acc, Some(minus), &partials[y]);
        }
        Node::Powi(a, p) => {
            let lower = b.mk(Node::Powi(a, p - 1));
            let pc = b.konst(p as f64);
            let coef = b.mk(Node::Mul(pc, lower));
            add_scaled(b, &mut acc, Some(coef), &partials[a]);
        }
        Node::Func(f, a) => {
            let coef = func_derivative(b, f, a, id);
            add_scaled(b, &mut acc, Some(coef), &partials[a]);
        }
        Node::Avg(avg, args) => {
            let grad = b.intern(Node::AvgGrad(avg, args.clone()));
            for (j, arg) in args.iter().enumerate() {
                let part = b.intern(Node::Part(grad, j));
                add_scaled(b, &mut acc, Some(part), &partials[*arg]);
            }
        }
        Node::AvgGrad(..) | Node::Part(..) => unreachable!("right-hand sides contain no gradients"),
    }
    acc
}

/// `f'(a)` as a node, given the node `fa` of `f(a)` itself.
fn func_derivative(b: &mut Builder, f: Func, a: NodeId, fa: NodeId) -> NodeId {
    let one = b.konst(1.0);
    // 1 - a^2, for the inverse trigonometric functions.
    let one_minus_square = |b: &mut Builder| {
        let sq = b.mk(Node::Powi(a, 2));
        b.mk(Node::Sub(one, sq))
    };
    match f {
        Func::Sqrt => {
            let half = b.konst(0.5);
            b.mk(Node::Div(half, fa))
        }
        Func::Exp => fa,
        Func::Log => b.mk(Node::Div(one, a)),
        // sign(a), 0 at the kink itself (a / |a| was 0/0 there: NaN in a run whose
        // preactivation is exactly 0, as a unit with a zero encoder row has).
        Func::Abs => b.mk(Node::Func(Func::Sign, a)),
        // 0 away from the jump; the jump itself is a panel edge of the quadrature.
        Func::Sign => b.konst(0.0),
        Func::Asin | Func::Acos => {
            let d = one_minus_square(b);
            let root = b.mk(Node::Func(Func::Sqrt, d));
            let inv = b.mk(Node::Div(one, root));
            if f == Func::Asin {
                inv
            } else {
                b.mk(Node::Neg(inv))
            }
        }
        Func::Atan => {
            let sq = b.mk(Node::Powi(a, 2));
            let d = b.mk(Node::Add(one, sq));
            b.mk(Node::Div(one, d))
        }
        Func::Sin => b.mk(Node::Func(Func::Cos, a)),
        Func::Cos => {
            let s = b.mk(Node::Func(Func::Sin, a));
            b.mk(Node::Neg(s))
        }
        Func::Tanh => {
            let sq = b.mk(Node::Powi(fa, 2));
            b.mk(Node::Sub(one, sq))
        }
        Func::Erf => {
            // 2/sqrt(pi) exp(-a^2)
            let sq = b.mk(Node::Powi(a, 2));
            let minus = b.mk(Node::Neg(sq));
            let e = b.mk(Node::Func(Func::Exp, minus));
            let c = b.konst(std::f64::consts::FRAC_2_SQRT_PI);
            b.mk(Node::Mul(c, e))
        }
    }
}
