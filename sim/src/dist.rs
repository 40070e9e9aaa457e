//! Probability distributions written as strings in scenarios: `"exp(3m)"`,
//! `"pareto(1/h, 1.2, 60/h)"`, `"lognormal(400B, 0.8, 16KiB)"`, `"uniform(1s, 5s)"`, or a
//! bare value (a fixed distribution).
//!
//! The quantity type (duration, size, rate) comes from the field, so the same grammar serves
//! `online = "exp(3m)"` and `size = "lognormal(400B, 1.0)"`:
//!
//! | form | meaning |
//! |---|---|
//! | `X` or `fixed(X)` | always X |
//! | `uniform(A, B)` | uniform in [A, B] |
//! | `exp(MEAN)` / `exp(MEAN, MAX)` | exponential with mean MEAN, optionally capped at MAX |
//! | `pareto(MIN, SHAPE)` / `pareto(MIN, SHAPE, MAX)` | Pareto type I: MIN·U^(−1/SHAPE), optionally capped |
//! | `lognormal(MEDIAN, SIGMA)` / `lognormal(MEDIAN, SIGMA, MAX)` | MEDIAN·e^(SIGMA·N(0,1)), optionally capped |
//!
//! SHAPE and SIGMA are plain numbers; every other argument carries the field's unit.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rng::Stream;
use crate::units;

/// What a distribution's values measure, and how they are written.
pub trait Quantity {
    /// Parses one value (with its unit) into the base unit.
    ///
    /// # Errors
    /// A message naming what is wrong.
    fn parse(text: &str) -> Result<f64, String>;
    /// Describes the quantity for error messages, e.g. "a duration such as \"3m\"".
    fn describe() -> &'static str;
}

/// Durations; base unit: milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationQ;
impl Quantity for DurationQ {
    fn parse(text: &str) -> Result<f64, String> {
        #[expect(clippy::cast_precision_loss, reason = "durations far below 2^53 ms")]
        units::parse_duration_ms(text).map(|ms| ms as f64)
    }
    fn describe() -> &'static str {
        "a duration such as \"3m\" or \"250ms\""
    }
}

/// Sizes; base unit: bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BytesQ;
impl Quantity for BytesQ {
    fn parse(text: &str) -> Result<f64, String> {
        units::parse_bytes(text)
    }
    fn describe() -> &'static str {
        "a size such as \"400B\" or \"2KiB\""
    }
}

/// Rates; base unit: events per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQ;
impl Quantity for RateQ {
    fn parse(text: &str) -> Result<f64, String> {
        units::parse_rate_per_hour(text)
    }
    fn describe() -> &'static str {
        "a rate such as \"3/min\" or \"12/h\""
    }
}

/// The shape of a distribution, in base units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// Always this value.
    Fixed(f64),
    /// Uniform in [low, high].
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Exponential.
    Exp {
        /// Mean.
        mean: f64,
        /// Optional cap.
        max: Option<f64>,
    },
    /// Pareto type I.
    Pareto {
        /// Scale (the smallest value).
        min: f64,
        /// Shape (tail index); smaller is heavier.
        shape: f64,
        /// Optional cap.
        max: Option<f64>,
    },
    /// Log-normal.
    LogNormal {
        /// Median.
        median: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
        /// Optional cap.
        max: Option<f64>,
    },
}

impl Shape {
    /// Draws one value.
    pub fn sample(&self, rng: &mut Stream) -> f64 {
        match *self {
            Shape::Fixed(value) => value,
            Shape::Uniform { low, high } => low + (high - low) * rng.unit(),
            Shape::Exp { mean, max } => cap(rng.exp(mean), max),
            Shape::Pareto { min, shape, max } => cap(min * rng.unit_open().powf(-1.0 / shape), max),
            Shape::LogNormal { median, sigma, max } => {
                cap(median * (sigma * rng.normal()).exp(), max)
            }
        }
    }

    /// The mean, where it is finite (a capped Pareto's mean is approximated by the uncapped
    /// one when that is finite; used only for descriptions and estimates).
    #[must_use]
    pub fn mean(&self) -> Option<f64> {
        match *self {
            Shape::Fixed(value) => Some(value),
            Shape::Uniform { low, high } => Some(f64::midpoint(low, high)),
            Shape::Exp { mean, .. } => Some(mean),
            Shape::Pareto { min, shape, max } => {
                if shape > 1.0 {
                    Some(min * shape / (shape - 1.0))
                } else {
                    max
                }
            }
            Shape::LogNormal { median, sigma, .. } => Some(median * (sigma * sigma / 2.0).exp()),
        }
    }

