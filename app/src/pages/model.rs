//! One model's dashboard: headline numbers against the previous period, a panel per KPI and
//! per custom metric, and breakdown tables. Range, refresh and breakdown live in the URL, so a
//! link reproduces the view. The model is fetched through the server, which answers "not
//! found" for models the caller may not see, so a URL alone never reveals one.

use engine::kpi::{BreakdownBy, KpiTotals, change_pct};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api_dashboards::{model_dashboard, Dashboard};
use crate::components::{urlencode, ErrorNote, Title};
use crate::dash::{range_from_query, refresh_ticker, use_viewer_tz, with_query, ChartPanel, RangeBar};
use crate::format::{self, Unit};

#[component]
pub fn ModelPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let name = move || {
        let raw = params.read().get("name").unwrap_or_default();
        urlencoding::decode(&raw).map(|s| s.into_owned()).unwrap_or(raw)
    };
    let tz = use_viewer_tz();
    let tick = refresh_ticker();
    let data = Resource::new(
        move || {
            let q = query.read();
            let mut range = range_from_query(&q);
            if range.tz.is_none() {
                range.tz = tz.get();
            }
            (name(), range, q.get("by"), tick.get())
        },
        |(name, range, by, _)| model_dashboard(name, range, by),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <DashboardView d=d/> }.into_any(),
                    // The server function already set the page status (404 for unknown or hidden models).
                    Err(e) => view! { <Title text="Not found · Modelwatch"/><ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Logs of this model for a slice: the explorer link that charts and breakdown rows use.
fn logs_link(model: &str, from: i64, to: i64, extra: &[(&str, &str)]) -> String {
    let mut s = format!("/models/{}/logs?from={from}&to={to}", urlencode(model));
    for (k, v) in extra {
        s.push_str(&format!("&{k}={}", urlencode(v)));
    }
    s
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let query = use_query_map();
    let k = d.kpis.clone();
    let path = format!("/models/{}", urlencode(&k.model));
    let logs_base = format!("/models/{}/logs?", urlencode(&k.model));
    let empty = k.total.requests == 0 && k.metrics.is_empty();
    let current_by = d.breakdown.by.clone();
    let keys = k.breakdown_keys.clone();
    let no_keys = keys.is_empty();
    view! {
        <Title text=format!("{} · Modelwatch", k.display_name)/>
        <div class="page-head">
            <div>
                <h1 data-testid="model-title">{k.display_name.clone()}
                    {(d.firing.0 > 0).then(|| view! {
                        " "<a class=if d.firing.1 { "badge bad" } else { "badge warn" } href=format!("/alerts?model={}", crate::components::urlencode(&k.model)) data-testid="firing-badge">{format!("{} alert(s) firing", d.firing.0)}</a>
                    })}
                </h1>
                <code>{k.model.clone()}</code>
            </div>
            <a class="button-link" href=logs_link(&k.model, k.from, k.to, &[])>"Logs"</a>
        </div>
        <RangeBar path=path.clone()/>
        <p class="muted range-label" data-testid="range-label">{d.range_label.clone()}</p>
        {empty.then(|| view! {
            <section class="card">
                <h2>"No data in this range"</h2>
                <p>"Send logs for " <code>{k.model.clone()}</code> " or pick a longer range to see requests, errors, latency, tokens and cost here."</p>
            </section>
        })}
        <Headline total=k.total.clone() previous=k.previous.clone()/>
        <div class="panels" data-testid="panels">
            {d.charts.into_iter().map(|c| view! { <ChartPanel chart=c logs_base=logs_base.clone()/> }).collect_view()}
        </div>
        <section class="card breakdown" data-testid="breakdown">
            <h2>"Breakdown"</h2>
            <nav class="segmented" aria-label="Break down by">
                {move || {
                    let q = query.read();
                    let current = current_by.clone();
                    let mut dims: Vec<BreakdownBy> = vec![
                        BreakdownBy::Provider, BreakdownBy::ModelVersion, BreakdownBy::Environment,
                        BreakdownBy::Operation, BreakdownBy::ErrorType, BreakdownBy::User,
                    ];
                    dims.extend(keys.iter().map(|key| BreakdownBy::Metadata(key.clone())));
                    dims.into_iter().map(|b| {
                        let href = with_query(&path, &q, &[("by", Some(b.as_param()))]);
                        let class = if b.as_param() == current { "seg active" } else { "seg" };
                        view! { <a class=class href=href>{b.label()}</a> }
                    }).collect_view()
                }}
            </nav>
            <BreakdownTable model=k.model.clone() b=d.breakdown.clone()/>
            {no_keys.then(|| view! {
                <p class="muted">"To break down by a metadata key (team, region, feature, …), an admin adds it under Admin: models."</p>
            })}
        </section>
    }
}

#[component]
fn Headline(total: KpiTotals, previous: KpiTotals) -> impl IntoView {
    let tile = |label: &'static str, value: String, delta: Option<f64>, up_is_bad: bool| {
        let text = format::change(delta);
        let class = match delta {
            Some(d) if d.abs() >= 0.05 && ((d > 0.0) == up_is_bad) => "delta bad",
            Some(d) if d.abs() >= 0.05 => "delta good",
            _ => "delta",
        };
        view! {
            <div class="tile" data-kpi=label>
                <span class="label">{label}</span>
                <strong>{value}</strong>
                <span class=class title="Change against the previous period of the same length">{text}</span>
            </div>
        }
    };
    let pct = |a: Option<f64>, b: Option<f64>| a.zip(b).and_then(|(a, b)| change_pct(a, b));
    view! {
        <div class="tiles" data-testid="headline">
            {tile("Requests", format::compact(total.requests as f64), change_pct(total.requests as f64, previous.requests as f64), false)}
            {tile("Error rate", format::opt_value(total.error_rate(), Unit::Percent), pct(total.error_rate(), previous.error_rate()), true)}
            {tile("p95 latency", format::opt_value(total.latency_p95, Unit::Millis), pct(total.latency_p95, previous.latency_p95), true)}
            {tile("p95 TTFT", format::opt_value(total.ttft_p95, Unit::Millis), pct(total.ttft_p95, previous.ttft_p95), true)}
            {tile("Tokens", format::compact(total.tokens() as f64), change_pct(total.tokens() as f64, previous.tokens() as f64), false)}
            {tile("Cost", format::value(total.cost_usd, Unit::Usd), change_pct(total.cost_usd, previous.cost_usd), true)}
            {tile("Cache hits", format::opt_value(total.cache_hit_rate(), Unit::Percent), pct(total.cache_hit_rate(), previous.cache_hit_rate()), false)}
        </div>
    }
}

