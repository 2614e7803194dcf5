//! Enums whose values each have one name (a subcommand, a plot kind): read from experiment
//! files by that name, with a message that lists the names when one is unknown.

/// A closed set of values, each with one name.
pub trait Named: Copy + 'static {
    /// Every value, in the order messages list them.
    const ALL: &'static [Self];
    /// What a value is, for messages: `command`, `plot kind`.
    const WHAT: &'static str;
    /// The key that holds a value in the files that name them: `command`, `kind`.
    const KEY: &'static str;
    /// The value's name.
    fn name(self) -> &'static str;

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == s)
    }
}

/// `a, b or c` from names.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Deserializes a [`Named`] value from its name; an unknown name is an error that lists them.
pub fn deserialize<'de, D: serde::Deserializer<'de>, T: Named>(deserializer: D) -> Result<T, D::Error> {
    let name = <String as serde::Deserialize>::deserialize(deserializer)?;
    T::parse(&name).ok_or_else(|| {
        let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
        serde::de::Error::custom(format!(
            "key `{}`: unknown {} `{name}`: expected {}",
            T::KEY,
            T::WHAT,
            one_of(&names)
        ))
    })
}

/// Implements `serde::Deserialize` for a [`Named`] enum through [`deserialize`].
macro_rules! deserialize_by_name {
    ($ty:ty) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::names::deserialize(deserializer)
            }
        }
    };
}
pub(crate) use deserialize_by_name;
