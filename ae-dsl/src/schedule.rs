//! The order in which an unrolled program is evaluated, shared by every backend (the Rust
//! emitter and the run-time compiler): which nodes are mode-independent and computed once,
//! which mode sums share one loop over the modes, and which outputs are written per mode.
//!
//! A node's *level* is the number of nested mode sums below it: mode sums of level 1 read only
//! mode-independent values and the current mode, those of level 2 also the sums of level 1,
//! and so on. Each level gets one fused loop over the modes; the mode-independent nodes that a
//! level needs are computed just before its loop.

use crate::unroll::{JacIx, Node, NodeId, Program, Target};

/// One step of an evaluation, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Compute these mode-independent operation nodes, in order.
    Invariants(Vec<NodeId>),
    /// One loop over the modes: each sum starts at zero, the mode-dependent operation nodes
    /// `cone` are computed at the current mode, and each sum adds its body.
    ModeSums {
        sums: Vec<NodeId>,
        bodies: Vec<NodeId>,
        cone: Vec<NodeId>,
    },
    /// Store outputs that are not per mode (states without mode index, observables).
    Stores(Vec<(Target, NodeId)>),
    /// Jacobian entries that are not per mode, handed over at mode 0.
    JacobianInvariant(Vec<(JacIx, JacIx, NodeId)>),
    /// The loop over the modes that writes the per-mode outputs: `cone` at the current mode,
    /// then the stores and the Jacobian entries of that mode.
    ModeOutputs {
        cone: Vec<NodeId>,
        stores: Vec<(Target, NodeId)>,
        jacobian: Vec<(JacIx, JacIx, NodeId)>,
    },
}

/// How a program is evaluated: the steps, and where each operation node's value lives in a
/// scratch array (a Jacobian gradient node takes one slot per argument).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub steps: Vec<Step>,
    /// Scratch position of every operation node some output needs (`usize::MAX` otherwise).
    pub slots: Vec<usize>,
    pub n_slots: usize,
    /// The mode states the program reads or writes, in order (their blocks need a base offset).
    pub mode_states: Vec<usize>,
}

/// Whether a node is a leaf: read directly where it is used, never computed into a slot.
pub fn is_leaf(node: &Node) -> bool {
    matches!(
        node,
        Node::Const(_) | Node::Param(_) | Node::Y(_) | Node::Rho | Node::ModeY { .. } | Node::Part(..)
    )
}

/// Whether an output is written once per mode (inside the mode loop).
fn per_mode(target: &Target) -> bool {
    match target {
        Target::ModeY { .. } => true,
        Target::Jac { row, .. } => matches!(row, JacIx::Mode { .. } | JacIx::Sum(_)),
        Target::Y(_) | Target::Out(_) => false,
    }
}

/// Which nodes depend on the current mode, and each node's level of nested mode sums.
fn varying_and_levels(program: &Program) -> (Vec<bool>, Vec<usize>) {
    let n = program.nodes.len();
    let mut varying = vec![false; n];
    let mut level = vec![0usize; n];
    for (id, node) in program.nodes.iter().enumerate() {
        match node {
            Node::Rho | Node::ModeY { .. } => varying[id] = true,
            Node::ModeSum(b) => level[id] = level[*b] + 1,
            other => {
                for c in other.children() {
                    varying[id] |= varying[c];
                    level[id] = level[id].max(level[c]);
                }
            }
        }
    }
    (varying, level)
}

/// Scratch slots of the operation nodes some output needs, and their number.
fn slots(program: &Program, reach: &[bool]) -> (Vec<usize>, usize) {
    let mut slots = vec![usize::MAX; program.nodes.len()];
    let mut n_slots = 0usize;
    for (id, node) in program.nodes.iter().enumerate() {
        if reach[id] && !is_leaf(node) {
            slots[id] = n_slots;
            n_slots += match node {
                Node::AvgGrad(_, args) => args.len(),
                _ => 1,
            };
        }
    }
    (slots, n_slots)
}