#[component]
fn BreakdownTable(model: String, b: engine::kpi::Breakdown) -> impl IntoView {
    if b.rows.is_empty() {
        return view! { <p class="muted">"No records in this range."</p> }.into_any();
    }
    let filter_key = match b.by.as_str() {
        "provider" | "model_version" | "environment" | "operation" | "error_type" => b.by.clone(),
        "user" => "user_id".into(),
        other => other.to_string(),
    };
    let csv = format!("/api/v1/models/{}/breakdown?by={}&from={}&to={}&format=csv", urlencode(&model), urlencode(&b.by), b.from, b.to);
    view! {
        <table class="list" data-testid="breakdown-table">
            <thead><tr><th>"Value"</th><th>"Requests"</th><th>"Error rate"</th><th>"p95 latency"</th><th>"Tokens"</th><th>"Cost"</th></tr></thead>
            <tbody>
                {b.rows.iter().take(50).map(|r| {
                    let shown = if r.value.is_empty() { "(none)".to_string() } else { r.value.clone() };
                    let value = if r.value.is_empty() { engine::search::NONE_VALUE } else { r.value.as_str() };
                    let href = logs_link(&model, b.from, b.to, &[(&filter_key, value)]);
                    view! {
                        <tr>
                            <td><a href=href>{shown}</a></td>
                            <td>{format::compact(r.requests as f64)}</td>
                            <td>{format::opt_value(r.error_rate(), Unit::Percent)}</td>
                            <td>{format::opt_value(r.latency_p95, Unit::Millis)}</td>
                            <td>{format::compact((r.input_tokens + r.output_tokens) as f64)}</td>
                            <td>{format::value(r.cost_usd, Unit::Usd)}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <p class="muted">
            {(b.rows.len() > 50).then(|| format!("Top 50 of {} values. ", b.rows.len()))}
            <a href=csv rel="external" download="">"Download CSV"</a>
        </p>
    }
    .into_any()
}
