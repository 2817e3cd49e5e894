//! Numerical methods the chain uses, each checked against the library its
//! users already trust (reference vectors in `shared/tests/vectors/`):
//! Theil-Sen and Mann-Kendall ([`trend`], pymannkendall and scipy), Jenks
//! natural breaks ([`jenks`], jenkspy), ridge regression in correlation form
//! with its trace, VIFs and Welch's t-test ([`ridge`], scikit-learn and
//! scipy), natural cubic splines ([`spline`], scipy); and the elementary
//! functions every one of them and the chain use ([`math`]), which give the
//! same bits on every machine.

pub mod jenks;
pub mod math;
pub mod ridge;
pub mod spline;
pub mod trend;
