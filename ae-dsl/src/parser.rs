//! Recursive-descent parser from tokens to the syntax tree.

use crate::ast::*;
use crate::error::{Error, Result, Span};
use crate::lexer::{lex, Tok, Token};

/// Nesting limit of expressions: deeper input is rejected instead of overflowing the stack.
const MAX_DEPTH: usize = 200;
/// The most operands one chain of `+ -` or `* /` may have. A chain is a nested tree that later
/// passes walk recursively; the command line runs them on a 1 GiB stack, on which a chain of
/// this length went through the whole `ode` path (interpreted, K = 1) with 95 MB resident.
pub const MAX_CHAIN: usize = 50_000;

/// The words that start a statement (besides `d/dt`).
pub const KEYWORDS: [&str; 8] = [
    "equations",
    "hidden",
    "modes",
    "param",
    "state",
    "let",
    "def",
    "observe",
];

pub fn parse(path: &str, src: &str) -> Result<File> {
    let tokens = lex(path, src)?;
    let mut p = Parser {
        path,
        tokens,
        pos: 0,
        depth: 0,
    };
    let mut stmts = Vec::new();
    while !p.at_eof() {
        stmts.push(p.stmt()?);
    }
    Ok(File {
        path: path.to_string(),
        stmts,
    })
}

