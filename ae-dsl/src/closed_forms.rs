//! The Gaussian averages of erf(x/√2) and of the linear activation as expressions of their
//! covariance arguments (docs/theory.md section 5), for backends that inline them: the
//! expressions share subexpressions with the rest of the graph (`1 + Q_kk` and its square root
//! serve every average of unit k), and the symbolic Jacobian differentiates through them, where
//! a call to an average needs a call to its gradient.
//!
//! Each expression is built in the operation order of the runtime's closed forms
//! (`ae_core::averages`), so that both round alike.

use std::f64::consts::PI;

use crate::activation::ActivationKind;
use crate::ir::{Avg, Func};
use crate::unroll::{Builder, Node, NodeId};

/// sqrt(2 / pi), as the runtime's closed forms write it.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// The average `avg` of `activation` at arguments `c` as nodes, if it has an inlined form.
pub(crate) fn inline(b: &mut Builder, activation: ActivationKind, avg: Avg, c: &[NodeId]) -> Option<NodeId> {
    match activation {
        ActivationKind::Linear => Some(match avg {
            Avg::I2 | Avg::J2 | Avg::I21 => c[1],
            Avg::I22 => c[2],
            Avg::I3 => c[4],
        }),
        ActivationKind::Erf => Some(erf(b, avg, c)),
        ActivationKind::Relu | ActivationKind::Tanh => None,
    }
}

fn erf(b: &mut Builder, avg: Avg, c: &[NodeId]) -> NodeId {
    let one = b.konst(1.0);
    let two_over_pi = b.konst(2.0 / PI);
    let s = b.konst(SQRT_2_OVER_PI);
    let add1 = |b: &mut Builder, x: NodeId| b.mk(Node::Add(one, x));
    match avg {
        Avg::I2 => {
            // (2/pi) asin(C12 / sqrt((1 + C11)(1 + C22)))
            let (a, d) = (add1(b, c[0]), add1(b, c[2]));
            let ad = b.mk(Node::Mul(a, d));
            let root = b.mk(Node::Func(Func::Sqrt, ad));
            let u = b.mk(Node::Div(c[1], root));
            let angle = b.mk(Node::Func(Func::Asin, u));
            b.mk(Node::Mul(two_over_pi, angle))
        }
        Avg::J2 => {
            // sqrt(2/pi) C12 / sqrt(1 + C22)
            let d = add1(b, c[2]);
            let root = b.mk(Node::Func(Func::Sqrt, d));
            let num = b.mk(Node::Mul(s, c[1]));
            b.mk(Node::Div(num, root))
        }
        Avg::I21 | Avg::I22 => {
            // sqrt(2/pi) C12 / ((1 + C11) sqrt(1 + C11)), or the same of C22 (1 + C11) - C12^2
            let a = add1(b, c[0]);
            let root = b.mk(Node::Func(Func::Sqrt, a));
            let den = b.mk(Node::Mul(a, root));
            let top = if avg == Avg::I21 {
                c[1]
            } else {
                let ca = b.mk(Node::Mul(c[2], a));
                let sq = b.mk(Node::Mul(c[1], c[1]));
                b.mk(Node::Sub(ca, sq))
            };
            let num = b.mk(Node::Mul(s, top));
            b.mk(Node::Div(num, den))
        }
        Avg::I3 => {
            // (2/pi) (C23 a - C12 C13) / (a sqrt(a (1 + C33) - C13^2)), a = 1 + C11
            let a = add1(b, c[0]);
            let d = add1(b, c[5]);
            let ca = b.mk(Node::Mul(c[4], a));
            let cc = b.mk(Node::Mul(c[1], c[2]));
            let top = b.mk(Node::Sub(ca, cc));
            let num = b.mk(Node::Mul(two_over_pi, top));
            let ad = b.mk(Node::Mul(a, d));
            let sq = b.mk(Node::Mul(c[2], c[2]));
            let w = b.mk(Node::Sub(ad, sq));
            let root = b.mk(Node::Func(Func::Sqrt, w));
            let den = b.mk(Node::Mul(a, root));
            b.mk(Node::Div(num, den))
        }
    }
}
