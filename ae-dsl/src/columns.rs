//! The CSV columns of a file's run at a given K: every name once, or an error at the line that
//! declares the second.

use std::collections::HashMap;

use crate::error::{Error, Result, Span};
use crate::ir::{Expr, Ix, Model};
use crate::layout::Layout;
use crate::unroll::observable_names;

/// A column name safe for CSV: `Q[0,1]` becomes `Q_0_1`, `omega[1;2]` becomes `omega_1_2`,
/// `a[;2]` becomes `a_2`.
pub fn csv_name(name: &str) -> String {
    name.replace("[;", "_").replace(['[', ',', ';'], "_").replace(']', "")
}

/// The unrolled observables, and which state entries `--states` adds after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// Unrolled observable names (`eg`, `Q[0,1]`), in output order.
    pub observables: Vec<String>,
    /// Every state entry's name (`omega[1;0]`), in the state vector's order.
    pub states: Vec<String>,
    /// The state entries that get a column of their own: all but those an observable already
    /// writes unchanged (`observe T0[k,l] = T0[k,l]` shows the state `T0`).
    pub state_columns: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Owner {
    Reserved,
    Observable(usize),
    State(usize),
}

/// The columns of `model` at `k` hidden units and `m` modes. `reserved` are the names the
/// output gives its own columns (`t`). Two columns of one name are an error at the observable
/// or state that declares the second, whatever K.
pub fn columns(model: &Model, k: usize, m: usize, reserved: &[&str]) -> Result<Columns> {
    let mut owner: HashMap<String, Owner> = reserved.iter().map(|r| (r.to_string(), Owner::Reserved)).collect();
    let describe = |o: Owner| match o {
        Owner::Reserved => "the output's own column".to_string(),
        Owner::Observable(i) => {
            let obs = &model.observables[i];
            format!("observable `{}` (line {})", obs.name, obs.span.line)
        }
        Owner::State(s) => {
            let st = &model.states[s];
            format!("`--states`' column of state `{}` (line {})", st.name, st.span.line)
        }
    };
    let clash = |span: Span, what: String, column: &str, first: Owner| {
        Err(Error::new(
            &model.path,
            span,
            format!(
                "{what} writes the column `{column}`, as {} does: rename one of them",
                describe(first)
            ),
        ))
    };
    let unrolled = observable_names(model, k);
    let mut start = 0;
    for (i, o) in model.observables.iter().enumerate() {
        let count = crate::layout::tuples(k, o.hidden.len(), false).len();
        for name in &unrolled[start..start + count] {
            let column = csv_name(name);
            if let Some(first) = owner.get(&column) {
                return clash(o.span, format!("observable `{}`", o.name), &column, *first);
            }
            owner.insert(column, Owner::Observable(i));
        }
        start += count;
    }
    let layout = Layout::new(model, k, m);
    let states = layout.names(model);
    let state_of = state_of_entries(&layout);
    let mut state_columns = Vec::new();
    for (entry, name) in states.iter().enumerate() {
        let s = state_of[entry];
        let column = csv_name(name);
        match owner.get(&column) {
            None => {
                owner.insert(column, Owner::State(s));
                state_columns.push(entry);
            }
            Some(Owner::Observable(i)) if shows_state(model, *i, s) => {}
            Some(Owner::Observable(i)) => {
                let o = &model.observables[*i];
                let what = format!("observable `{}`", o.name);
                return clash(o.span, what, &column, Owner::State(s));
            }
            Some(first) => {
                let what = format!("`--states`' column of state `{}`", model.states[s].name);
                return clash(model.states[s].span, what, &column, *first);
            }
        }
    }
    Ok(Columns {
        observables: unrolled,
        states,
        state_columns,
    })
}

/// The state each entry of the state vector belongs to.
fn state_of_entries(layout: &Layout) -> Vec<usize> {
    let mut of = vec![0; layout.len];
    for (s, b) in layout.blocks.iter().enumerate() {
        let len = if b.mode { b.entries * layout.m } else { b.entries };
        of[b.offset..b.offset + len].fill(s);
    }
    of
}

/// Whether observable `i` is state `s` itself under the state's name (`observe T0[k,l] =
/// T0[k,l]`), so that its columns already hold the state's entries.
fn shows_state(model: &Model, i: usize, s: usize) -> bool {
    let (o, state) = (&model.observables[i], &model.states[s]);
    let itself = Expr::State {
        id: s,
        hidden: o.hidden.iter().map(|v| Ix::Var(*v)).collect(),
        mode: None,
    };
    o.name == state.name && !state.mode && o.hidden.len() == state.hidden && o.body == itself
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "hidden k, l\nparam lr = 1\nstate T0[k, l] symmetric init T00[k, l]\nd/dt T0[k, l] = -lr * T0[k, l]\n";

    fn model(observe: &str) -> Model {
        crate::compile("f.ae", &format!("{HEAD}{observe}")).unwrap()
    }

    #[test]
    fn a_state_observed_as_itself_is_written_once() {
        let c = columns(&model("observe T0[k, l] = T0[k, l]\n"), 2, 0, &["t"]).unwrap();
        assert_eq!(c.observables, ["T0[0,0]", "T0[0,1]", "T0[1,0]", "T0[1,1]"]);
        assert_eq!(c.states, ["T0[0,0]", "T0[0,1]", "T0[1,1]"]);
        assert!(c.state_columns.is_empty());
    }

    #[test]
    fn other_observables_leave_the_state_columns() {
        let c = columns(&model("observe eg = T0[0, 0]\n"), 2, 0, &["t"]).unwrap();
        assert_eq!(c.state_columns, [0, 1, 2]);
    }

    #[test]
    fn clashes_are_errors_at_the_second_declaration() {
        let cases = [
            (
                "observe t = 1\n",
                5,
                "observable `t` writes the column `t`, as the output's own column does",
            ),
            (
                "observe T0[k, l] = 2 * T0[k, l]\n",
                5,
                "observable `T0` writes the column `T0_0_0`, as `--states`' column of state `T0` (line 3) does",
            ),
            (
                "observe Q[k, l] = T0[k, l]\nobserve Q_0[k] = T0[k, k]\n",
                6,
                "observable `Q_0` writes the column `Q_0_0`, as observable `Q` (line 5) does",
            ),
            (
                "observe T0_0[k] = T0[k, k]\n",
                5,
                "observable `T0_0` writes the column `T0_0_0`, as `--states`' column of state `T0` (line 3) does",
            ),
            (
                "state t init 0\nd/dt t = 1\n",
                5,
                "`--states`' column of state `t` writes the column `t`, as the output's own column does",
            ),
        ];
        for (observe, line, message) in cases {
            let e = columns(&model(observe), 2, 0, &["t"]).unwrap_err();
            assert_eq!(
                (e.span.line, e.message.as_str()),
                (line, format!("{message}: rename one of them").as_str()),
                "{observe}"
            );
        }
    }
}