/// The mode states a program reads (reachable nodes) or writes (outputs).
fn mode_states(program: &Program, reach: &[bool]) -> Vec<usize> {
    let read = program.nodes.iter().enumerate().filter_map(|(id, node)| match node {
        Node::ModeY { state, .. } if reach[id] => Some(*state),
        _ => None,
    });
    let written = program.outputs.iter().flat_map(|(t, _)| match t {
        Target::ModeY { state, .. } => vec![*state],
        Target::Jac { row, col } => [row, col]
            .iter()
            .filter_map(|ix| match ix {
                JacIx::Mode { state, .. } => Some(*state),
                _ => None,
            })
            .collect(),
        _ => vec![],
    });
    let mut states: Vec<usize> = read.chain(written).collect();
    states.sort_unstable();
    states.dedup();
    states
}

struct Scheduler<'p> {
    program: &'p Program,
    reach: Vec<bool>,
    varying: Vec<bool>,
    level: Vec<usize>,
    emitted: Vec<bool>,
}

impl Scheduler<'_> {
    /// The mode-independent operation nodes of level at most `upto` not computed yet.
    fn invariants(&mut self, upto: usize) -> Vec<NodeId> {
        let mut out = Vec::new();
        for id in 0..self.program.nodes.len() {
            let node = &self.program.nodes[id];
            if self.reach[id]
                && !self.emitted[id]
                && !self.varying[id]
                && self.level[id] <= upto
                && !is_leaf(node)
                && !matches!(node, Node::ModeSum(_))
            {
                out.push(id);
                self.emitted[id] = true;
            }
        }
        out
    }

    /// The mode-dependent operation nodes that `roots` need within one pass of a mode loop,
    /// in order.
    fn varying_cone(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let n = self.program.nodes.len();
        let mut need = vec![false; n];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if self.varying[id] && !need[id] {
                need[id] = true;
                stack.extend(self.program.nodes[id].children());
            }
        }
        (0..n)
            .filter(|i| need[*i] && !is_leaf(&self.program.nodes[*i]))
            .collect()
    }

    /// The mode sums of one level, their bodies, and the loop that computes them.
    fn mode_sums(&mut self, stage: usize) -> Option<Step> {
        let program = self.program;
        let sums: Vec<NodeId> = (0..program.nodes.len())
            .filter(|i| self.reach[*i] && self.level[*i] == stage && matches!(program.nodes[*i], Node::ModeSum(_)))
            .collect();
        if sums.is_empty() {
            return None;
        }
        let bodies: Vec<NodeId> = sums
            .iter()
            .map(|s| match program.nodes[*s] {
                Node::ModeSum(b) => b,
                _ => unreachable!("filtered to mode sums"),
            })
            .collect();
        let cone = self.varying_cone(&bodies);
        for s in &sums {
            self.emitted[*s] = true;
        }
        Some(Step::ModeSums { sums, bodies, cone })
    }

    /// The outputs: stores and Jacobian entries outside the mode loop, then the mode loop.
    fn outputs(&self, steps: &mut Vec<Step>) {
        let (mut stores, mut mode_stores) = (Vec::new(), Vec::new());
        let (mut jac_invariant, mut jac_mode) = (Vec::new(), Vec::new());
        for (target, id) in &self.program.outputs {
            match (target, per_mode(target)) {
                (Target::Jac { row, col }, true) => jac_mode.push((*row, *col, *id)),
                (Target::Jac { row, col }, false) => jac_invariant.push((*row, *col, *id)),
                (_, true) => mode_stores.push((*target, *id)),
                (_, false) => stores.push((*target, *id)),
            }
        }
        steps.push(Step::Stores(stores));
        if !jac_invariant.is_empty() {
            steps.push(Step::JacobianInvariant(jac_invariant));
        }
        if !mode_stores.is_empty() || !jac_mode.is_empty() {
            let roots: Vec<NodeId> = mode_stores
                .iter()
                .map(|(_, id)| *id)
                .chain(jac_mode.iter().map(|(_, _, id)| *id))
                .collect();
            steps.push(Step::ModeOutputs {
                cone: self.varying_cone(&roots),
                stores: mode_stores,
                jacobian: jac_mode,
            });
        }
    }
}