    /// The smallest value the distribution can produce.
    #[must_use]
    pub fn lower_bound(&self) -> f64 {
        match *self {
            Shape::Fixed(value) => value,
            Shape::Uniform { low, .. } => low,
            Shape::Exp { .. } | Shape::LogNormal { .. } => 0.0,
            Shape::Pareto { min, .. } => min,
        }
    }
}

fn cap(value: f64, max: Option<f64>) -> f64 {
    match max {
        Some(limit) => value.min(limit),
        None => value,
    }
}

/// A distribution of quantity `Q`, kept with the text it was written as.
#[derive(Clone, PartialEq)]
pub struct Dist<Q> {
    /// The parsed shape, in `Q`'s base unit.
    pub shape: Shape,
    text: String,
    quantity: PhantomData<Q>,
}

impl<Q> fmt::Debug for Dist<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dist({})", self.text)
    }
}

impl<Q> fmt::Display for Dist<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<Q: Quantity> Dist<Q> {
    /// Parses a distribution string.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let shape = parse_shape::<Q>(trimmed)?;
        Ok(Dist {
            shape,
            text: trimmed.to_owned(),
            quantity: PhantomData,
        })
    }

    /// Draws one value in base units.
    pub fn sample(&self, rng: &mut Stream) -> f64 {
        self.shape.sample(rng)
    }

    /// The text as written.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

fn parse_shape<Q: Quantity>(text: &str) -> Result<Shape, String> {
    let Some(open) = text.find('(') else {
        let value = Q::parse(text).map_err(|e| {
            format!(
                "{e}; expected {} or a distribution such as exp(..), uniform(..), pareto(..), lognormal(..)",
                Q::describe()
            )
        })?;
        return checked(Shape::Fixed(value));
    };
    let Some(inner) = text.get(open + 1..).and_then(|rest| rest.strip_suffix(')')) else {
        return Err(format!("`{text}`: missing closing parenthesis"));
    };
    let call = Call {
        name: text.get(..open).unwrap_or_default().trim(),
        args: inner.split(',').map(str::trim).collect(),
    };
    let shape = match call.name {
        "fixed" => {
            call.arity(1, 1)?;
            Shape::Fixed(call.quantity::<Q>(0)?)
        }
        "uniform" => {
            call.arity(2, 2)?;
            Shape::Uniform {
                low: call.quantity::<Q>(0)?,
                high: call.quantity::<Q>(1)?,
            }
        }
        "exp" => {
            call.arity(1, 2)?;
            Shape::Exp {
                mean: call.quantity::<Q>(0)?,
                max: call.optional_max::<Q>(1)?,
            }
        }
        "pareto" => {
            call.arity(2, 3)?;
            Shape::Pareto {
                min: call.quantity::<Q>(0)?,
                shape: call.number(1, "the shape (2nd argument)")?,
                max: call.optional_max::<Q>(2)?,
            }
        }
        "lognormal" => {
            call.arity(2, 3)?;
            Shape::LogNormal {
                median: call.quantity::<Q>(0)?,
                sigma: call.number(1, "sigma (2nd argument)")?,
                max: call.optional_max::<Q>(2)?,
            }
        }
        other => {
            return Err(format!(
                "unknown distribution `{other}`; use fixed, uniform, exp, pareto or lognormal"
            ));
        }
    };
    checked(shape)
}

/// A distribution as written, `name(arg, arg, …)`, and its arguments' checks.
struct Call<'a> {
    name: &'a str,
    args: Vec<&'a str>,
}

impl Call<'_> {
    fn arity(&self, low: usize, high: usize) -> Result<(), String> {
        if self.args.len() >= low && self.args.len() <= high {
            return Ok(());
        }
        let expected = if low == high {
            format!("{low}")
        } else {
            format!("{low} to {high}")
        };
        Err(format!(
            "`{}(..)` takes {expected} arguments, got {}",
            self.name,
            self.args.len()
        ))
    }

    fn quantity<Q: Quantity>(&self, index: usize) -> Result<f64, String> {
        let arg = self.args.get(index).copied().unwrap_or_default();
        Q::parse(arg).map_err(|e| format!("argument {} of `{}(..)`: {e}", index + 1, self.name))
    }

    fn number(&self, index: usize, what: &str) -> Result<f64, String> {
        let arg = self.args.get(index).copied().unwrap_or_default();
        arg.parse::<f64>().map_err(|_| {
            format!(
                "{what} of `{}(..)` must be a plain number, got `{arg}`",
                self.name
            )
        })
    }

    fn optional_max<Q: Quantity>(&self, index: usize) -> Result<Option<f64>, String> {
        if self.args.len() > index {
            self.quantity::<Q>(index).map(Some)
        } else {
            Ok(None)
        }
    }
}

