//! Natural cubic spline interpolation, used to fill interior gaps of a series
//! (docs/model.md section 2). Matches `scipy.interpolate.CubicSpline(x, y,
//! bc_type="natural")` evaluated at the missing points; with two known points
//! it is the straight line through them.
//!
//! Written here rather than taken from a crate because the crates that offer a
//! natural cubic spline either come with a whole numerics framework or do not
//! accept arbitrary (uneven) knots; this is one tridiagonal solve.

/// Fill the `None` entries of `ys` (observed at `xs`, strictly increasing) by
/// the natural cubic spline through the known points. Known entries are
/// returned unchanged. Returns `None` when fewer than two points are known or
/// a missing point lies outside the known range (extrapolation is not filling).
pub fn fill_natural_cubic(xs: &[f64], ys: &[Option<f64>]) -> Option<Vec<f64>> {
    assert_eq!(xs.len(), ys.len(), "one x per y");
    let known: Vec<(f64, f64)> = xs.iter().zip(ys).filter_map(|(&x, y)| y.map(|y| (x, y))).collect();
    if known.len() < 2 {
        return None;
    }
    let (first_x, last_x) = (known[0].0, known[known.len() - 1].0);
    let second_derivatives = natural_second_derivatives(&known);
    xs.iter()
        .zip(ys)
        .map(|(&x, y)| match y {
            Some(y) => Some(*y),
            None if x < first_x || x > last_x => None,
            None => Some(evaluate(&known, &second_derivatives, x)),
        })
        .collect()
}

/// Second derivatives M_i at the knots with M_0 = M_{n-1} = 0 (natural ends),
/// from the standard tridiagonal system solved by the Thomas algorithm.
fn natural_second_derivatives(points: &[(f64, f64)]) -> Vec<f64> {
    let n = points.len();
    let mut m = vec![0.0; n];
    if n < 3 {
        return m;
    }
    let h: Vec<f64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    // Interior equations i = 1..n-2:
    // h[i-1] M[i-1] + 2 (h[i-1] + h[i]) M[i] + h[i] M[i+1] = 6 (d[i] - d[i-1])
    let interior = n - 2;
    let mut diag = vec![0.0; interior];
    let mut upper = vec![0.0; interior];
    let mut rhs = vec![0.0; interior];
    for k in 0..interior {
        let i = k + 1;
        let slope_right = (points[i + 1].1 - points[i].1) / h[i];
        let slope_left = (points[i].1 - points[i - 1].1) / h[i - 1];
        diag[k] = 2.0 * (h[i - 1] + h[i]);
        upper[k] = h[i];
        rhs[k] = 6.0 * (slope_right - slope_left);
    }
    for k in 1..interior {
        let lower = h[k]; // h[i-1] for i = k+1
        let factor = lower / diag[k - 1];
        diag[k] -= factor * upper[k - 1];
        rhs[k] -= factor * rhs[k - 1];
    }
    for k in (0..interior).rev() {
        let next = if k + 1 < interior { m[k + 2] } else { 0.0 };
        m[k + 1] = (rhs[k] - upper[k] * next) / diag[k];
    }
    m
}

fn evaluate(points: &[(f64, f64)], m: &[f64], x: f64) -> f64 {
    let i = points.windows(2).position(|w| x <= w[1].0).unwrap_or(points.len() - 2);
    let (x0, y0) = points[i];
    let (x1, y1) = points[i + 1];
    let h = x1 - x0;
    let a = (x1 - x) / h;
    let b = (x - x0) / h;
    a * y0 + b * y1 + ((a * a * a - a) * m[i] + (b * b * b - b) * m[i + 1]) * h * h / 6.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_points_give_a_line() {
        let xs = [0.0, 1.0, 2.0, 3.0];
        let filled = fill_natural_cubic(&xs, &[Some(1.0), None, None, Some(7.0)]).unwrap();
        for (got, want) in filled.iter().zip([1.0, 3.0, 5.0, 7.0]) {
            assert!((got - want).abs() < 1e-12, "{filled:?}");
        }
    }

    #[test]
    fn reproduces_a_line_through_many_points() {
        let xs: Vec<f64> = (0..10).map(f64::from).collect();
        let ys: Vec<Option<f64>> =
            xs.iter().map(|&x| if x == 4.0 || x == 7.0 { None } else { Some(2.0 * x + 1.0) }).collect();
        let filled = fill_natural_cubic(&xs, &ys).unwrap();
        assert!((filled[4] - 9.0).abs() < 1e-12);
        assert!((filled[7] - 15.0).abs() < 1e-12);
    }

    #[test]
    fn refuses_to_extrapolate() {
        let xs = [0.0, 1.0, 2.0];
        assert!(fill_natural_cubic(&xs, &[None, Some(1.0), Some(2.0)]).is_none());
        assert!(fill_natural_cubic(&xs, &[None, Some(1.0), None]).is_none());
    }
}
