//! Dashboard queries: KPI series, breakdowns and the overview, answered from the rollup tables
//! only (never the raw log rows), so their cost follows the number of rollup rows in the range
//! and not the number of logs.
//!
//! Also owns how a range in a URL (`range=24h`, or `from`/`to` as epoch ms, RFC 3339 or a local
//! date-time in the viewer's time zone) becomes UTC milliseconds and a step.

use std::collections::{BTreeMap, HashMap};

pub use jiff::tz::TimeZone;

use crate::engine::{Engine, now_ms};
use crate::error::{Error, Result};
use crate::ingest::rollup::{Resolution, RollupAcc};
use crate::ingest::sketch::Sketch;
use crate::ingest::{DIM_META_PREFIX, DIM_USER};
use crate::kpi::*;
pub use crate::kpi::RangeParams;
use crate::reads::Caller;
use crate::ingest::rollup::DimAcc;
use crate::store::{RollupCounts, SeriesKey};
use crate::types::Model;

/// A range resolved to UTC milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedRange {
    pub from: i64,
    pub to: i64,
    pub step_ms: i64,
}

impl ResolvedRange {
    pub fn span(&self) -> i64 {
        self.to - self.from
    }
    pub fn resolution(&self) -> Resolution {
        if step_uses_hours(self.step_ms) { Resolution::Hour } else { Resolution::Minute }
    }
}

/// The time zone named `name`, or UTC for None / empty. Unknown names are a 400 naming `tz`.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(TimeZone::UTC),
        Some(n) => TimeZone::get(n).map_err(|_| Error::invalid("tz", format!("unknown time zone {n:?}"))),
    }
}

/// Parses one end of an absolute range. A local date-time that falls into a daylight-saving gap
/// moves forward by the gap; one that occurs twice takes the earlier instant.
pub fn parse_instant(field: &str, s: &str, tz: &TimeZone) -> Result<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') && s.len() <= 16 && !s.contains("--") {
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(ms);
        }
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let civil = s
        .parse::<jiff::civil::DateTime>()
        .map_err(|_| Error::invalid(field, format!("{field} must be epoch milliseconds, RFC 3339, or YYYY-MM-DDTHH:MM")))?;
    let zoned = tz
        .to_ambiguous_zoned(civil)
        .compatible()
        .map_err(|e| Error::invalid(field, format!("{field} is out of range: {e}")))?;
    Ok(zoned.timestamp().as_millisecond())
}

/// Resolves URL range parameters against `now`.
pub fn resolve_range(p: &RangeParams, now: i64) -> Result<ResolvedRange> {
    let tz = time_zone(p.tz.as_deref())?;
    let nonempty = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let (from, to) = match (nonempty(&p.from), nonempty(&p.to)) {
        (Some(f), t) => {
            let from = parse_instant("from", &f, &tz)?;
            let to = match t {
                Some(t) => parse_instant("to", &t, &tz)?,
                None => now,
            };
            (from, to)
        }
        (None, Some(_)) => return Err(Error::invalid("from", "from is required when to is given")),
        (None, None) => {
            let r = nonempty(&p.range).unwrap_or_else(|| "24h".into());
            let span = parse_duration(&r)
                .ok_or_else(|| Error::invalid("range", format!("range must look like 15m, 6h or 7d, not {r:?}")))?;
            (now - span, now)
        }
    };
    if to <= from {
        return Err(Error::invalid("to", "to must be after from"));
    }
    if to - from > MAX_RANGE_MS {
        return Err(Error::invalid("from", format!("a range may span at most {} days", MAX_RANGE_MS / DAY_MS)));
    }
    let step_ms = match nonempty(&p.step) {
        None => choose_step(to - from),
        Some(s) => {
            let step = parse_duration(&s).filter(|v| v % MINUTE_MS == 0).ok_or_else(|| {
                Error::invalid("step", "step must be a whole number of minutes, like 1m, 5m, 1h or 1d")
            })?;
            if (to - from + step - 1) / step > MAX_API_POINTS {
                return Err(Error::invalid("step", format!("step is too small: more than {MAX_API_POINTS} points")));
            }
            step
        }
    };
    Ok(ResolvedRange { from, to, step_ms })
}