fn checked(shape: Shape) -> Result<Shape, String> {
    let finite_nonneg = |v: f64, what: &str| -> Result<(), String> {
        if v.is_finite() && v >= 0.0 {
            Ok(())
        } else {
            Err(format!("{what} must be a finite value ≥ 0"))
        }
    };
    match shape {
        Shape::Fixed(v) => finite_nonneg(v, "the value")?,
        Shape::Uniform { low, high } => {
            finite_nonneg(low, "the lower bound")?;
            finite_nonneg(high, "the upper bound")?;
            if high < low {
                return Err("uniform(A, B) needs A ≤ B".to_owned());
            }
        }
        Shape::Exp { mean, max } => {
            finite_nonneg(mean, "the mean")?;
            if mean <= 0.0 {
                return Err("the mean of exp(..) must be > 0".to_owned());
            }
            if let Some(limit) = max {
                finite_nonneg(limit, "the cap")?;
            }
        }
        Shape::Pareto { min, shape, max } => {
            if !(min.is_finite() && min > 0.0) {
                return Err("the minimum of pareto(..) must be > 0".to_owned());
            }
            if !(shape.is_finite() && shape > 0.0) {
                return Err("the shape of pareto(..) must be > 0".to_owned());
            }
            if let Some(limit) = max
                && limit < min
            {
                return Err("the cap of pareto(MIN, SHAPE, MAX) must be ≥ MIN".to_owned());
            }
        }
        Shape::LogNormal { median, sigma, max } => {
            if !(median.is_finite() && median > 0.0) {
                return Err("the median of lognormal(..) must be > 0".to_owned());
            }
            if !(sigma.is_finite() && sigma >= 0.0) {
                return Err("sigma of lognormal(..) must be ≥ 0".to_owned());
            }
            if let Some(limit) = max {
                finite_nonneg(limit, "the cap")?;
            }
        }
    }
    Ok(shape)
}

impl<Q> Serialize for Dist<Q> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de, Q: Quantity> Deserialize<'de> for Dist<Q> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<Q>(PhantomData<Q>);
        impl<Q: Quantity> serde::de::Visitor<'_> for Visitor<Q> {
            type Value = Dist<Q>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string: {} or a distribution", Q::describe())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dist<Q>, E> {
                Dist::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dist<Q>, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) has no unit; expected {}",
                    Q::describe()
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dist<Q>, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) has no unit; expected {}",
                    Q::describe()
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dist<Q>, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) has no unit; expected {}",
                    Q::describe()
                )))
            }
        }
        deserializer.deserialize_any(Visitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn parses_forms() {
        assert_eq!(
            Dist::<DurationQ>::parse("exp(3m)").map(|d| d.shape),
            Ok(Shape::Exp {
                mean: 180_000.0,
                max: None
            })
        );
        assert_eq!(
            Dist::<BytesQ>::parse("400B").map(|d| d.shape),
            Ok(Shape::Fixed(400.0))
        );
        assert_eq!(
            Dist::<RateQ>::parse("pareto(1/h, 1.5, 60/h)").map(|d| d.shape),
            Ok(Shape::Pareto {
                min: 1.0,
                shape: 1.5,
                max: Some(60.0)
            })
        );
        assert!(Dist::<DurationQ>::parse("exp(3)").is_err());
        assert!(Dist::<DurationQ>::parse("gamma(3s)").is_err());
        assert!(Dist::<DurationQ>::parse("uniform(5s, 1s)").is_err());
        assert!(Dist::<DurationQ>::parse("exp(3m").is_err());
    }

    #[test]
    fn samples_respect_caps() {
        let dist = Dist::<RateQ>::parse("pareto(1/h, 0.8, 10/h)").expect("valid");
        let mut rng = stream(3, "t", 0);
        for _ in 0..1000 {
            let v = dist.sample(&mut rng);
            assert!((1.0..=10.0).contains(&v), "{v}");
        }
    }
}
