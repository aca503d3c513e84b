//! Server functions behind the log explorer: a search page (filters from the URL, histogram
//! drawn on the server) and the detail of one log. The engine authorises each call per model
//! and withholds payloads from callers without `view_payloads`.

use engine::LogView;
use engine::search::SearchPage;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api_dashboards::Chart;
use crate::error::AppError;

/// URL keys the explorer page reads besides the search's own: the range picker's and refresh.
pub const PAGE_KEYS: [&str; 3] = ["range", "tz", "refresh"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsPage {
    pub page: SearchPage,
    /// Matches over time (errors stacked on ok).
    pub histogram: Chart,
    /// The range in words, in the viewer's zone.
    pub range_label: String,
    /// Each result's time in the viewer's zone, to the millisecond.
    pub times: Vec<String>,
    /// When the count covers only the newest part of the range: where that part starts.
    pub counted_since: Option<String>,
    pub tz: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    pub log: LogView,
    /// Its time in the viewer's zone, with the zone's name.
    pub time: String,
}

/// How log times are shown: to the millisecond.
pub const LOG_TIME: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// One page of a search. `query` is the page's URL query string: range picker keys, every
/// filter of `engine::search::LogSearch`, and `before` for older pages.
#[server(prefix = "/fn", endpoint = "search_logs")]
pub async fn search_logs(model: String, query: String) -> Result<LogsPage, AppError> {
    let (engine, p) = crate::session::caller().await?;
    ssr::search(&engine, &p, &model, &query).await
}

/// One log with every field; the payload only for callers who may view it.
#[server(prefix = "/fn", endpoint = "log_detail")]
pub async fn log_detail(id: i64) -> Result<LogPage, AppError> {
    let (engine, p) = crate::session::caller().await?;
    let log = engine.log_detail(engine::reads::Caller::User(&p), id).await?;
    let (_, tz_name) = crate::api_dashboards::ssr::resolve(engine::kpi::RangeParams::default())?;
    let tz = engine::dashboards::time_zone(Some(&tz_name))?;
    let time = format!("{} ({tz_name})", engine::dashboards::format_time(log.timestamp, &tz, LOG_TIME));
    Ok(LogPage { log, time })
}

/// The caller's saved searches for a model.
#[server(prefix = "/fn", endpoint = "saved_searches")]
pub async fn saved_searches(model: String) -> Result<Vec<engine::SavedSearch>, AppError> {
    let (engine, p) = crate::session::caller().await?;
    Ok(engine.saved_searches(&p, &model).await?)
}

/// Saves the explorer's current query string under a name.
#[server(prefix = "/fn", endpoint = "save_search")]
pub async fn save_search(model: String, name: String, query: String) -> Result<i64, AppError> {
    let (engine, p) = crate::session::caller().await?;
    Ok(engine.save_search(&p, &model, &name, &query).await?)
}

#[server(prefix = "/fn", endpoint = "delete_saved_search")]
pub async fn delete_saved_search(id: i64) -> Result<(), AppError> {
    let (engine, p) = crate::session::caller().await?;
    Ok(engine.delete_saved_search(&p, id).await?)
}

/// Admins: how many stored logs match the explorer's search (the confirmation count).
#[server(prefix = "/fn", endpoint = "count_logs_to_delete")]
pub async fn count_logs_to_delete(model: String, query: String) -> Result<i64, AppError> {
    let (engine, p) = crate::session::caller().await?;
    let search = ssr::parse_for_delete(&query)?;
    Ok(engine.count_logs_to_delete(&p, &model, &search).await?)
}

/// Admins: deletes the stored logs matching the explorer's search; `confirm` is the count.
#[server(prefix = "/fn", endpoint = "delete_logs")]
pub async fn delete_logs(model: String, query: String, confirm: i64) -> Result<u64, AppError> {
    let (engine, p) = crate::session::caller().await?;
    let search = ssr::parse_for_delete(&query)?;
    Ok(engine.delete_logs(&p, &model, &search, confirm).await?)
}

#[cfg(feature = "ssr")]
mod ssr {
    use engine::dashboards::{format_time, time_zone};
    use engine::kpi::RangeParams;
    use engine::search::LogSearch;
    use engine::{Engine, Principal};

    use super::{LogsPage, PAGE_KEYS};
    use crate::charts::{BLUE, Frame, Kind, RED, Series, render};
    use crate::error::AppError;
    use crate::format::Unit;

    /// The search a deletion applies to: the explorer's filters and its resolved range.
    pub fn parse_for_delete(query: &str) -> Result<LogSearch, AppError> {
        let (mut search, _) = parse(query)?;
        search.before = None;
        Ok(search)
    }

    /// The explorer's query string as a search over its resolved range, and the viewer's zone.
    fn parse(query: &str) -> Result<(LogSearch, String), AppError> {
        let pairs = engine::search::query_pairs(query);
        let get = |k: &str| pairs.iter().rev().find(|(key, v)| key == k && !v.is_empty()).map(|(_, v)| v.clone());
        // The range as the dashboards take it (relative, or absolute in the viewer's zone);
        // the explorer defaults to the last hour.
        let (range, tz_name) = crate::api_dashboards::ssr::resolve(RangeParams {
            range: get("range").or_else(|| get("from").is_none().then(|| "1h".to_string())),
            from: get("from"),
            to: get("to"),
            step: None,
            tz: get("tz"),
        })?;
        let mut search = LogSearch::from_params(
            &pairs.iter().filter(|(k, _)| !matches!(k.as_str(), "from" | "to")).cloned().collect::<Vec<_>>(),
            &PAGE_KEYS,
        )?;
        search.from = Some(range.from);
        search.to = Some(range.to);
        Ok((search, tz_name))
    }

    pub async fn search(engine: &Engine, p: &Principal, model: &str, query: &str) -> Result<LogsPage, AppError> {
        let (search, tz_name) = parse(query)?;
        let page = engine.search_logs(engine::reads::Caller::User(p), model, &search).await?;
        let tz = time_zone(Some(&tz_name))?;
        let t: Vec<i64> = page.histogram.iter().map(|b| b.start).collect();
        let counted = |b: &engine::search::HistogramBar| b.start + page.step > page.counted_from;
        let step = page.step.max(1);
        let histogram = render(
            Frame {
                key: "histogram".into(),
                title: format!("Matching logs (per {})", engine::kpi::duration_text(step)),
                unit: Unit::Count,
                kind: Kind::Stacked,
                t: &t,
                from: page.from,
                to: page.to,
                step_ms: step,
                tz: &tz,
                csv: String::new(),
            },
            vec![
                // Bars wholly before the counted part are gaps, not zeros.
                Series { name: "errors".into(), color: RED, values: page.histogram.iter().map(|b| counted(b).then_some(b.errors as f64)).collect() },
                Series {
                    name: "ok".into(),
                    color: BLUE,
                    values: page.histogram.iter().map(|b| counted(b).then_some((b.count - b.errors) as f64)).collect(),
                },
            ],
        );
        let pattern = "%b %-d %H:%M:%S";
        let range_label = format!("{} – {} ({tz_name})", format_time(page.from, &tz, pattern), format_time(page.to, &tz, pattern));
        let times = page.logs.iter().map(|l| format_time(l.timestamp, &tz, super::LOG_TIME)).collect();
        let counted_since = (!page.count_exact).then(|| format_time(page.counted_from, &tz, pattern));
        Ok(LogsPage { page, histogram, range_label, times, counted_since, tz: tz_name })
    }
}
