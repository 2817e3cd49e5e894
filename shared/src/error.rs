//! Why one run of the model chain failed.

/// A run of the chain that cannot produce a result: with sampled parameters
/// this is recorded against the sample and the sweep goes on.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ChainError {
    /// A computed quantity is NaN or infinite (a division by a zero total, say).
    #[error("{quantity} of unit {unit} in {year} is not finite")]
    NonFinite { quantity: &'static str, unit: String, year: i32 },
    /// A quantity whose logarithm the model takes is not positive.
    #[error("{quantity} of unit {unit} in {year} is {value}; its logarithm is undefined")]
    NonPositive { quantity: &'static str, unit: String, year: i32, value: f64 },
    /// A regression quantity could not be computed.
    #[error("ridge regression: {0}")]
    Regression(String),
    /// A projected value is not finite.
    #[error("projection of unit {unit} under the {scenario} scenario diverges in {year}")]
    Projection { unit: String, scenario: &'static str, year: i32 },
}

impl ChainError {
    /// A short reason without unit or year, for counting failures by kind.
    pub fn kind(&self) -> String {
        match self {
            ChainError::NonFinite { quantity, .. } => format!("{quantity} not finite"),
            ChainError::NonPositive { quantity, .. } => format!("{quantity} not positive"),
            ChainError::Regression(message) => format!("ridge regression: {message}"),
            ChainError::Projection { .. } => "projection diverges".to_owned(),
        }
    }
}
