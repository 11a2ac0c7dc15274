//! Compile-time parsing of duration literals such as `"10s"`, `"250ms"` or `"1m30s"`.

use std::time::Duration;

/// Parses a sequence of `<integer><unit>` parts (units: `ms`, `s`, `m`, `h`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let expected = "expected a duration such as \"250ms\", \"10s\", \"5m\", \"1h\" or \"1m30s\"";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration: {expected}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("malformed duration \"{text}\": {expected}"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration \"{text}\" is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        let part = match unit {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            "" => return Err(format!("duration \"{text}\" has no unit: {expected}")),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in duration \"{text}\": {expected}"
                ))
            }
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(format!(
            "duration \"{text}\" is zero: a zero timeout or pause is never what you want"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse("10 parsecs")
            .unwrap_err()
            .contains("unknown unit `parsecs`"));
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("s").unwrap_err().contains("malformed"));
        assert!(parse("").unwrap_err().contains("empty"));
    }
}
