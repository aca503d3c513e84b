//! Server functions behind the overview and the model dashboards. The engine authorises each
//! call per model; charts are drawn here on the server (see `charts`), in the viewer's time zone.

use engine::kpi::{Breakdown, ModelKpis, Overview, RangeParams};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Cookie holding the viewer's IANA time zone, set by the browser after hydration.
pub const TZ_COOKIE: &str = "mw_tz";

/// One drawn panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub key: String,
    pub title: String,
    pub svg: String,
    /// (series name, colour) pairs.
    pub legend: Vec<(String, String)>,
    /// Start of each point (UTC ms).
    pub t: Vec<i64>,
    /// Hover text of each point, already in the viewer's zone and units.
    pub readouts: Vec<String>,
    pub x_from: i64,
    pub x_to: i64,
    /// Left and right edge of the plot area as fractions of the chart's width.
    pub plot_x0: f64,
    pub plot_x1: f64,
    pub step_ms: i64,
    pub has_data: bool,
    /// Where this panel's data downloads as CSV.
    pub csv: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub kpis: ModelKpis,
    pub charts: Vec<Chart>,
    pub breakdown: Breakdown,
    /// The time zone the charts are drawn in.
    pub tz: String,
    /// The range in words, in that zone.
    pub range_label: String,
    /// Alerts firing on this model now, and whether one is critical.
    pub firing: (i64, bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewPage {
    pub overview: Overview,
    /// One sparkline SVG per row of `overview.rows`.
    pub sparklines: Vec<String>,
    pub tz: String,
    pub range_label: String,
    /// Alerts firing now per model name: (count, any critical).
    pub firing: std::collections::BTreeMap<String, (i64, bool)>,
}

#[server(prefix = "/fn", endpoint = "model_dashboard")]
pub async fn model_dashboard(name: String, #[server(default)] range: RangeParams, by: Option<String>) -> Result<Dashboard, AppError> {
    use engine::kpi::BreakdownBy;
    let (engine, p) = crate::session::caller().await?;
    let (range, tz_name) = ssr::resolve(range)?;
    let caller = engine::reads::Caller::User(&p);
    let kpis = engine.model_kpis(caller, &name, &range).await?;
    let by_text = by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "provider".into());
    let by = BreakdownBy::from_param(&by_text)?;
    let breakdown = engine.breakdown(caller, &name, &by, &range).await?;
    let tz = engine::dashboards::time_zone(Some(&tz_name))?;
    let charts = ssr::charts(&kpis, &tz, &tz_name);
    let firing = engine.firing_counts(&p).await?.get(&name).copied().unwrap_or_default();
    Ok(Dashboard { range_label: ssr::range_label(&range, &tz, &tz_name), kpis, charts, breakdown, tz: tz_name, firing })
}

#[server(prefix = "/fn", endpoint = "load_overview")]
pub async fn load_overview(#[server(default)] range: RangeParams) -> Result<OverviewPage, AppError> {
    let (engine, p) = crate::session::caller().await?;
    let (range, tz_name) = ssr::resolve(range)?;
    let overview = engine.overview(engine::reads::Caller::User(&p), &range).await?;
    let tz = engine::dashboards::time_zone(Some(&tz_name))?;
    let sparklines = overview.rows.iter().map(|r| crate::charts::sparkline(&r.sparkline)).collect();
    let firing = engine.firing_counts(&p).await?.into_iter().collect();
    Ok(OverviewPage { range_label: ssr::range_label(&range, &tz, &tz_name), overview, sparklines, tz: tz_name, firing })
}