/// The schedule of an unrolled program.
pub fn schedule(program: &Program) -> Schedule {
    let reach = program.reachable();
    let (varying, level) = varying_and_levels(program);
    let (slots, n_slots) = slots(program, &reach);
    let mode_states = mode_states(program, &reach);
    let max_level = (0..program.nodes.len())
        .filter(|i| reach[*i] && matches!(program.nodes[*i], Node::ModeSum(_)))
        .map(|i| level[i])
        .max()
        .unwrap_or(0);
    let mut scheduler = Scheduler {
        program,
        emitted: vec![false; program.nodes.len()],
        reach,
        varying,
        level,
    };
    let mut steps = Vec::new();
    for stage in 1..=max_level {
        steps.push(Step::Invariants(scheduler.invariants(stage - 1)));
        steps.extend(scheduler.mode_sums(stage));
    }
    steps.push(Step::Invariants(scheduler.invariants(max_level)));
    scheduler.outputs(&mut steps);
    Schedule {
        steps,
        slots,
        n_slots,
        mode_states,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vanilla_k2() -> Program {
        let src = include_str!("../../equations/vanilla.ae");
        let model = crate::compile("vanilla.ae", src).unwrap();
        crate::unroll::unroll_rhs(&model, 2)
    }

    /// Every operation node some output needs is computed exactly once, and only after every
    /// operation node it reads.
    #[test]
    fn every_needed_node_is_computed_once_after_its_inputs() {
        let program = vanilla_k2();
        let schedule = schedule(&program);
        let reach = program.reachable();
        let mut done = vec![false; program.nodes.len()];
        let compute = |id: NodeId, done: &mut Vec<bool>| {
            assert!(!done[id], "node {id} computed twice");
            for c in program.nodes[id].children() {
                let leaf = is_leaf(&program.nodes[c]);
                assert!(leaf || done[c], "node {id} reads {c} before it is computed");
            }
            done[id] = true;
        };
        for step in &schedule.steps {
            match step {
                Step::Invariants(ids) => ids.iter().for_each(|id| compute(*id, &mut done)),
                Step::ModeSums { sums, cone, .. } => {
                    cone.iter().for_each(|id| compute(*id, &mut done));
                    sums.iter().for_each(|id| done[*id] = true);
                }
                Step::ModeOutputs { cone, .. } => cone.iter().for_each(|id| compute(*id, &mut done)),
                Step::Stores(_) | Step::JacobianInvariant(_) => {}
            }
        }
        for (id, node) in program.nodes.iter().enumerate() {
            if reach[id] && !is_leaf(node) {
                assert!(done[id], "node {id} ({node:?}) is never computed");
            }
        }
    }

    /// Vanilla's order parameters are mode sums of level 1 and its Gaussian averages read only
    /// them: one loop over the modes computes every sum, and no average runs per mode.
    #[test]
    fn vanilla_sums_share_one_loop_and_averages_stay_outside() {
        let program = vanilla_k2();
        let schedule = schedule(&program);
        let loops: Vec<&Step> = schedule
            .steps
            .iter()
            .filter(|s| matches!(s, Step::ModeSums { .. }))
            .collect();
        assert_eq!(loops.len(), 1);
        for step in &schedule.steps {
            let cone = match step {
                Step::ModeSums { cone, .. } | Step::ModeOutputs { cone, .. } => cone,
                _ => continue,
            };
            assert!(cone.iter().all(|id| !matches!(program.nodes[*id], Node::Avg(..))));
        }
        // omega and varpi are written per mode.
        assert_eq!(schedule.mode_states, vec![0, 1]);
    }
}
