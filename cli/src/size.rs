//! Sizes as users type them: `256MiB`, `64M`, `1G`, `512k`, or bare bytes.

/// Parses a size in bytes. Units are powers of 1024 (`k`/`KiB`, `M`/`MiB`, `G`/`GiB`,
/// `T`/`TiB`; `KB`, `MB`, ... mean the same, as in most tools' flags), case-insensitive.
///
/// ```
/// use micro_cli::size::parse_bytes;
/// assert_eq!(parse_bytes("256MiB").unwrap(), 256 << 20);
/// assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
/// assert_eq!(parse_bytes("4096").unwrap(), 4096);
/// assert!(parse_bytes("12 parsecs").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected a number like 256MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "invalid size {text:?}: the unit must be one of B, KiB, MiB, GiB, TiB"
            ));
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_bytes("0").unwrap(), 0);
        assert_eq!(parse_bytes("3 KiB").unwrap(), 3 << 10);
        assert_eq!(parse_bytes("2TB").unwrap(), 2 << 40);
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("99999999999999999999").is_err());
        assert!(parse_bytes("20000000T").unwrap_err().contains("too large"));
    }
}