/// Formats a UTC ms time in `tz` with a strftime pattern (labels, readouts).
pub fn format_time(ms: i64, tz: &TimeZone, pattern: &str) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_zoned(tz.clone()).strftime(pattern).to_string(),
        Err(_) => String::new(),
    }
}

/// Axis ticks for `[from, to]` in the viewer's zone: at round local times (every 15 minutes,
/// 3 hours, midnight, ...), at most `max_ticks`, each with its label. Ticks follow the local
/// clock, so across a daylight-saving change they stay on round local hours.
pub fn time_ticks(from: i64, to: i64, tz: &TimeZone, max_ticks: i64) -> Vec<(i64, String)> {
    const MINUTES: [i64; 15] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 43200];
    let span_min = ((to - from).max(1) + MINUTE_MS - 1) / MINUTE_MS;
    let interval = MINUTES.iter().copied().find(|m| span_min / m <= max_ticks.max(1)).unwrap_or(43200);
    let Ok(start) = jiff::Timestamp::from_millisecond(from) else { return Vec::new() };
    let local = start.to_zoned(tz.clone()).datetime();
    // Floor to the interval: within the day for sub-day steps, to the day (or week) otherwise.
    let day = local.date();
    let mut dt = if interval < 1440 {
        let minute_of_day = local.hour() as i64 * 60 + local.minute() as i64;
        let floored = minute_of_day / interval * interval;
        day.at((floored / 60) as i8, (floored % 60) as i8, 0, 0)
    } else {
        day.at(0, 0, 0, 0)
    };
    let label = |ms: i64, dt: &jiff::civil::DateTime| -> String {
        let pattern = if interval >= 1440 || (dt.hour() == 0 && dt.minute() == 0 && span_min > 1440) { "%b %-d" } else { "%H:%M" };
        format_time(ms, tz, pattern)
    };
    let mut out: Vec<(i64, String)> = Vec::new();
    for _ in 0..(max_ticks * 4 + 8) {
        let Ok(z) = tz.to_ambiguous_zoned(dt).compatible() else { break };
        let ms = z.timestamp().as_millisecond();
        if ms > to {
            break;
        }
        if ms >= from && out.last().is_none_or(|(last, _)| *last < ms) {
            out.push((ms, label(ms, &dt)));
        }
        let step = if interval == 43200 { jiff::Span::new().months(1) } else { jiff::Span::new().minutes(interval) };
        match dt.checked_add(step) {
            Ok(next) => dt = next,
            Err(_) => break,
        }
    }
    out
}

