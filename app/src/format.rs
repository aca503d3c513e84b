//! Readable numbers for dashboards: ms/s, k/M, $, %. Shared by the server-rendered charts and
//! the page, so a value reads the same in a tile, an axis and a hover readout.

/// What a number measures, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Unit {
    Count,
    Percent,
    Millis,
    Usd,
    PerSecond,
    Plain,
}

/// `1234` → `1.23k`, `2500000` → `2.5M`.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "B")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if x.abs() >= 100.0 || (suffix.is_empty() && x.fract() == 0.0) {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    format!("{}{suffix}", trim_zeros(&text))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
}

pub fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Count => compact(v),
        Unit::Plain => {
            if v.abs() >= 1000.0 { compact(v) } else { trim_zeros(&format!("{v:.3}")) }
        }
        Unit::Percent => {
            let p = v * 100.0;
            if p == 0.0 { "0%".into() } else if p.abs() < 1.0 { format!("{p:.2}%") } else { format!("{}%", trim_zeros(&format!("{p:.1}"))) }
        }
        Unit::Millis => {
            if v.abs() >= 60_000.0 {
                format!("{} min", trim_zeros(&format!("{:.1}", v / 60_000.0)))
            } else if v.abs() >= 1000.0 {
                format!("{} s", trim_zeros(&format!("{:.2}", v / 1000.0)))
            } else if v.abs() >= 10.0 {
                format!("{v:.0} ms")
            } else {
                format!("{} ms", trim_zeros(&format!("{v:.1}")))
            }
        }
        Unit::Usd => {
            let a = v.abs();
            if a == 0.0 {
                "$0".into()
            } else if a >= 1000.0 {
                format!("${}", compact(v))
            } else if a >= 1.0 {
                format!("${v:.2}")
            } else if a >= 0.01 {
                format!("${}", trim_zeros(&format!("{v:.3}")))
            } else {
                format!("${}", trim_zeros(&format!("{v:.5}")))
            }
        }
        Unit::PerSecond => format!("{}/s", compact(v)),
    }
}

pub fn opt_value(v: Option<f64>, unit: Unit) -> String {
    v.map(|x| value(x, unit)).unwrap_or_else(|| "–".into())
}

/// `+12%` / `−3.4%` for a change; empty when there is nothing to compare with.
pub fn change(pct: Option<f64>) -> String {
    match pct {
        None => String::new(),
        Some(p) if p.abs() < 0.05 => "±0%".into(),
        Some(p) if p > 0.0 => format!("+{}%", trim_zeros(&format!("{p:.1}"))),
        Some(p) => format!("−{}%", trim_zeros(&format!("{:.1}", -p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_units() {
        assert_eq!(compact(999.0), "999");
        assert_eq!(compact(1234.0), "1.23k");
        assert_eq!(compact(12_345.0), "12.3k");
        assert_eq!(compact(2_500_000.0), "2.5M");
        assert_eq!(value(0.1234, Unit::Percent), "12.3%");
        assert_eq!(value(0.001, Unit::Percent), "0.10%");
        assert_eq!(value(842.0, Unit::Millis), "842 ms");
        assert_eq!(value(1520.0, Unit::Millis), "1.52 s");
        assert_eq!(value(2.5, Unit::Millis), "2.5 ms");
        assert_eq!(value(12.345, Unit::Usd), "$12.35");
        assert_eq!(value(0.0042, Unit::Usd), "$0.0042");
        assert_eq!(value(15000.0, Unit::Usd), "$15k");
        assert_eq!(value(3.0, Unit::PerSecond), "3/s");
        assert_eq!(change(Some(12.0)), "+12%");
        assert_eq!(change(Some(-3.44)), "−3.4%");
        assert_eq!(change(None), "");
        assert_eq!(opt_value(None, Unit::Millis), "–");
    }
}
