//! The SGD side's observables: eg and the order parameters of the weights, through the
//! equations the data call for, and the reconstructed fraction of each tracked mode.

use ae_runtime::data::Weights;

use crate::error::RunError;
use crate::run::{ModelHandle, OdeJob};
use crate::source::DataSource;

/// Observables (eg and order parameters) of weights, through the equations the data call for
/// (see `DataSource::measure_equations`): exact functions of the weights' order parameters.
pub struct Measure {
    /// The measuring equations, compiled once (generated code where it exists: at K = 64,
    /// D = 1024 the interpreter needs about a second per measurement).
    handle: ModelHandle,
    source: DataSource,
    /// Modes whose reconstruction is tracked (the spikes, or the top K modes of real data).
    tracked: usize,
    pub(super) eg_column: usize,
}

impl Measure {
    pub fn new(job: &OdeJob) -> Result<Measure, RunError> {
        // The job's activation may be declared in its own file, not in the measuring one.
        let activation = job.resolved_activation()?;
        let handle = OdeJob {
            equations: job.source.measure_equations().to_string(),
            // Observables do not depend on the learning rule's parameters; the bulk's are
            // the source's (set by `load`).
            params: vec![],
            backend: None,
            ..job.clone()
        }
        .load_with(Some(activation))?;
        let eg_column = handle.require_eg("measuring SGD")?;
        Ok(Measure {
            tracked: job.source.tracked_modes(job.k),
            source: job.source.clone(),
            eg_column,
            handle,
        })
    }

    /// Whether the activation is positively homogeneous (docs/theory.md section 10).
    pub fn homogeneous(&self) -> bool {
        self.handle.activation().is_positively_homogeneous()
    }

    /// The observables and the reconstructed fraction of each tracked mode's variance.
    pub fn observe(&self, weights: &Weights, eig: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let inputs = self.source.order_parameters(weights, eig);
        let y = self.handle.state_of(&inputs);
        let mut out = vec![0.0; self.handle.observable_names.len()];
        self.handle.kernel.observe(&y, &mut out);
        let recon = ae_runtime::measure::top_mode_reconstruction(
            self.handle.activation(),
            &inputs,
            &self.handle.rho,
            self.tracked,
        );
        (out, recon)
    }

    pub fn observable_names(&self) -> &[String] {
        &self.handle.observable_names
    }
}