fn floor_to(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

fn ceil_to(t: i64, step: i64) -> i64 {
    floor_to(t + step - 1, step)
}

/// Cuts `[from, to)` (multiples of `finest`'s step) into as few rollup buckets as possible:
/// whole UTC days in the middle, hours and then minutes at the edges. A 30-day total reads
/// about 30 daily rows and at most 46 hourly ones instead of 720.
fn cover(from: i64, to: i64, finest: Resolution) -> Vec<(Resolution, i64, i64)> {
    fn go(from: i64, to: i64, levels: &[Resolution], out: &mut Vec<(Resolution, i64, i64)>) {
        if from >= to {
            return;
        }
        let Some((res, rest)) = levels.split_first() else { return };
        if rest.is_empty() {
            out.push((*res, from, to));
            return;
        }
        let (a, b) = (ceil_to(from, res.step_ms()), floor_to(to, res.step_ms()));
        if a < b {
            go(from, a, rest, out);
            out.push((*res, a, b));
            go(b, to, rest, out);
        } else {
            go(from, to, rest, out);
        }
    }
    let levels: Vec<Resolution> = [Resolution::Day, Resolution::Hour, Resolution::Minute]
        .into_iter()
        .filter(|r| r.step_ms() >= finest.step_ms())
        .collect();
    let mut out = Vec::new();
    go(from, to, &levels, &mut out);
    out
}

/// Sums and sketches of rollup rows, turned into `KpiTotals` at the end.
#[derive(Default)]
struct Sum {
    acc: RollupAcc,
}

impl Sum {
    fn add_row(&mut self, r: &RollupCounts, latency: &Option<Sketch>, ttft: &Option<Sketch>) {
        let a = &mut self.acc;
        a.requests += r.requests;
        a.errors += r.errors;
        a.input_tokens += r.input_tokens;
        a.output_tokens += r.output_tokens;
        a.cached_tokens += r.cached_tokens;
        a.cost_usd += r.cost_usd;
        a.cache_hits += r.cache_hits;
        if let Some(s) = latency {
            a.latency.merge(s);
        }
        if let Some(s) = ttft {
            a.ttft.merge(s);
        }
    }
    fn totals(&self) -> KpiTotals {
        let a = &self.acc;
        KpiTotals {
            requests: a.requests,
            errors: a.errors,
            input_tokens: a.input_tokens,
            output_tokens: a.output_tokens,
            cached_tokens: a.cached_tokens,
            cost_usd: a.cost_usd,
            cache_hits: a.cache_hits,
            latency_p50: a.latency.quantile(0.5),
            latency_p95: a.latency.quantile(0.95),
            latency_p99: a.latency.quantile(0.99),
            ttft_p50: a.ttft.quantile(0.5),
            ttft_p95: a.ttft.quantile(0.95),
            ttft_p99: a.ttft.quantile(0.99),
        }
    }
}

fn decode(bytes: &Option<Vec<u8>>) -> Result<Option<Sketch>> {
    match bytes {
        Some(b) if !b.is_empty() => Ok(Some(Sketch::decode(b)?)),
        _ => Ok(None),
    }
}

/// The points of a series: one per step from the step containing `from` up to `to` or now,
/// whichever is earlier (the future has no data yet, not zero traffic).
fn point_starts(r: &ResolvedRange, now: i64) -> Vec<i64> {
    let first = floor_to(r.from, r.step_ms);
    let end = r.to.min(now);
    let mut out = Vec::new();
    let mut t = first;
    while t < end {
        out.push(t);
        t += r.step_ms;
    }
    out
}

impl Engine {
    /// Models the caller may read: a user's visible models, or those a read key may use.
    pub async fn readable_models(&self, caller: Caller<'_>) -> Result<Vec<Model>> {
        match caller {
            Caller::User(p) => self.list_models(p).await,
            Caller::Key(k) => {
                k.require(crate::types::Scope::Read)?;
                Ok(self.store().list_models().await?.into_iter().filter(|m| k.may_use_model(&m.name)).collect())
            }
        }
    }

    /// KPI totals of a model over the minute buckets overlapping `[from, to)` (alerting).
    pub(crate) async fn window_totals(&self, model_id: i64, from: i64, to: i64) -> Result<KpiTotals> {
        let (from, to) = (floor_to(from, 60_000), ceil_to(to, 60_000));
        Ok(self.model_totals(model_id, from, to, Resolution::Minute, true).await?.totals())
    }

    /// Like `window_totals`, counting only the logs of some of the model's series (an alert
    /// rule narrowed by environment or provider).
    pub(crate) async fn series_window_totals(&self, model_id: i64, series: &[i64], from: i64, to: i64) -> Result<KpiTotals> {
        let (from, to) = (floor_to(from, 60_000), ceil_to(to, 60_000));
        let mut sum = Sum::default();
        for (res, a, b) in cover(from, to, Resolution::Minute) {
            for row in self.store().rollup_rows(model_id, res, a, b).await? {
                if series.contains(&row.series_id) {
                    let c = &row.counts;
                    sum.add_row(c, &decode(&c.latency)?, &decode(&c.ttft)?);
                }
            }
        }
        Ok(sum.totals())
    }

    /// Totals of a model over the rollup buckets that start in `[from, to)` (multiples of
    /// `finest`), read from the per-model tables with as few rows as possible.
    async fn model_totals(&self, model_id: i64, from: i64, to: i64, finest: Resolution, ttft: bool) -> Result<Sum> {
        let mut sum = Sum::default();
        for (res, a, b) in cover(from, to, finest) {
            for row in self.store().model_rollup_rows(model_id, res, a, b).await? {
                let c = &row.counts;
                let t = if ttft { decode(&c.ttft)? } else { None };
                sum.add_row(c, &decode(&c.latency)?, &t);
            }
        }
        Ok(sum)
    }

    /// The model dashboard: totals, the previous period, a KPI point per step, custom metrics.
    pub async fn model_kpis(&self, caller: Caller<'_>, name: &str, range: &ResolvedRange) -> Result<ModelKpis> {
        let model = self.model_for(caller, name, false).await?;
        let now = now_ms();
        let res = range.resolution();
        let res_ms = res.step_ms();
        let starts = point_starts(range, now);
        let first = starts.first().copied().unwrap_or(range.from);
        let total_from = floor_to(range.from, res_ms);
        let total_to = ceil_to(range.to, res_ms);
        let prev_from = floor_to(range.from - range.span(), res_ms);
        // One row per bucket: the points, and the total from the same rows.
        let rows = self.store().model_rollup_rows(model.id, res, first.min(total_from), total_to).await?;
        let mut points: Vec<Sum> = starts.iter().map(|_| Sum::default()).collect();
        let mut total = Sum::default();
        for row in &rows {
            let c = &row.counts;
            let latency = decode(&c.latency)?;
            let ttft = decode(&c.ttft)?;
            if row.bucket >= total_from {
                total.add_row(c, &latency, &ttft);
            }
            if row.bucket >= first {
                let i = ((row.bucket - first) / range.step_ms) as usize;
                if let Some(p) = points.get_mut(i) {
                    p.add_row(c, &latency, &ttft);
                }
            }
        }
        let previous = self.model_totals(model.id, prev_from, total_from, res, true).await?;
        let points = starts.iter().zip(points.iter()).map(|(t, s)| KpiPoint { t: *t, v: s.totals() }).collect();
        let metrics = self.metric_series(model.id, range, &starts, res).await?;
        Ok(ModelKpis {
            model: model.name.clone(),
            display_name: model.display_name.clone(),
            from: range.from,
            to: range.to,
            step_ms: range.step_ms,
            resolution: match res {
                Resolution::Minute => "minute".into(),
                Resolution::Hour | Resolution::Day => "hour".into(),
            },
            total: total.totals(),
            previous: previous.totals(),
            points,
            metrics,
            breakdown_keys: model.breakdown_keys.clone(),
        })
    }

    async fn metric_series(&self, model_id: i64, range: &ResolvedRange, starts: &[i64], res: Resolution) -> Result<Vec<MetricSeries>> {
        let first = starts.first().copied().unwrap_or(range.from);
        let total_from = floor_to(range.from, res.step_ms());
        let rows = self.store().metric_rollup_rows(model_id, res, first.min(total_from), range.to).await?;
        let mut by_name: BTreeMap<String, (crate::ingest::rollup::MetricAcc, Vec<crate::ingest::rollup::MetricAcc>)> =
            BTreeMap::new();
        for r in rows {
            let entry = by_name
                .entry(r.name.clone())
                .or_insert_with(|| (Default::default(), starts.iter().map(|_| Default::default()).collect()));
            let acc = r.row.into_acc()?;
            if r.bucket >= total_from {
                entry.0.merge(&acc);
            }
            if r.bucket >= first {
                let i = ((r.bucket - first) / range.step_ms) as usize;
                if let Some(p) = entry.1.get_mut(i) {
                    p.merge(&acc);
                }
            }
        }
        let agg = |t: i64, a: &crate::ingest::rollup::MetricAcc| MetricPointAgg {
            t,
            count: a.count,
            sum: a.sum,
            min: (a.count > 0).then_some(a.min),
            max: (a.count > 0).then_some(a.max),
            avg: (a.count > 0).then(|| a.sum / a.count as f64),
            p50: a.sketch.quantile(0.5),
            p95: a.sketch.quantile(0.95),
        };
        Ok(by_name
            .into_iter()
            .map(|(name, (total, points))| MetricSeries {
                name,
                total: agg(range.from, &total),
                points: starts.iter().zip(points.iter()).map(|(t, a)| agg(*t, a)).collect(),
            })
            .collect())
    }

    /// A breakdown table over the range. Provider, version, environment, operation and error
    /// type come from the rollups at the range's resolution; user and metadata keys from the
    /// hourly breakdown rollups, so their range widens to whole hours.
    pub async fn breakdown(&self, caller: Caller<'_>, name: &str, by: &BreakdownBy, range: &ResolvedRange) -> Result<Breakdown> {
        let model = self.model_for(caller, name, false).await?;
        if by.hourly_only() {
            let dim = match by {
                BreakdownBy::User => DIM_USER.to_string(),
                BreakdownBy::Metadata(k) => {
                    if !model.breakdown_keys.iter().any(|x| x == k) {
                        return Err(Error::invalid(
                            "by",
                            format!("metadata key {k:?} is not rolled up for this model; an admin can add it in Admin → Models"),
                        ));
                    }
                    format!("{DIM_META_PREFIX}{k}")
                }
                _ => unreachable!("hourly_only covers user and metadata"),
            };
            let from = floor_to(range.from, HOUR_MS);
            let to = ceil_to(range.to, HOUR_MS);
            // The writer may hold the newest breakdown deltas back for a moment (SQLite).
            self.ingest().writer().flush_breakdowns().await?;
            let mut rows = Vec::new();
            for (res, a, b) in cover(from, to, Resolution::Hour) {
                rows.extend(self.store().dim_rollup_rows(model.id, &dim, res, a, b).await?);
            }
            let mut groups: HashMap<String, DimAcc> = HashMap::new();
            for r in rows {
                groups.entry(r.value).or_default().merge(&r.row.into_acc()?);
            }
            return Ok(Breakdown { by: by.as_param(), from, to, rows: finish_rows(groups) });
        }
        let res = range.resolution();
        let from = floor_to(range.from, res.step_ms());
        let mut rows = Vec::new();
        for (r, a, b) in cover(from, ceil_to(range.to, res.step_ms()), res) {
            rows.extend(self.store().rollup_rows(model.id, r, a, b).await?);
        }
        let series: HashMap<i64, SeriesKey> = self.store().series_of_model(model.id).await?.into_iter().collect();
        let mut groups: HashMap<String, DimAcc> = HashMap::new();
        for r in &rows {
            let key = series.get(&r.series_id);
            let value = match by {
                BreakdownBy::Provider => key.map(|k| k.provider.clone()),
                BreakdownBy::ModelVersion => key.map(|k| k.model_version.clone()),
                BreakdownBy::Environment => key.map(|k| k.environment.clone()),
                BreakdownBy::Operation => key.map(|k| k.operation.clone()),
                BreakdownBy::ErrorType if r.error_type.is_empty() => continue,
                BreakdownBy::ErrorType => Some(r.error_type.clone()),
                BreakdownBy::User | BreakdownBy::Metadata(_) => None,
            }
            .unwrap_or_default();
            let c = &r.counts;
            let g = groups.entry(value).or_default();
            g.requests += c.requests;
            g.errors += c.errors;
            g.input_tokens += c.input_tokens;
            g.output_tokens += c.output_tokens;
            g.cost_usd += c.cost_usd;
            if let Some(s) = decode(&c.latency)? {
                g.latency.merge(&s);
            }
        }
        Ok(Breakdown { by: by.as_param(), from, to: range.to, rows: finish_rows(groups) })
    }

    /// Every readable model with its totals, the previous period and a requests sparkline.
    /// The sparkline has at most `SPARKLINE_POINTS` points, read from the per-model rollups of
    /// the coarsest resolution that fits its step.
    pub async fn overview(&self, caller: Caller<'_>, range: &ResolvedRange) -> Result<Overview> {
        let models = self.readable_models(caller).await?;
        let now = now_ms();
        let res = range.resolution();
        let total_from = floor_to(range.from, res.step_ms());
        let total_to = ceil_to(range.to, res.step_ms());
        let prev_from = floor_to(range.from - range.span(), res.step_ms());
        // Whole hours once the range is longer than 6 h, so it reads the hourly table.
        let spark_step = STEPS_MS
            .iter()
            .copied()
            .filter(|s| range.span() <= 6 * HOUR_MS || *s >= HOUR_MS)
            .find(|s| (range.span() + s - 1) / s <= SPARKLINE_POINTS)
            .unwrap_or(DAY_MS)
            .max(range.step_ms);
        let spark_res = [Resolution::Day, Resolution::Hour, Resolution::Minute]
            .into_iter()
            .find(|r| spark_step % r.step_ms() == 0)
            .unwrap_or(Resolution::Minute);
        let spark_range = ResolvedRange { step_ms: spark_step, ..*range };
        let starts = point_starts(&spark_range, now);
        let first = starts.first().copied().unwrap_or(range.from);
        let mut rows = Vec::with_capacity(models.len());
        for model in models {
            // The overview shows latency only; TTFT sketches are not decoded.
            let total = self.model_totals(model.id, total_from, total_to, res, false).await?;
            let previous = self.model_totals(model.id, prev_from, total_from, res, false).await?;
            let mut sparkline = vec![0i64; starts.len()];
            for (bucket, requests) in self.store().model_request_counts(model.id, spark_res, first, range.to).await? {
                if let Some(s) = sparkline.get_mut(((bucket - first) / spark_step) as usize) {
                    *s += requests;
                }
            }
            let series = self.store().series_of_model(model.id).await?;
            let environments = distinct(&series, |k| &k.environment);
            let providers = distinct(&series, |k| &k.provider);
            rows.push(OverviewRow { model, total: total.totals(), previous: previous.totals(), sparkline, environments, providers });
        }
        Ok(Overview { from: range.from, to: range.to, step_ms: spark_step, rows })
    }
}

/// Points of an overview sparkline, at most.
pub const SPARKLINE_POINTS: i64 = 48;

/// The distinct non-empty values of one series field, sorted.
fn distinct(series: &[(i64, SeriesKey)], field: impl Fn(&SeriesKey) -> &String) -> Vec<String> {
    let mut v: Vec<String> = series.iter().map(|(_, k)| field(k).clone()).filter(|e| !e.is_empty()).collect();
    v.sort();
    v.dedup();
    v
}

fn finish_rows(groups: HashMap<String, DimAcc>) -> Vec<BreakdownRow> {
    let mut rows: Vec<BreakdownRow> = groups
        .into_iter()
        .map(|(value, g)| BreakdownRow {
            value,
            requests: g.requests,
            errors: g.errors,
            input_tokens: g.input_tokens,
            output_tokens: g.output_tokens,
            cost_usd: g.cost_usd,
            latency_p95: g.latency.quantile(0.95),
        })
        .collect();
    rows.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.value.cmp(&b.value)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(range: Option<&str>, from: Option<&str>, to: Option<&str>, step: Option<&str>, tz: Option<&str>) -> RangeParams {
        RangeParams {
            range: range.map(Into::into),
            from: from.map(Into::into),
            to: to.map(Into::into),
            step: step.map(Into::into),
            tz: tz.map(Into::into),
        }
    }

    #[test]
    fn relative_and_absolute_ranges() {
        let now = 1_700_000_000_000;
        let r = resolve_range(&RangeParams::default(), now).unwrap();
        assert_eq!((r.from, r.to, r.step_ms), (now - DAY_MS, now, 5 * MINUTE_MS));
        let r = resolve_range(&p(Some("30d"), None, None, None, None), now).unwrap();
        assert_eq!(r.step_ms, 3 * HOUR_MS);
        assert_eq!(r.resolution(), Resolution::Hour);
        let r = resolve_range(&p(None, Some("1000"), Some("2000"), None, None), now).unwrap();
        assert_eq!((r.from, r.to), (1000, 2000));
        let r = resolve_range(&p(None, Some("2026-11-20T10:00:00Z"), Some("2026-11-20T12:00:00+01:00"), None, None), now).unwrap();
        assert_eq!(r.span(), HOUR_MS, "offsets are honoured");
        let r = resolve_range(&p(None, Some("2026-11-20T10:00"), None, Some("1h"), Some("America/New_York")), 1_800_000_000_000).unwrap();
        assert_eq!(r.from, parse_instant("x", "2026-11-20T15:00:00Z", &TimeZone::UTC).unwrap());
        assert_eq!((r.to, r.step_ms), (1_800_000_000_000, HOUR_MS), "to defaults to now");
    }

    #[test]
    fn bad_ranges_name_the_field() {
        let now = 1_700_000_000_000;
        let field = |q: RangeParams| match resolve_range(&q, now) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        assert_eq!(field(p(Some("soon"), None, None, None, None)), "range");
        assert_eq!(field(p(None, Some("2000"), Some("1000"), None, None)), "to");
        assert_eq!(field(p(None, Some("1000"), Some("1000"), None, None)), "to");
        assert_eq!(field(p(None, None, Some("1000"), None, None)), "from");
        assert_eq!(field(p(None, Some("yesterday"), None, None, None)), "from");
        assert_eq!(field(p(Some("1h"), None, None, Some("30s"), None)), "step");
        assert_eq!(field(p(Some("30d"), None, None, Some("1m"), None)), "step");
        assert_eq!(field(p(Some("1h"), None, None, None, Some("Mars/Olympus"))), "tz");
        assert_eq!(field(p(Some("1000d"), None, None, None, None)), "from");
    }

    #[test]
    fn local_times_across_daylight_saving_changes() {
        let tz = time_zone(Some("Europe/Berlin")).unwrap();
        // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin. 02:30 does not exist and moves
        // forward to 03:30 CEST (01:30 UTC).
        let gap = parse_instant("from", "2026-03-29T02:30", &tz).unwrap();
        assert_eq!(gap, parse_instant("x", "2026-03-29T01:30:00Z", &TimeZone::UTC).unwrap());
        // A local day that contains the change is 23 hours long.
        let day = resolve_range(&p(None, Some("2026-03-29T00:00"), Some("2026-03-30T00:00"), None, Some("Europe/Berlin")), 0).unwrap();
        assert_eq!(day.span(), 23 * HOUR_MS);
        // 2026-10-25: 02:30 happens twice; the earlier (CEST, 00:30 UTC) is taken.
        let fold = parse_instant("from", "2026-10-25T02:30", &tz).unwrap();
        assert_eq!(fold, parse_instant("x", "2026-10-25T00:30:00Z", &TimeZone::UTC).unwrap());
        let day = resolve_range(&p(None, Some("2026-10-25T00:00"), Some("2026-10-26T00:00"), None, Some("Europe/Berlin")), 0).unwrap();
        assert_eq!(day.span(), 25 * HOUR_MS);
        // Labels follow the zone: 01:00 UTC is 03:00 in Berlin after the spring change.
        let ms = parse_instant("x", "2026-03-29T01:00:00Z", &TimeZone::UTC).unwrap();
        assert_eq!(format_time(ms, &tz, "%H:%M"), "03:00");
        assert_eq!(format_time(ms - HOUR_MS, &tz, "%H:%M"), "01:00");
    }

    #[test]
    fn ticks_sit_on_round_local_times_across_daylight_saving() {
        let tz = time_zone(Some("Europe/Berlin")).unwrap();
        let from = parse_instant("from", "2026-03-28T22:10", &tz).unwrap();
        let to = parse_instant("to", "2026-03-29T10:00", &tz).unwrap();
        let ticks = time_ticks(from, to, &tz, 4);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        // 3-hour ticks at round local hours; 03:00 comes 2 real hours after 00:00 that night.
        assert_eq!(labels, vec!["00:00", "03:00", "06:00", "09:00"]);
        assert_eq!(ticks[1].0 - ticks[0].0, 2 * HOUR_MS);
        assert_eq!(ticks[2].0 - ticks[1].0, 3 * HOUR_MS);
        // Long ranges label days; UTC is the default zone.
        let week = time_ticks(0, 7 * DAY_MS, &TimeZone::UTC, 8);
        assert_eq!(week.first().map(|t| t.1.as_str()), Some("Jan 1"));
        assert_eq!(week.len(), 8);
        let month = time_ticks(0, 30 * DAY_MS, &TimeZone::UTC, 6);
        assert!(month.len() <= 6 && month.len() >= 4, "{month:?}");
        assert!(time_ticks(5, 4, &TimeZone::UTC, 6).is_empty());
    }

    #[test]
    fn cover_uses_days_in_the_middle_and_finer_buckets_at_the_edges() {
        let from = 10 * DAY_MS - 3 * HOUR_MS - 5 * MINUTE_MS;
        let to = 40 * DAY_MS + 2 * HOUR_MS + 7 * MINUTE_MS;
        let c = cover(from, to, Resolution::Minute);
        assert_eq!(c, vec![
            (Resolution::Minute, from, 10 * DAY_MS - 3 * HOUR_MS),
            (Resolution::Hour, 10 * DAY_MS - 3 * HOUR_MS, 10 * DAY_MS),
            (Resolution::Day, 10 * DAY_MS, 40 * DAY_MS),
            (Resolution::Hour, 40 * DAY_MS, 40 * DAY_MS + 2 * HOUR_MS),
            (Resolution::Minute, 40 * DAY_MS + 2 * HOUR_MS, to),
        ]);
        // Contiguous and complete.
        for w in c.windows(2) {
            assert_eq!(w[0].2, w[1].1);
        }
        assert_eq!(cover(3 * HOUR_MS, 30 * HOUR_MS, Resolution::Hour), vec![(Resolution::Hour, 3 * HOUR_MS, 30 * HOUR_MS)]);
        assert_eq!(cover(3 * HOUR_MS, 50 * HOUR_MS, Resolution::Hour), vec![
            (Resolution::Hour, 3 * HOUR_MS, DAY_MS),
            (Resolution::Day, DAY_MS, 2 * DAY_MS),
            (Resolution::Hour, 2 * DAY_MS, 50 * HOUR_MS),
        ]);
        assert!(cover(5, 5, Resolution::Minute).is_empty());
    }

    #[test]
    fn points_stop_at_now() {
        let r = ResolvedRange { from: 10 * MINUTE_MS + 5, to: 20 * MINUTE_MS, step_ms: MINUTE_MS };
        assert_eq!(point_starts(&r, i64::MAX).len(), 10);
        assert_eq!(point_starts(&r, 15 * MINUTE_MS).len(), 5);
        assert!(point_starts(&r, 0).is_empty(), "a range in the future has no points yet");
        assert_eq!(point_starts(&r, i64::MAX)[0], 10 * MINUTE_MS);
    }
}
