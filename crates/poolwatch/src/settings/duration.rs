//! The one duration syntax of every command: humantime's (`500ms`, `90s`,
//! `10m`, `2h`, `2d`, `1w`, `1h 30m`), and, as flags took them before, a
//! bare number of seconds (`1.5`, `30`) or a decimal with one unit (`1.5h`).

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::time::Duration;

/// The longest duration any setting takes: a century.
const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A duration as operators write it (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(s: u64) -> HumanDuration {
        HumanDuration(Duration::from_secs(s))
    }

    pub const fn millis(ms: u64) -> HumanDuration {
        HumanDuration(Duration::from_millis(ms))
    }

    /// Read `text`; the error quotes it and shows the syntax.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let secs = |v: f64| {
            if v.is_finite() && v >= 0.0 && v <= MAX.as_secs_f64() {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err("out of range".to_string())
            }
        };
        let d = match t.parse::<f64>() {
            Ok(v) => secs(v),
            Err(_) => humantime::parse_duration(t)
                .or_else(|e| decimal_with_unit(t).map_or(Err(e.to_string()), secs)),
        };
        match d {
            Ok(d) if d <= MAX => Ok(d),
            Ok(_) => Err(format!("'{text}' is out of range")),
            Err(e) => Err(format!(
                "'{text}' is not a duration ({e}): write e.g. 500ms, 90s, 10m, 2h, 2d or 1w"
            )),
        }
    }
}

/// `1.5h`, `0.5s`: seconds, if `t` is a decimal number and one unit.
fn decimal_with_unit(t: &str) -> Option<f64> {
    let at = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = t.split_at(at);
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return None,
    };
    num.trim().parse::<f64>().ok().map(|v| v * scale)
}

impl fmt::Display for HumanDuration {
    /// In the largest unit that divides it (`90d`, `2w`, `90s`), as people
    /// write them; humantime's own form otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !self.0.subsec_nanos().is_multiple_of(1_000_000) {
            return write!(f, "{}", humantime::format_duration(self.0));
        }
        if ms == 0 {
            return f.write_str("0s");
        }
        let units = [
            ("w", 604_800_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ];
        let (unit, n) = units
            .into_iter()
            .find(|(_, n)| ms.is_multiple_of(*n))
            .unwrap_or(("ms", 1));
        write!(f, "{}{unit}", ms / n)
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).map(HumanDuration)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"10m\" or \"2d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_operators_write() {
        let p = |s| HumanDuration::parse(s).unwrap();
        assert_eq!(p("2s"), Duration::from_secs(2));
        assert_eq!(p("500ms"), Duration::from_millis(500));
        assert_eq!(p("1.5"), Duration::from_millis(1500));
        assert_eq!(p("30"), Duration::from_secs(30));
        assert_eq!(p("2m"), Duration::from_secs(120));
        assert_eq!(p("9m"), Duration::from_secs(540));
        assert_eq!(p("2h"), Duration::from_secs(7200));
        assert_eq!(p("2d"), Duration::from_secs(2 * 86_400));
        assert_eq!(p("1w"), Duration::from_secs(7 * 86_400));
        assert_eq!(p("1h 30m"), Duration::from_secs(5400));
        assert_eq!(p("1.5m"), Duration::from_secs(90));
        assert_eq!(p("0.5s"), Duration::from_millis(500));
        assert_eq!(p("1.5w"), Duration::from_secs(252 * 3600));
        for bad in [
            "abc", "-1s", "-1", "NaN", "inf", "", "1e300", "1e300d", "3x",
        ] {
            let e = HumanDuration::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn written_back_as_read() {
        for (d, want) in [
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(540), "9m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(90 * 86_400), "90d"),
            (Duration::from_secs(14 * 86_400), "2w"),
            (Duration::from_secs(0), "0s"),
            (Duration::from_nanos(1_500), "1us 500ns"),
        ] {
            let text = HumanDuration(d).to_string();
            assert_eq!(text, want);
            assert_eq!(HumanDuration::parse(&text), Ok(d), "{text}");
        }
    }
}