/// Admins choose which metadata keys are rolled up for a model's breakdowns (comma-separated).
#[server(prefix = "/fn", endpoint = "set_breakdown_keys")]
pub async fn set_breakdown_keys(name: String, keys: String) -> Result<Vec<String>, AppError> {
    let (engine, p) = crate::session::caller().await?;
    let keys: Vec<String> = keys.split(',').map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    Ok(engine.set_model_breakdown_keys(&p, &name, &keys).await?)
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use engine::dashboards::{ResolvedRange, TimeZone, format_time, resolve_range, time_zone};
    use engine::kpi::{ModelKpis, RangeParams, duration_text};

    use super::{Chart, TZ_COOKIE};
    use crate::charts::{AMBER, BLUE, CYAN, Frame, GREEN, Kind, RED, Series, VIOLET, render};
    use crate::error::AppError;
    use crate::format::Unit;

    /// The range in UTC and the zone to draw it in: the URL's `tz`, else the browser's cookie, else UTC.
    pub fn resolve(mut range: RangeParams) -> Result<(ResolvedRange, String), AppError> {
        let from_cookie = || {
            leptos::prelude::use_context::<http::request::Parts>()
                .and_then(|p| crate::session::cookie_value(&p.headers, TZ_COOKIE))
                .filter(|t| time_zone(Some(t)).is_ok())
        };
        let tz_name = range.tz.clone().filter(|t| !t.trim().is_empty()).or_else(from_cookie).unwrap_or_else(|| "UTC".into());
        range.tz = Some(tz_name.clone());
        let resolved = resolve_range(&range, engine::now_ms())?;
        Ok((resolved, tz_name))
    }

    pub fn range_label(r: &ResolvedRange, tz: &TimeZone, tz_name: &str) -> String {
        let pattern = "%b %-d %H:%M";
        format!(
            "{} – {} ({tz_name}, {} steps)",
            format_time(r.from, tz, pattern),
            format_time(r.to, tz, pattern),
            duration_text(r.step_ms)
        )
    }

    pub fn charts(k: &ModelKpis, tz: &TimeZone, tz_name: &str) -> Vec<Chart> {
        let t: Vec<i64> = k.points.iter().map(|p| p.t).collect();
        let step_s = k.step_ms as f64 / 1000.0;
        let csv = |panel: &str| {
            format!(
                "/api/v1/models/{}/kpis?format=csv&panel={}&from={}&to={}&step={}&tz={}",
                urlencoding::encode(&k.model),
                urlencoding::encode(panel),
                k.from,
                k.to,
                duration_text(k.step_ms),
                urlencoding::encode(tz_name)
            )
        };
        let frame = |key: &str, title: String, unit: Unit, kind: Kind| Frame {
            key: key.to_string(),
            title,
            unit,
            kind,
            t: &t,
            from: k.from,
            to: k.to,
            step_ms: k.step_ms,
            tz,
            csv: csv(key),
        };
        let col = |f: &dyn Fn(&engine::kpi::KpiPoint) -> Option<f64>| k.points.iter().map(f).collect::<Vec<_>>();
        let s = |name: &str, color: &'static str, values: Vec<Option<f64>>| Series { name: name.into(), color, values };
        let per = duration_text(k.step_ms);
        let mut out = vec![
            render(
                frame("requests", format!("Requests (per {per})"), Unit::Count, Kind::Stacked),
                vec![
                    s("errors", RED, col(&|p| Some(p.v.errors as f64))),
                    s("ok", BLUE, col(&|p| Some((p.v.requests - p.v.errors) as f64))),
                ],
            ),
            render(frame("error_rate", "Error rate".into(), Unit::Percent, Kind::Lines), vec![s(
                "error rate",
                RED,
                col(&|p| p.v.error_rate()),
            )]),
            render(
                frame("latency", "Latency".into(), Unit::Millis, Kind::Lines),
                vec![
                    s("p50", GREEN, col(&|p| p.v.latency_p50)),
                    s("p95", AMBER, col(&|p| p.v.latency_p95)),
                    s("p99", RED, col(&|p| p.v.latency_p99)),
                ],
            ),
            render(
                frame("ttft", "Time to first token".into(), Unit::Millis, Kind::Lines),
                vec![
                    s("p50", GREEN, col(&|p| p.v.ttft_p50)),
                    s("p95", AMBER, col(&|p| p.v.ttft_p95)),
                    s("p99", RED, col(&|p| p.v.ttft_p99)),
                ],
            ),
            render(
                frame("tokens", format!("Tokens (per {per})"), Unit::Count, Kind::Stacked),
                vec![
                    s("input", VIOLET, col(&|p| Some(p.v.input_tokens as f64))),
                    s("output", CYAN, col(&|p| Some(p.v.output_tokens as f64))),
                ],
            ),
            render(frame("tokens_per_sec", "Tokens per second".into(), Unit::PerSecond, Kind::Lines), vec![s(
                "tokens/s",
                CYAN,
                col(&|p| Some(p.v.tokens() as f64 / step_s)),
            )]),
            render(frame("cost", format!("Cost (per {per})"), Unit::Usd, Kind::Stacked), vec![s(
                "cost",
                AMBER,
                col(&|p| Some(p.v.cost_usd)),
            )]),
            render(frame("cache", "Cache-hit rate".into(), Unit::Percent, Kind::Lines), vec![s(
                "cache hits",
                GREEN,
                col(&|p| p.v.cache_hit_rate()),
            )]),
        ];
        for m in &k.metrics {
            let key = format!("metric:{}", m.name);
            out.push(render(frame(&key, m.name.clone(), Unit::Plain, Kind::Lines), vec![
                s("avg", BLUE, m.points.iter().map(|p| p.avg).collect()),
                s("p95", AMBER, m.points.iter().map(|p| p.p95).collect()),
            ]));
        }
        out
    }
}
