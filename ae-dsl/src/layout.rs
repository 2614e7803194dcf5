//! Where each state entry lives in the flat state vector, shared by the emitter, the interpreter
//! and the runtime: states without a mode index first, then one block per mode state.

use crate::ir::Model;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub offset: usize,
    /// Entries per mode (or in all, for a state without a mode index).
    pub entries: usize,
    pub hidden: usize,
    pub mode: bool,
    pub symmetric: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub k: usize,
    pub m: usize,
    /// Length of the part without mode index.
    pub n_scalar: usize,
    pub blocks: Vec<Block>,
    pub len: usize,
}

/// Number of stored entries of a state with `hidden` hidden-unit indices.
pub fn entries(k: usize, hidden: usize, symmetric: bool) -> usize {
    match (hidden, symmetric) {
        (0, _) => 1,
        (1, _) => k,
        (_, true) => k * (k + 1) / 2,
        _ => k * k,
    }
}

/// Position of `hidden` within a state's entries (symmetric states store `k <= l` once).
pub fn entry(k: usize, hidden: &[usize], symmetric: bool) -> usize {
    match hidden {
        [] => 0,
        [i] => *i,
        [i, j] if symmetric => {
            let (a, b) = if i <= j { (*i, *j) } else { (*j, *i) };
            a * k - a * a.saturating_sub(1) / 2 + (b - a)
        }
        [i, j] => i * k + j,
        _ => unreachable!("at most two hidden-unit indices (checked by the resolver)"),
    }
}

/// The index tuples of a state's stored entries, in storage order.
pub fn tuples(k: usize, hidden: usize, symmetric: bool) -> Vec<Vec<usize>> {
    match hidden {
        0 => vec![vec![]],
        1 => (0..k).map(|i| vec![i]).collect(),
        _ => {
            let mut out = Vec::new();
            for i in 0..k {
                for j in 0..k {
                    if !symmetric || i <= j {
                        out.push(vec![i, j]);
                    }
                }
            }
            out
        }
    }
}

impl Layout {
    pub fn new(model: &Model, k: usize, m: usize) -> Layout {
        let mut blocks: Vec<Block> = model
            .states
            .iter()
            .map(|s| Block {
                offset: 0,
                entries: entries(k, s.hidden, s.symmetric),
                hidden: s.hidden,
                mode: s.mode,
                symmetric: s.symmetric,
            })
            .collect();
        let mut offset = 0;
        for b in blocks.iter_mut().filter(|b| !b.mode) {
            b.offset = offset;
            offset += b.entries;
        }
        let n_scalar = offset;
        for b in blocks.iter_mut().filter(|b| b.mode) {
            b.offset = offset;
            offset += b.entries * m;
        }
        Layout {
            k,
            m,
            n_scalar,
            blocks,
            len: offset,
        }
    }

    /// Entries per mode of the mode states stored before `state`: a mode state's block starts
    /// at `n_scalar + mode_entries_before(state) * m` for any number of modes m.
    pub fn mode_entries_before(&self, state: usize) -> usize {
        self.blocks[..state].iter().filter(|b| b.mode).map(|b| b.entries).sum()
    }

    pub fn index(&self, state: usize, hidden: &[usize], tau: Option<usize>) -> usize {
        let b = &self.blocks[state];
        b.offset + tau.unwrap_or(0) * b.entries + entry(self.k, hidden, b.symmetric)
    }

    /// Human-readable name of every entry, e.g. `omega[1;0]`, `T0[0,2]`.
    pub fn names(&self, model: &Model) -> Vec<String> {
        let mut names = vec![String::new(); self.len];
        for (s, (state, b)) in model.states.iter().zip(&self.blocks).enumerate() {
            let modes: Vec<Option<usize>> = if b.mode {
                (0..self.m).map(Some).collect()
            } else {
                vec![None]
            };
            for tau in modes {
                for t in tuples(self.k, b.hidden, b.symmetric) {
                    let idx: Vec<String> = t.iter().map(|i| i.to_string()).collect();
                    let name = match tau {
                        Some(tau) => format!("{}[{};{tau}]", state.name, idx.join(",")),
                        None if t.is_empty() => state.name.clone(),
                        None => format!("{}[{}]", state.name, idx.join(",")),
                    };
                    names[self.index(s, &t, tau)] = name;
                }
            }
        }
        names
    }
}
