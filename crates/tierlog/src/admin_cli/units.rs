//! pulsar-admin's size and time syntax (`10M`, `3d`, `-1`) and the retention body built from
//! them, with its checks.

use anyhow::bail;
use policy::types::RetentionPolicies;

/// `POST …/retention` body from pulsar-admin's --size and --time (only a literal -1 stays -1).
pub(super) fn retention(size: &str, time: &str) -> anyhow::Result<RetentionPolicies> {
    let bytes = parse_size(size)?;
    let secs = parse_time_seconds(time)?;
    // Converted to MB and minutes, -7 bytes would become 0 ("no retention"): refuse it here.
    if bytes < -1 {
        bail!("Invalid retention size '{size}': must be -1 (unlimited) or at least 0");
    }
    if secs < -1 {
        bail!("Invalid retention time '{time}': must be -1 (unlimited) or at least 0");
    }
    Ok(RetentionPolicies {
        retention_time_in_minutes: if secs == -1 { -1 } else { secs / 60 },
        retention_size_in_mb: if bytes == -1 { -1 } else { bytes / (1 << 20) },
    })
}

/// pulsar-admin's size syntax: an integer, optionally followed by k/m/g/t (binary units).
pub(super) fn parse_size(s: &str) -> anyhow::Result<i64> {
    let bad =
        || anyhow::anyhow!("Invalid size '{s}'. Valid formats are: (4096, 100K, 10M, 16G, 2T)");
    let (num, mult) = match s.chars().last() {
        Some(c @ ('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T')) => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                _ => 40,
            };
            (&s[..s.len() - 1], 1i64 << shift)
        }
        _ => (s, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
}

/// pulsar-admin's relative time syntax, in seconds: `30`, `30s`, `10m`, `1h`, `3d`, `2w`, `1y`.
pub(super) fn parse_time_seconds(s: &str) -> anyhow::Result<i64> {
    if s.is_empty() {
        bail!("Time cannot be empty");
    }
    let last = s.chars().last().unwrap_or('0');
    if !last.is_ascii_alphabetic() {
        return s.parse().map_err(|_| anyhow::anyhow!("Invalid time '{s}'"));
    }
    let n: i64 = s[..s.len() - 1]
        .parse()
        .map_err(|_| anyhow::anyhow!("Invalid time '{s}'"))?;
    let unit = match last.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'y' => 365 * 86_400,
        c => bail!("Invalid time unit '{c}'"),
    };
    n.checked_mul(unit)
        .ok_or_else(|| anyhow::anyhow!("Invalid time '{s}': too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_pulsar_admin_parses_them() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("100K").unwrap(), 102_400);
        assert_eq!(parse_size("10M").unwrap(), 10_485_760);
        assert_eq!(parse_size("-10G").unwrap(), -10_737_418_240);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        assert_eq!(parse_size("-1").unwrap(), -1);
        let e = parse_size("10MB").unwrap_err().to_string();
        assert_eq!(
            e,
            "Invalid size '10MB'. Valid formats are: (4096, 100K, 10M, 16G, 2T)"
        );
        assert!(parse_size("1.5G").is_err());
    }

    #[test]
    fn times_parse_as_pulsar_admin_parses_them() {
        assert_eq!(parse_time_seconds("3d").unwrap(), 259_200);
        assert_eq!(parse_time_seconds("1h").unwrap(), 3600);
        assert_eq!(parse_time_seconds("90").unwrap(), 90);
        assert_eq!(parse_time_seconds("-1").unwrap(), -1);
        assert_eq!(parse_time_seconds("2W").unwrap(), 14 * 86_400);
        assert_eq!(
            parse_time_seconds("1x").unwrap_err().to_string(),
            "Invalid time unit 'x'"
        );
        assert!(parse_time_seconds("").is_err());
    }
}
