//! Durations as users type them: `10s`, `5m`, `2h`, `1d`, or bare seconds.

/// Parses a duration into whole seconds (`"10s"`, `"5m"`, `"2h"`, `"1d"`, `"30"`).
///
/// ```
/// use micro_cli::duration::parse_secs;
/// assert_eq!(parse_secs("10s").unwrap(), 10);
/// assert_eq!(parse_secs("2m").unwrap(), 120);
/// assert_eq!(parse_secs("30").unwrap(), 30);
/// assert!(parse_secs("10 parsecs").is_err());
/// ```
pub fn parse_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number with s, m, h or d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: the unit must be s, m, h or d"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

/// Parses a duration that may also be in milliseconds (`"500ms"`), else as [`parse_secs`].
///
/// ```
/// use micro_cli::duration::parse;
/// assert_eq!(parse("500ms").unwrap().as_millis(), 500);
/// assert_eq!(parse("2s").unwrap().as_secs(), 2);
/// ```
pub fn parse(text: &str) -> Result<std::time::Duration, String> {
    if let Some(ms) = text.trim().strip_suffix("ms") {
        return ms
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("invalid duration {text:?}"));
    }
    parse_secs(text).map(std::time::Duration::from_secs)
}
