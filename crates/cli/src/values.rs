//! Checks of command-line values, so that a bad flag is refused by the parser — naming the
//! flag, before any data is read — instead of panicking in libtorch later.
//! Use as `#[arg(long, value_parser = cli::values::positive_f64)]`.

/// The largest factor an optimiser can apply to float32 weights: libtorch converts learning
/// rates and weight decays to the weights' type, and refuses (tch panics on) larger ones.
const MAX_FACTOR: f64 = f32::MAX as f64;

/// A number above 0 that float32 can hold (learning rates).
pub fn positive_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v > 0.0 && v <= MAX_FACTOR {
        Ok(v)
    } else {
        Err(format!(
            "{s} is not a number above 0 and at most {MAX_FACTOR:e} (the largest float32, the weights' type)"
        ))
    }
}

/// A number of at least 0 that float32 can hold (weight decay).
pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=MAX_FACTOR).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s} is not a number from 0 to {MAX_FACTOR:e} (the largest float32, the weights' type)"
        ))
    }
}

/// A dropout probability: 0 ≤ p < 1 (p = 1 would drop everything).
pub fn dropout(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not a probability in [0, 1)"))
    }
}

/// A nucleus mass: 0 < p ≤ 1.
pub fn top_p(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a probability mass in (0, 1]"))
    }
}

/// A count of at least 1 (epochs, batch size, samples, beam width).
pub fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(format!("{e}")),
    }
}

/// A size of at least 1 (hidden size).
pub fn positive_i64(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(v) if v >= 1 => Ok(v),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("{e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_libtorch_would_panic_on() {
        assert_eq!(positive_f64("0.003"), Ok(0.003));
        for bad in ["0", "-1", "inf", "NaN", "x", "1e308", "3.5e38"] {
            assert!(positive_f64(bad).is_err(), "{bad}");
        }
        assert!(positive_f64("3.4e38").is_ok());
        assert!(non_negative_f64("0").is_ok() && non_negative_f64("-0.1").is_err());
        assert!(non_negative_f64("1e308").is_err() && non_negative_f64("NaN").is_err());
        assert!(dropout("0").is_ok() && dropout("1").is_err() && dropout("2").is_err());
        assert!(top_p("1").is_ok() && top_p("0").is_err() && top_p("1.5").is_err());
        assert_eq!(positive_usize("64"), Ok(64));
        assert!(positive_usize("0").is_err() && positive_usize("-3").is_err());
        assert!(positive_i64("128").is_ok() && positive_i64("0").is_err());
    }
}
