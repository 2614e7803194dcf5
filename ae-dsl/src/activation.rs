//! The activations equations are generated and interpreted for: one typed list that the
//! macro, the runtime, the kernels' dispatcher and the command line share.

/// An activation g. Its averages live in `ae_core::averages` under [`ActivationKind::type_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ActivationKind {
    /// erf(x / sqrt 2) (closed forms).
    Erf,
    /// g(x) = x (closed forms).
    Linear,
    /// max(0, x) (closed forms).
    Relu,
    /// tanh(x) (graded Gauss-Legendre quadrature, converged to 1e-10).
    Tanh,
}

impl ActivationKind {
    pub const ALL: [ActivationKind; 4] = [
        ActivationKind::Erf,
        ActivationKind::Linear,
        ActivationKind::Relu,
        ActivationKind::Tanh,
    ];

    /// The name in equation lists, on the command line and in generated type names' tails.
    pub fn name(self) -> &'static str {
        match self {
            ActivationKind::Erf => "erf",
            ActivationKind::Linear => "linear",
            ActivationKind::Relu => "relu",
            ActivationKind::Tanh => "tanh",
        }
    }

    pub fn parse(s: &str) -> Option<ActivationKind> {
        ActivationKind::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The variant's name, which is also the name of the runtime type with its averages
    /// (`ae_core::averages::Erf`).
    pub fn type_name(self) -> &'static str {
        match self {
            ActivationKind::Erf => "Erf",
            ActivationKind::Linear => "Linear",
            ActivationKind::Relu => "Relu",
            ActivationKind::Tanh => "Tanh",
        }
    }

    /// Whether the averages are closed forms (a few nanoseconds each), rather than series or
    /// quadrature (microseconds).
    pub fn has_closed_forms(self) -> bool {
        !matches!(self, ActivationKind::Tanh)
    }

    /// Whether the averages' gradients are exact (closed forms, or quadrature converged to
    /// ~1e-10, as tanh's is at covariance entries up to 100): only then does a generated kernel
    /// get a symbolic Jacobian, which a stiff method takes for exact. An activation added with
    /// a rougher rule (the Gauss-Hermite rules tanh had resolved g'' and g''' only to ~1e-2 at
    /// entries of 5) must answer false and keep finite differences.
    pub fn has_exact_gradients(self) -> bool {
        match self {
            ActivationKind::Erf | ActivationKind::Linear | ActivationKind::Relu | ActivationKind::Tanh => true,
        }
    }
}

impl std::fmt::Display for ActivationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ActivationKind;

    #[test]
    fn names_parse_back_and_type_names_are_camel_case() {
        for a in ActivationKind::ALL {
            assert_eq!(ActivationKind::parse(a.name()), Some(a));
            assert_eq!(a.type_name(), crate::emit::camel(a.name()));
        }
        assert_eq!(ActivationKind::parse("sigmoid"), None);
    }
}
