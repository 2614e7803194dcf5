//! A user's activation (`activation g(x) = ...`) as a program of its argument `y[0]` with its
//! derivatives g', g'' and g''' as outputs, by symbolic differentiation of the same graph, for
//! the backends to compile: the simulator evaluates g and g', the quadrature of the Gaussian
//! averages and their gradients (Price's theorem) all four.

use crate::ir::{ActivationDef, Model, Scalar};
use crate::unroll::{Node, NodeId, Program, Target};

/// The program whose outputs `Out(0..=order)` are g and its first `order` derivatives at
/// x = `y[0]` (order at most 3).
pub fn derivatives_program(def: &ActivationDef, order: usize) -> Program {
    let model = empty_model();
    let mut b = crate::unroll::builder(&model, 1, None);
    let x = b.intern(Node::Y(0));
    let mut d = build(&mut b, &def.body, x);
    let mut outputs = vec![(Target::Out(0), d)];
    for i in 1..=order.min(3) {
        d = crate::jacobian::derivative(&mut b, d);
        outputs.push((Target::Out(i), d));
    }
    Program {
        nodes: b.nodes,
        outputs,
    }
}

/// A model with nothing in it: the builder's context for an expression of `y[0]` alone.
fn empty_model() -> Model {
    Model {
        name: String::new(),
        path: String::new(),
        vars: vec![],
        params: vec![],
        states: vec![],
        lets: vec![],
        observables: vec![],
        activations: vec![],
        sgd: None,
        ratio_rewrites: 0,
    }
}

fn build(b: &mut crate::unroll::Builder, s: &Scalar, x: NodeId) -> NodeId {
    match s {
        Scalar::Num(v) => b.konst(*v),
        Scalar::Arg => x,
        Scalar::Func(f, a) => {
            let a = build(b, a, x);
            b.mk(Node::Func(*f, a))
        }
        Scalar::Neg(a) => {
            let a = build(b, a, x);
            b.mk(Node::Neg(a))
        }
        Scalar::Powi(a, n) => {
            let a = build(b, a, x);
            b.mk(Node::Powi(a, *n))
        }
        Scalar::Add(l, r) | Scalar::Sub(l, r) | Scalar::Mul(l, r) | Scalar::Div(l, r) => {
            let (l, r) = (build(b, l, x), build(b, r, x));
            b.mk(match s {
                Scalar::Add(..) => Node::Add(l, r),
                Scalar::Sub(..) => Node::Sub(l, r),
                Scalar::Mul(..) => Node::Mul(l, r),
                _ => Node::Div(l, r),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(program: &Program, x: f64) -> Vec<f64> {
        let mut values = vec![0.0; program.nodes.len()];
        for (i, node) in program.nodes.iter().enumerate() {
            values[i] = match node {
                Node::Const(bits) => f64::from_bits(*bits),
                Node::Y(0) => x,
                Node::Neg(a) => -values[*a],
                Node::Add(a, b) => values[*a] + values[*b],
                Node::Sub(a, b) => values[*a] - values[*b],
                Node::Mul(a, b) => values[*a] * values[*b],
                Node::Div(a, b) => values[*a] / values[*b],
                Node::Powi(a, n) => values[*a].powi(*n),
                Node::Func(f, a) => f.apply(values[*a]),
                other => panic!("{other:?} in an activation"),
            };
        }
        program.outputs.iter().map(|(_, n)| values[*n]).collect()
    }

    /// Softplus log(1 + e^x): g' is the logistic function s, g'' = s (1 - s),
    /// g''' = s (1 - s)(1 - 2 s); erf(x / sqrt 2) differentiates to sqrt(2/pi) e^{-x^2/2}.
    #[test]
    fn derivatives_are_exact() {
        let model = crate::compile(
            "t.ae",
            "activation softplus(x) = log(1 + exp(x))\nactivation e(x) = erf(x / sqrt(2))\nhidden k\nstate w[k] init 0\nd/dt w[k] = 0\n",
        )
        .unwrap();
        let softplus = derivatives_program(model.activation("softplus").unwrap(), 3);
        let e = derivatives_program(model.activation("e").unwrap(), 1);
        for x in [-3.0f64, -0.5, 0.0, 0.7, 2.5] {
            let s = 1.0 / (1.0 + (-x).exp());
            let want = [(1.0 + x.exp()).ln(), s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s)];
            for (got, want) in evaluate(&softplus, x).iter().zip(want) {
                assert!((got - want).abs() < 1e-13, "softplus at {x}: {got} vs {want}");
            }
            let de = evaluate(&e, x)[1];
            let want = (2.0 / std::f64::consts::PI).sqrt() * (-x * x / 2.0).exp();
            assert!((de - want).abs() < 1e-15, "erf' at {x}: {de} vs {want}");
        }
    }
}
