//! Quantities written with units in scenario files: durations (`"30s"`, `"250ms"`,
//! `"2m30s"`), sizes (`"400B"`, `"2KiB"`) and rates (`"3/min"`).
//!
//! Every quantity is kept in one integer or float base unit (milliseconds, bytes, events per
//! hour) so that plans and reports never depend on how a value was written.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A simulated duration in whole milliseconds (the simulator's time resolution).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// The value in milliseconds.
    #[must_use]
    pub fn ms(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ms(self.0))
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_ms(self.0))
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = UnitString::deserialize(deserializer)?;
        parse_duration_ms(&text.0)
            .map(Millis)
            .map_err(serde::de::Error::custom)
    }
}

/// A string that must carry a unit; a bare number gets a helpful error instead of serde's
/// "invalid type".
struct UnitString(String);

impl<'de> Deserialize<'de> for UnitString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = UnitString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string with a unit, e.g. \"30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UnitString, E> {
                Ok(UnitString(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<UnitString, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) has no unit; write it as a string with a unit, e.g. \"{v}ms\" or \"{v}s\""
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<UnitString, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) has no unit; write it as a string with a unit, e.g. \"{v}ms\" or \"{v}s\""
                )))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<UnitString, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) has no unit; write it as a string with a unit, e.g. \"{v}s\""
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Splits `"12.5ms"` into `(12.5, "ms")`. The number may have a fraction; no sign.
fn split_number(text: &str) -> Result<(f64, &str), String> {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '_'))
        .map_or(text.len(), |(i, _)| i);
    let (number, rest) = text.split_at(end);
    if number.is_empty() {
        return Err(format!("expected a number at `{text}`"));
    }
    let value: f64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    Ok((value, rest))
}

/// Parses a duration such as `"30s"`, `"250ms"`, `"5m"`, `"1h30m"`, `"1.5s"`.
///
/// Units: `ms`, `s`, `m` (or `min`), `h`, `d`. Several parts add up. The result must be a
/// whole number of milliseconds.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("empty duration; write e.g. \"30s\"".to_owned());
    }
    let mut rest = trimmed;
    let mut total_ms = 0.0_f64;
    while !rest.is_empty() {
        let (value, after) = split_number(rest)?;
        let after = after.trim_start();
        let unit_end = after
            .char_indices()
            .find(|(_, c)| !c.is_ascii_alphabetic())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after_unit) = after.split_at(unit_end);
        let factor = match unit {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" | "min" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            "" => {
                return Err(format!(
                    "`{trimmed}` has no unit; use ms, s, m, h or d (e.g. \"{trimmed}s\")"
                ));
            }
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{trimmed}`; use ms, s, m, h or d"
                ));
            }
        };
        total_ms += value * factor;
        rest = after_unit.trim_start();
    }
    if !total_ms.is_finite() || total_ms > 1e15 {
        return Err(format!("duration `{trimmed}` is too large"));
    }
    let rounded = total_ms.round();
    if (rounded - total_ms).abs() > 1e-9 {
        return Err(format!(
            "duration `{trimmed}` is not a whole number of milliseconds (the simulator's resolution)"
        ));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked finite, non-negative and below 1e15 above"
    )]
    Ok(rounded as u64)
}

/// Formats milliseconds the way scenarios write them: `"250ms"`, `"30s"`, `"2m30s"`,
/// `"1h"`, `"1.5s"`.
#[must_use]
pub fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1_000) {
        if ms < 60_000 {
            let secs = ms / 1_000;
            let frac = ms % 1_000;
            let frac_text = format!("{frac:03}");
            return format!("{secs}.{}s", frac_text.trim_end_matches('0'));
        }
        let whole = ms - ms % 60_000;
        let rest = ms % 60_000;
        return format!("{}{}", format_ms(whole), format_ms(rest));
    }
    let mut secs = ms / 1_000;
    let mut out = String::new();
    let hours = secs / 3_600;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
        secs %= 3_600;
    }
    let minutes = secs / 60;
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
        secs %= 60;
    }
    if secs > 0 {
        out.push_str(&format!("{secs}s"));
    }
    out
}

/// Parses a size: `"400B"`, `"2KiB"`, `"1.5KiB"`, `"2KB"` (1000), `"1MiB"`, `"1MB"`.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_bytes(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let (value, unit) = split_number(trimmed)?;
    let factor = match unit.trim() {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "" => {
            return Err(format!(
                "`{trimmed}` has no unit; use B, KiB, KB, MiB or MB (e.g. \"{trimmed}B\")"
            ));
        }
        other => return Err(format!("unknown size unit `{other}` in `{trimmed}`")),
    };
    Ok(value * factor)
}

/// Parses a rate: `"3/min"`, `"0.5/s"`, `"12/h"`, `"2/d"`. Returns events per hour.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_rate_per_hour(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let Some((number, unit)) = trimmed.split_once('/') else {
        return Err(format!(
            "`{trimmed}` is not a rate; write events per unit of time, e.g. \"3/min\" or \"12/h\""
        ));
    };
    let (value, rest) = split_number(number.trim())?;
    if !rest.is_empty() {
        return Err(format!("`{number}` is not a number"));
    }
    let per_hour = match unit.trim() {
        "s" | "sec" => 3_600.0,
        "m" | "min" => 60.0,
        "h" | "hour" => 1.0,
        "d" | "day" => 1.0 / 24.0,
        other => {
            return Err(format!(
                "unknown rate unit `/{other}` in `{trimmed}`; use /s, /min, /h or /d"
            ));
        }
    };
    Ok(value * per_hour)
}

/// Formats a byte count with a binary unit, for tables: `"512 B"`, `"1.5 KiB"`, `"3.2 MiB"`.
#[must_use]
pub fn format_bytes(bytes: f64) -> String {
    let abs = bytes.abs();
    if abs < 1024.0 {
        format!("{bytes:.0} B")
    } else if abs < 1024.0 * 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else if abs < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
    }
}

/// A link's bandwidth in whole bytes per second: `"1Mbit/s"`, `"128kbit/s"`, `"125KB/s"`,
/// `"1MiB/s"`. Written back as bytes per second (`"125000B/s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(pub u64);

