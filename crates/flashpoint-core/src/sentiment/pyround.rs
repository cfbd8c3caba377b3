//! Python's `round(x, n)` for floats, bit for bit.
//!
//! VADER rounds its outputs with Python's `round`, which rounds the *exact* binary value half-to-even and
//! returns the double nearest to that decimal. `(x * 1000).round() / 1000` disagrees on ties and near-ties,
//! which would flip the last digit (and, at ±0.05, the label) of some texts. This does it exactly without
//! formatting: the product's rounding error is recovered with a fused multiply-add only in the rare case
//! where the scaled value sits exactly on .5.

pub(crate) fn py_round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits);
    let y = x * scale;
    let fl = y.floor();
    // Exact: y and its floor share their high bits.
    let d = y - fl;
    let k = if d > 0.5 {
        fl + 1.0
    } else if d < 0.5 {
        fl
    } else {
        // x * scale == y + err exactly.
        let err = x.mul_add(scale, -y);
        if err > 0.0 {
            fl + 1.0
        } else if err < 0.0 {
            fl
        } else if fl % 2.0 == 0.0 {
            fl
        } else {
            fl + 1.0
        }
    };
    let r = k / scale;
    // Python keeps the sign of a value that rounds to zero (round(-0.0001, 3) == -0.0).
    if r == 0.0 {
        0.0f64.copysign(x)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::py_round;

    #[test]
    fn matches_python_on_ties_and_near_ties() {
        // Values printed by CPython 3.11: round(v, n).
        let cases: &[(f64, i32, f64)] = &[
            (0.0625, 3, 0.062),
            (0.0635, 3, 0.064),
            (2.675, 2, 2.67),
            (0.125, 2, 0.12),
            (0.375, 2, 0.38),
            (-0.0625, 3, -0.062),
            (0.5, 0, 0.0),
            (1.5, 0, 2.0),
            (0.12345, 4, 0.1235),
            (0.4404, 4, 0.4404),
            (-0.77785, 4, -0.7779),
        ];
        for &(v, n, want) in cases {
            assert_eq!(py_round(v, n), want, "round({v}, {n})");
        }
        assert!(py_round(-0.0001, 3).is_sign_negative());
    }
}