struct Parser<'a> {
    path: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }
    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].tok
    }
    fn at_eof(&self) -> bool {
        self.peek().tok == Tok::Eof
    }
    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }
    fn err<T>(&self, span: Span, msg: impl Into<String>) -> Result<T> {
        Err(Error::new(self.path, span, msg))
    }
    fn describe(tok: &Tok) -> String {
        match tok {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Num(n) => format!("number `{n}`"),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "end of file".to_string(),
        }
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(&self.peek().tok, Tok::Punct(q) if *q == p)
    }
    fn is_ident(&self, word: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s == word)
    }
    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect_punct(&mut self, p: &str, context: &str) -> Result<Span> {
        if self.is_punct(p) {
            Ok(self.bump().span)
        } else {
            let t = self.peek();
            self.err(
                t.span,
                format!("expected `{p}` {context}, found {}", Self::describe(&t.tok)),
            )
        }
    }
    fn ident(&mut self, what: &str) -> Result<Name> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Ident(s) => {
                self.bump();
                Ok(Name { text: s, span: t.span })
            }
            other => self.err(t.span, format!("expected {what}, found {}", Self::describe(&other))),
        }
    }
    fn name_list(&mut self, what: &str) -> Result<Vec<Name>> {
        let mut names = vec![self.ident(what)?];
        while self.eat_punct(",") {
            names.push(self.ident(what)?);
        }
        Ok(names)
    }

    fn stmt(&mut self) -> Result<Stmt> {
        let t = self.peek().clone();
        let Tok::Ident(word) = &t.tok else {
            return self.err(
                t.span,
                format!(
                    "expected a statement (`equations`, `sgd`, `hidden`, `modes`, `param`, `state`, `let`, `def`, `d/dt`, `observe`, `activation`), found {}",
                    Self::describe(&t.tok)
                ),
            );
        };
        if word == "d" && self.peek_at(1) == &Tok::Punct("/") {
            return self.ddt();
        }
        let word = word.clone();
        match word.as_str() {
            "equations" => {
                self.bump();
                Ok(Stmt::Equations(self.ident("the name of the equations")?))
            }
            "sgd" => {
                self.bump();
                Ok(Stmt::Sgd(self.ident("the SGD rule the equations describe (vanilla, truncated or sanger)")?))
            }
            "hidden" => {
                self.bump();
                Ok(Stmt::Hidden(self.name_list("a hidden-unit index name")?))
            }
            "modes" => {
                self.bump();
                Ok(Stmt::Modes(self.name_list("a mode index name")?))
            }
            "param" => self.param(),
            "state" => self.state(),
            "let" | "observe" => {
                self.bump();
                let name = self.ident("a name")?;
                let sig = self.opt_signature()?;
                self.expect_punct("=", &format!("after `{word} {}`", name.text))?;
                let body = self.expr()?;
                Ok(if word == "let" {
                    Stmt::Let { name, sig, body }
                } else {
                    Stmt::Observe { name, sig, body }
                })
            }
            "def" => self.def(),
            "activation" => self.activation(),
            _ => self.err(
                t.span,
                format!(
                    "unknown statement `{word}`: expected `equations`, `sgd`, `hidden`, `modes`, `param`, `state`, `let`, `def`, `d/dt`, `observe` or `activation`"
                ),
            ),
        }
    }

    /// `d/dt name[...] = expr`.
    fn ddt(&mut self) -> Result<Stmt> {
        self.bump();
        self.bump();
        let dt = self.ident("`dt` after `d/`")?;
        if dt.text != "dt" {
            return self.err(dt.span, format!("expected `dt` after `d/`, found `{}`", dt.text));
        }
        let name = self.ident("the name of a state after `d/dt`")?;
        let sig = self.opt_signature()?;
        self.expect_punct("=", "after the left-hand side of a `d/dt` equation")?;
        let body = self.expr()?;
        Ok(Stmt::Ddt { name, sig, body })
    }

    /// `param name` or `param name = number`.
    fn param(&mut self) -> Result<Stmt> {
        self.bump();
        let name = self.ident("a parameter name")?;
        let default = if self.eat_punct("=") {
            let neg = self.eat_punct("-");
            let t = self.bump();
            match t.tok {
                Tok::Num(v) => Some(if neg { -v } else { v }),
                other => {
                    return self.err(
                        t.span,
                        format!(
                            "expected a number as the default of parameter `{}`, found {}",
                            name.text,
                            Self::describe(&other)
                        ),
                    )
                }
            }
        } else {
            None
        };
        Ok(Stmt::Param { name, default })
    }

    /// `state name[...] [symmetric] init expr`.
    fn state(&mut self) -> Result<Stmt> {
        self.bump();
        let name = self.ident("a state name")?;
        let sig = self.opt_signature()?;
        let symmetric = self.is_ident("symmetric");
        if symmetric {
            self.bump();
        }
        if !self.is_ident("init") {
            let t = self.peek();
            return self.err(
                t.span,
                format!(
                    "expected `init <expression>` (the initial value) for state `{}`, found {}",
                    name.text,
                    Self::describe(&t.tok)
                ),
            );
        }
        self.bump();
        let init = self.expr()?;
        Ok(Stmt::State {
            name,
            sig,
            symmetric,
            init,
        })
    }

    /// `activation name(x) = expr`.
    fn activation(&mut self) -> Result<Stmt> {
        self.bump();
        let name = self.ident("the name of an activation")?;
        self.expect_punct("(", "after the name of an activation")?;
        let params = if self.is_punct(")") {
            Vec::new()
        } else {
            self.name_list("the argument of an activation")?
        };
        self.expect_punct(")", "to close the argument list")?;
        self.expect_punct("=", "after the argument of an activation")?;
        let body = self.expr()?;
        Ok(Stmt::Activation { name, params, body })
    }

    /// `def name(indices; functions) = expr`.
    fn def(&mut self) -> Result<Stmt> {
        self.bump();
        let name = self.ident("the name of a definition")?;
        self.expect_punct("(", "after the name of a definition")?;
        let mut index_params = Vec::new();
        let mut fn_params = Vec::new();
        if !self.is_punct(";") && !self.is_punct(")") {
            index_params = self.name_list("an index parameter")?;
        }
        if self.eat_punct(";") {
            fn_params = self.name_list("a function parameter")?;
        }
        self.expect_punct(")", "to close the parameter list")?;
        self.expect_punct("=", "after the parameter list of a definition")?;
        let body = self.expr()?;
        Ok(Stmt::Def {
            name,
            index_params,
            fn_params,
            body,
        })
    }

    fn opt_signature(&mut self) -> Result<Signature> {
        if self.is_punct("[") {
            self.bump();
            self.signature_body()
        } else {
            Ok(Signature::default())
        }
    }

    /// Parses the inside of `[...]` after the opening bracket.
    fn signature_body(&mut self) -> Result<Signature> {
        let mut sig = Signature::default();
        if !self.is_punct(";") {
            sig.hidden.push(self.idx()?);
            while self.eat_punct(",") {
                sig.hidden.push(self.idx()?);
            }
        }
        if self.eat_punct(";") {
            sig.mode = Some(self.idx()?);
        }
        self.expect_punct("]", "to close the index list")?;
        Ok(sig)
    }

    fn idx(&mut self) -> Result<Idx> {
        let t = self.bump();
        let arg = match &t.tok {
            Tok::Ident(s) if s == "_" => IdxArg::Hole,
            Tok::Ident(s) => IdxArg::Var(s.clone()),
            Tok::Num(v) if v.fract() == 0.0 && *v >= 0.0 && *v < 1e6 => IdxArg::Int(*v as usize),
            other => {
                return self.err(
                    t.span,
                    format!(
                        "expected an index (a name or a whole number), found {}",
                        Self::describe(other)
                    ),
                )
            }
        };
        Ok(Idx { arg, span: t.span })
    }

    fn chain_too_long(ops: &str) -> String {
        format!(
            "more than {MAX_CHAIN} operands joined by {ops} in one expression: split it into named quantities (`let`)"
        )
    }

    fn enter(&mut self, span: Span) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(span, format!("expression nested more than {MAX_DEPTH} levels deep"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr> {
        let span = self.peek().span;
        self.enter(span)?;
        let mut lhs = self.term()?;
        let mut operands = 1;
        loop {
            let op = if self.is_punct("+") {
                BinOp::Add
            } else if self.is_punct("-") {
                BinOp::Sub
            } else {
                break;
            };
            let op_span = self.bump().span;
            operands += 1;
            if operands > MAX_CHAIN {
                return self.err(op_span, Self::chain_too_long("+ and -"));
            }
            let rhs = self.term()?;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span: op_span,
            };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr> {
        let mut lhs = self.unary()?;
        let mut operands = 1;
        loop {
            let op = if self.is_punct("*") {
                BinOp::Mul
            } else if self.is_punct("/") {
                BinOp::Div
            } else {
                break;
            };
            let op_span = self.bump().span;
            operands += 1;
            if operands > MAX_CHAIN {
                return self.err(op_span, Self::chain_too_long("* and /"));
            }
            let rhs = self.unary()?;
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span: op_span,
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.is_punct("-") {
            let span = self.bump().span;
            self.enter(span)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(inner)),
                span,
            });
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr> {
        let base = self.primary()?;
        if self.is_punct("^") {
            let span = self.bump().span;
            let neg = self.eat_punct("-");
            let t = self.bump();
            let exponent = match t.tok {
                Tok::Num(v) if v.fract() == 0.0 && v.abs() <= 64.0 => v as i32,
                other => {
                    return self.err(
                        t.span,
                        format!(
                            "expected a whole-number exponent between -64 and 64 after `^`, found {}",
                            Self::describe(&other)
                        ),
                    )
                }
            };
            return Ok(Expr {
                kind: ExprKind::Pow(Box::new(base), if neg { -exponent } else { exponent }),
                span,
            });
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr> {
        let t = self.bump();
        match t.tok {
            Tok::Num(v) => Ok(Expr {
                kind: ExprKind::Num(v),
                span: t.span,
            }),
            Tok::Punct("(") => {
                let inner = self.expr()?;
                self.expect_punct(")", "to close the parenthesis")?;
                Ok(inner)
            }
            Tok::Ident(name) => {
                if self.is_punct("[") {
                    self.bump();
                    let sig = self.signature_body()?;
                    return Ok(Expr {
                        kind: ExprKind::Indexed(name, sig),
                        span: t.span,
                    });
                }
                if !self.is_punct("(") {
                    return Ok(Expr {
                        kind: ExprKind::Name(name),
                        span: t.span,
                    });
                }
                self.bump();
                self.enter(t.span)?;
                let e = match name.as_str() {
                    "sum" => self.sum_body(t.span)?,
                    "sym" => {
                        let first = self.idx()?;
                        self.expect_punct(",", "after the first index of `sym`")?;
                        let second = self.idx()?;
                        self.expect_punct(",", "after the second index of `sym`")?;
                        let body = self.expr()?;
                        self.expect_punct(")", "to close `sym(`")?;
                        Expr {
                            kind: ExprKind::Sym {
                                first,
                                second,
                                body: Box::new(body),
                            },
                            span: t.span,
                        }
                    }
                    _ => self.call_body(name, t.span)?,
                };
                self.depth -= 1;
                Ok(e)
            }
            other => self.err(
                t.span,
                format!("expected an expression, found {}", Self::describe(&other)),
            ),
        }
    }

    /// `sum(a, body)`, `sum(a != k, body)`, `sum(a <= k, body)`: after `sum(`.
    fn sum_body(&mut self, span: Span) -> Result<Expr> {
        let var = self.idx()?;
        let constraint = match &self.peek().tok {
            Tok::Punct(p @ ("!=" | "<=" | "<" | ">=" | ">")) => {
                let op = match *p {
                    "!=" => CmpOp::Ne,
                    "<=" => CmpOp::Le,
                    "<" => CmpOp::Lt,
                    ">=" => CmpOp::Ge,
                    _ => CmpOp::Gt,
                };
                self.bump();
                Some((op, self.idx()?))
            }
            _ => None,
        };
        self.expect_punct(
            ",",
            "after the index of `sum` (write `sum(a, body)` or `sum(a != k, body)`)",
        )?;
        let body = self.expr()?;
        self.expect_punct(")", "to close `sum(`")?;
        Ok(Expr {
            kind: ExprKind::Sum {
                var,
                constraint,
                body: Box::new(body),
            },
            span,
        })
    }

    /// `f(e1, e2)` or `f(k, l; e1, e2)`: after `f(`.
    fn call_body(&mut self, name: String, span: Span) -> Result<Expr> {
        let mut index_args = Vec::new();
        let mut args = Vec::new();
        // A `;` in the argument list splits index arguments from expression arguments.
        let has_semicolon = {
            let mut depth = 0i32;
            let mut found = false;
            for t in &self.tokens[self.pos..] {
                match t.tok {
                    Tok::Punct("(") | Tok::Punct("[") => depth += 1,
                    Tok::Punct(")") | Tok::Punct("]") if depth == 0 => break,
                    Tok::Punct(")") | Tok::Punct("]") => depth -= 1,
                    Tok::Punct(";") if depth == 0 => {
                        found = true;
                        break;
                    }
                    Tok::Eof => break,
                    _ => {}
                }
            }
            found
        };
        if has_semicolon {
            if !self.is_punct(";") {
                index_args.push(self.idx()?);
                while self.eat_punct(",") {
                    index_args.push(self.idx()?);
                }
            }
            self.expect_punct(";", "after the index arguments")?;
        }
        if !self.is_punct(")") {
            args.push(self.expr()?);
            while self.eat_punct(",") {
                args.push(self.expr()?);
            }
        }
        self.expect_punct(")", &format!("to close the call of `{name}`"))?;
        Ok(Expr {
            kind: ExprKind::Call { name, index_args, args },
            span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{BinOp, ExprKind, IdxArg};

    fn body_of(src: &str) -> ExprKind {
        let file = parse("t.ae", src).unwrap();
        match &file.stmts[0] {
            Stmt::Let { body, .. } => body.kind.clone(),
            other => panic!("expected a let, found {other:?}"),
        }
    }

    /// Every statement kind comes out as its own node, in the file's order, with its names.
    #[test]
    fn statements_in_order_with_their_names() {
        let file = parse(
            "t.ae",
            "equations e\nhidden k, l\nmodes tau\nparam lr = -2\nstate x[k; tau] symmetric init 0\nlet q[k] = 1\ndef f(k; w) = w[k]\nd/dt x[k; tau] = 0\nobserve o = 1\n",
        )
        .unwrap();
        let kinds: Vec<&str> = file
            .stmts
            .iter()
            .map(|s| match s {
                Stmt::Equations(_) => "equations",
                Stmt::Sgd(_) => "sgd",
                Stmt::Hidden(_) => "hidden",
                Stmt::Modes(_) => "modes",
                Stmt::Param { .. } => "param",
                Stmt::State { .. } => "state",
                Stmt::Let { .. } => "let",
                Stmt::Def { .. } => "def",
                Stmt::Ddt { .. } => "d/dt",
                Stmt::Observe { .. } => "observe",
                Stmt::Activation { .. } => "activation",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "equations",
                "hidden",
                "modes",
                "param",
                "state",
                "let",
                "def",
                "d/dt",
                "observe"
            ]
        );
        match &file.stmts[1] {
            Stmt::Hidden(names) => assert_eq!(names.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(), ["k", "l"]),
            _ => unreachable!(),
        }
        assert!(matches!(&file.stmts[3], Stmt::Param { default: Some(v), .. } if *v == -2.0));
        match &file.stmts[4] {
            Stmt::State { sig, symmetric, .. } => {
                assert!(*symmetric);
                assert_eq!(sig.hidden[0].arg, IdxArg::Var("k".into()));
                assert_eq!(
                    sig.mode.as_ref().map(|m| m.arg.clone()),
                    Some(IdxArg::Var("tau".into()))
                );
            }
            _ => unreachable!(),
        }
        match &file.stmts[6] {
            Stmt::Def {
                index_params,
                fn_params,
                ..
            } => assert_eq!((index_params.len(), fn_params.len()), (1, 1)),
            _ => unreachable!(),
        }
    }

    /// `*` binds tighter than `+`, `^` tighter than `*`, and a unary minus applies to the
    /// power (so `-x^2` is `-(x^2)`).
    #[test]
    fn precedence_of_operators() {
        let ExprKind::Binary(BinOp::Add, left, right) = body_of("let q = a + b * c ^ 2\n") else {
            panic!("expected a sum at the top");
        };
        assert!(matches!(left.kind, ExprKind::Name(ref n) if n == "a"));
        let ExprKind::Binary(BinOp::Mul, _, power) = &right.kind else {
            panic!("expected b * c^2 on the right");
        };
        assert!(matches!(power.kind, ExprKind::Pow(_, 2)));
        let ExprKind::Neg(inner) = body_of("let q = -x^2\n") else {
            panic!("expected a negation");
        };
        assert!(matches!(inner.kind, ExprKind::Pow(_, 2)));
    }

    /// Sums carry their index and constraint; calls their index and function arguments.
    #[test]
    fn sums_and_calls_keep_their_parts() {
        let ExprKind::Sum { var, constraint, .. } = body_of("let q[k] = sum(a != k, x[a])\n") else {
            panic!("expected a sum");
        };
        assert_eq!(var.arg, IdxArg::Var("a".into()));
        let (op, other) = constraint.expect("a constraint");
        assert_eq!((op, other.arg), (CmpOp::Ne, IdxArg::Var("k".into())));
        let ExprKind::Call { name, index_args, args } = body_of("let q[k] = f(k; x[_], y)\n") else {
            panic!("expected a call");
        };
        assert_eq!((name.as_str(), index_args.len(), args.len()), ("f", 1, 2));
    }

    /// A syntax error points at the token where the file stops making sense.
    #[test]
    fn errors_point_at_the_offending_token() {
        let err = parse("t.ae", "hidden k\nstate x[k] init 0\nd/dt x[k] 0\n").unwrap_err();
        assert_eq!((err.span.line, err.span.col), (3, 11), "{err}");
        assert!(
            err.to_string()
                .contains("after the left-hand side of a `d/dt` equation"),
            "{err}"
        );
    }
}