impl Bandwidth {
    /// Bytes per second (never zero: the parser refuses it).
    #[must_use]
    pub fn bytes_per_s(self) -> u64 {
        self.0
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}B/s", self.0))
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = UnitString::deserialize(deserializer)?;
        parse_bandwidth(&text.0)
            .map(Bandwidth)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a bandwidth: bits (`bit/s`, `kbit/s`, `Mbit/s`, `Gbit/s`, decimal as networks
/// count them) or bytes (`B/s`, `KB/s`, `KiB/s`, `MB/s`, `MiB/s`) per second. Returns
/// whole bytes per second (at least 1).
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_bandwidth(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let Some((amount, per)) = trimmed.split_once('/') else {
        return Err(format!(
            "`{trimmed}` is not a bandwidth; write e.g. \"1Mbit/s\", \"128kbit/s\" or \"125KB/s\""
        ));
    };
    if per.trim() != "s" {
        return Err(format!(
            "bandwidth `{trimmed}` must be per second (`/s`), e.g. \"1Mbit/s\""
        ));
    }
    let (value, unit) = split_number(amount.trim())?;
    let bytes_per_s = match unit.trim() {
        "bit" => value / 8.0,
        "kbit" | "Kbit" => value * 1e3 / 8.0,
        "Mbit" => value * 1e6 / 8.0,
        "Gbit" => value * 1e9 / 8.0,
        "" => {
            return Err(format!(
                "`{trimmed}` has no unit; use bit, kbit, Mbit, Gbit, B, KB, KiB, MB or MiB per second"
            ));
        }
        _ => parse_bytes(amount.trim())?,
    };
    if !bytes_per_s.is_finite() || bytes_per_s > 1e15 {
        return Err(format!("bandwidth `{trimmed}` is too large"));
    }
    if bytes_per_s < 1.0 {
        return Err(format!(
            "bandwidth `{trimmed}` is below 1 byte per second; leave `bandwidth` out for an unlimited link"
        ));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked finite, at least 1 and below 1e15 above"
    )]
    Ok(bytes_per_s.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("2min"), Ok(120_000));
        assert!(parse_duration_ms("30").is_err());
        assert!(parse_duration_ms("30x").is_err());
        assert!(parse_duration_ms("0.5ms").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn duration_format_round_trips() {
        for ms in [
            0, 1, 250, 1_000, 1_500, 30_000, 90_000, 300_000, 5_400_000, 61_250,
        ] {
            assert_eq!(
                parse_duration_ms(&format_ms(ms)),
                Ok(ms),
                "{}",
                format_ms(ms)
            );
        }
        assert_eq!(format_ms(150_000), "2m30s");
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_bytes("400B"), Ok(400.0));
        assert_eq!(parse_bytes("2KiB"), Ok(2048.0));
        assert_eq!(parse_bytes("2KB"), Ok(2000.0));
        assert!(parse_bytes("400").is_err());
        assert_eq!(parse_rate_per_hour("3/min"), Ok(180.0));
        assert_eq!(parse_rate_per_hour("12/h"), Ok(12.0));
        assert!(parse_rate_per_hour("3").is_err());
        assert!(parse_rate_per_hour("3/fortnight").is_err());
    }

    #[test]
    fn bandwidths_parse_in_bits_and_bytes_per_second() {
        assert_eq!(parse_bandwidth("1Mbit/s"), Ok(125_000));
        assert_eq!(parse_bandwidth("128kbit/s"), Ok(16_000));
        assert_eq!(parse_bandwidth("125KB/s"), Ok(125_000));
        assert_eq!(parse_bandwidth("1MiB/s"), Ok(1_048_576));
        assert!(
            parse_bandwidth("1Mbit")
                .expect_err("refused")
                .contains("not a bandwidth")
        );
        assert!(
            parse_bandwidth("1Mbit/min")
                .expect_err("refused")
                .contains("per second")
        );
        assert!(
            parse_bandwidth("5/s")
                .expect_err("refused")
                .contains("no unit")
        );
        assert!(
            parse_bandwidth("1bit/s")
                .expect_err("refused")
                .contains("below 1 byte")
        );
        assert!(
            parse_bandwidth("3furlong/s")
                .expect_err("refused")
                .contains("unknown size unit")
        );
    }
}
