//! Humane durations (`250ms`, `1.5s`, `10sec`, `5min`, `72h`, `7d`) and
//! sizes (`64KiB`, `1.5MiB`, `500KB`, `1024`), as written in the config file.

use std::time::Duration;

const DURATION_UNITS: &str = "ms, s (or sec), m (or min), h, d";
const SIZE_UNITS: &str = "B, KiB, MiB, GiB, KB, MB, GB";

/// Splits `1.5MiB` into the whole part, the fraction digits and the unit.
/// The number is digits, optionally followed by `.` and more digits; spaces
/// may separate it from the unit.
fn split(t: &str) -> Option<(u128, &str, &str)> {
    let int_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if int_end == 0 {
        return None;
    }
    let whole: u128 = t[..int_end].parse().ok()?;
    let rest = &t[int_end..];
    let (frac, unit) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    Some((whole, frac, unit.trim()))
}

/// `whole.frac × unit`, exactly, or `None` when it overflows or the product
/// is not a whole multiple of the smallest step (`fraction` digits beyond
/// what `unit` can carry).
fn scale(whole: u128, frac: &str, unit: u128) -> Option<(u128, bool)> {
    let mut n = whole.checked_mul(unit)?;
    // At most 38 fraction digits fit a u128 power of ten; more is nonsense.
    if frac.len() > 30 {
        return None;
    }
    let den = 10u128.checked_pow(frac.len() as u32)?;
    let f: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let num = f.checked_mul(unit)?;
    n = n.checked_add(num / den)?;
    Some((n, num % den == 0))
}

/// Parses a duration: a number (`10`, `1.5`) followed by `ms`, `s`/`sec`,
/// `m`/`min`, `h` or `d`. Precision stops at the nanosecond.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let Some((whole, frac, unit)) = split(t) else {
        return Err(format!(
            "`{text}` is not a duration (try `250ms`, `1.5s`, `10s`, `5min`, `72h`)"
        ));
    };
    let nanos_per: u128 = match unit {
        "ms" => 1_000_000,
        "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        "" => {
            return Err(format!(
                "`{text}` needs a unit, e.g. `{t}s` (units: {DURATION_UNITS})"
            ))
        }
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use {DURATION_UNITS})"
            ))
        }
    };
    let too_long = || format!("`{text}` is too long");
    let (nanos, _) = scale(whole, frac, nanos_per).ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a size in bytes: a number (`64`, `1.5`), optionally followed by
/// `B`, `KiB`, `MiB`, `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of
/// 1000). A bare number is bytes. The result must be a whole number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let Some((whole, frac, unit)) = split(t) else {
        return Err(format!(
            "`{text}` is not a size (try `64KiB`, `1MiB`, `1.5MiB`)"
        ));
    };
    let mult: u128 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use {SIZE_UNITS})"
            ))
        }
    };
    let too_large = || format!("`{text}` is too large");
    let (n, whole_bytes) = scale(whole, frac, mult).ok_or_else(too_large)?;
    if !whole_bytes {
        return Err(format!("`{text}` is not a whole number of bytes"));
    }
    u64::try_from(n).map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        for (text, want) in [
            ("250ms", ms(250)),
            ("10s", s(10)),
            ("60sec", s(60)),
            ("5m", s(300)),
            ("5min", s(300)),
            ("72h", s(72 * 3600)),
            (" 2d ", s(2 * 86_400)),
            ("1.5s", ms(1500)),
            ("0.25s", ms(250)),
            ("1.5min", s(90)),
            ("0.5d", s(43_200)),
            ("2.5ms", Duration::from_micros(2500)),
            ("10 s", s(10)),
            ("0s", s(0)),
            ("1.0000000001s", s(1)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
        for bad in [
            "",
            "ten s",
            "5 minutes",
            "-1s",
            ".5s",
            "1.s",
            "1..5s",
            "1.5.s",
            "5mins",
            "5S",
            "99999999999999999999s",
            "999999999999999999d",
            "1.5e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bare_number_is_not_a_duration_and_the_error_shows_how() {
        let e = parse_duration("30").unwrap_err();
        assert!(e.contains("`30s`") && e.contains("min"), "{e}");
        let e = parse_duration("1.5").unwrap_err();
        assert!(e.contains("`1.5s`"), "{e}");
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("64KiB", 65_536),
            ("1MiB", 1 << 20),
            ("500KB", 500_000),
            ("1024", 1024),
            ("1.5MiB", 3 << 19),
            ("0.5KiB", 512),
            ("1.5KB", 1500),
            ("2.25 GB", 2_250_000_000),
            ("10B", 10),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
        for bad in [
            "",
            "1 MiBs",
            "MiB",
            "-1",
            "1.5",
            "1.5B",
            "1.0001KiB",
            ".5MiB",
            "99999999999GiB",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("1.5B")
            .unwrap_err()
            .contains("whole number of bytes"));
    }
}
