//! The log explorer: `/models/{model}/logs?…` (dashboards link here with a slice as filters).
//! The URL holds the range, every filter and the page cursor, so a search can be shared; the
//! filter form is a plain GET form and pages are links, so it all works without JavaScript.

use engine::search::{LEVELS, NONE_VALUE};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api_logs::{LogsPage, search_logs};
use crate::components::{ErrorNote, urlencode};
use crate::dash::{ChartPanel, RangeBar, refresh_ticker, with_query};
use crate::format::{self, Unit};

/// Labels of the filters, for the chips above the results.
fn filter_label(key: &str) -> String {
    match key {
        "status" => "status".into(),
        "model_version" => "version".into(),
        "error_type" => "error type".into(),
        "http_status" => "HTTP status".into(),
        "user_id" => "user".into(),
        "session_id" => "session".into(),
        "trace_id" => "trace".into(),
        "latency_min" => "latency ≥ (ms)".into(),
        "latency_max" => "latency ≤ (ms)".into(),
        "ttft_min" => "TTFT ≥ (ms)".into(),
        "ttft_max" => "TTFT ≤ (ms)".into(),
        "tokens_min" => "tokens ≥".into(),
        "tokens_max" => "tokens ≤".into(),
        "cost_min" => "cost ≥ ($)".into(),
        "cost_max" => "cost ≤ ($)".into(),
        "cache_hit" => "cache hit".into(),
        other => other.strip_prefix("meta:").map(|k| format!("metadata {k}")).unwrap_or_else(|| other.replace('_', " ")),
    }
}

/// Keys of the range picker and the page, which are not filters.
fn is_page_key(k: &str) -> bool {
    matches!(k, "range" | "from" | "to" | "tz" | "refresh" | "before" | "limit")
}

#[component]
pub fn ModelLogsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let name = move || {
        let raw = params.read().get("name").unwrap_or_default();
        urlencoding::decode(&raw).map(|s| s.into_owned()).unwrap_or(raw)
    };
    let path = move || format!("/models/{}/logs", urlencode(&name()));
    let tick = refresh_ticker();
    let data = Resource::new(
        move || (name(), query.read().to_query_string(), tick.get()),
        |(name, q, _)| search_logs(name, q.trim_start_matches('?').to_string()),
    );
    view! {
        <Title text=move || format!("Logs · {} · Modelwatch", name())/>
        <div class="page-head">
            <div>
                <h1>"Logs"</h1>
                <code data-testid="logs-model">{name}</code>
            </div>
            <a class="button-link" href=move || format!("/models/{}", urlencode(&name()))>"Dashboard"</a>
        </div>
        {move || view! { <RangeBar path=path() default_range="1h"/> }}
        {move || view! { <FilterForm path=path()/> }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <Results data=page path=path()/> }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Every filter as a GET form; the range and refresh ride along as hidden fields.
#[component]
fn FilterForm(path: String) -> impl IntoView {
    let query = use_query_map();
    let q = query.read_untracked();
    let v = |k: &str| q.get(k).unwrap_or_default();
    let select = |name: &'static str, options: Vec<(&'static str, &'static str)>| {
        let current = q.get(name).unwrap_or_default();
        view! {
            <select name=name id=format!("f-{name}")>
                {options.into_iter().map(|(value, label)| {
                    view! { <option value=value selected=current == value>{label}</option> }
                }).collect_view()}
            </select>
        }
    };
    let text = |name: &'static str, label: &'static str, placeholder: &'static str| {
        view! {
            <label>{label}<input type="text" name=name value=v(name) placeholder=placeholder/></label>
        }
    };
    let num = |name: &'static str, placeholder: &'static str| {
        view! { <input type="number" step="any" name=name value=v(name) placeholder=placeholder aria-label=filter_label(name)/> }
    };
    let mut levels: Vec<(&'static str, &'static str)> = vec![("", "any")];
    levels.extend(LEVELS.iter().map(|l| (*l, *l)));
    // Kept as they are: range keys, and metadata filters that came in a link (meta:KEY=VALUE).
    let hidden: Vec<(String, String)> = (&*q)
        .into_iter()
        .filter(|(k, _)| matches!(k.as_ref(), "range" | "from" | "to" | "tz" | "refresh") || k.starts_with("meta:"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let clear = with_query(
        &path,
        &q,
        &(&*q).into_iter().filter(|(k, _)| !is_page_key(k)).map(|(k, _)| (k.as_ref(), None)).collect::<Vec<_>>(),
    );
    view! {
        <form method="get" action=path.clone() class="card log-filters" data-testid="log-filter">
            {hidden.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v/> }).collect_view()}
            <div class="filter-grid">
                <label>"Status"{select("status", vec![("", "any"), ("ok", "ok"), ("error", "error")])}</label>
                <label>"Level"{select("level", levels)}</label>
                {text("provider", "Provider", "openai")}
                {text("model_version", "Version", "gpt-4o-2024-08-06")}
                {text("environment", "Environment", "production")}
                {text("operation", "Operation", "chat")}
                {text("error_type", "Error type", "timeout")}
                {text("http_status", "HTTP status", "503 or 5xx")}
                {text("user_id", "User", "")}
                {text("session_id", "Session", "")}
                {text("trace_id", "Trace id", "")}
                {text("meta", "Metadata", "key=value")}
                <label>"Cache hit"{select("cache_hit", vec![("", "any"), ("true", "yes"), ("false", "no")])}</label>
                <label>"Feedback"{select("feedback", vec![("", "any"), ("1", "positive"), ("0", "neutral"), ("-1", "negative")])}</label>
                <label class="range">"Latency (ms)"{num("latency_min", "min")}{num("latency_max", "max")}</label>
                <label class="range">"TTFT (ms)"{num("ttft_min", "min")}{num("ttft_max", "max")}</label>
                <label class="range">"Tokens"{num("tokens_min", "min")}{num("tokens_max", "max")}</label>
                <label class="range">"Cost ($)"{num("cost_min", "min")}{num("cost_max", "max")}</label>
            </div>
            <p class="muted">"Text filters match whole values; "<code>{NONE_VALUE}</code>" matches records without the field."</p>
            <div class="actions">
                <button type="submit">"Search"</button>
                <a href=clear>"Clear filters"</a>
            </div>
        </form>
    }
}

#[component]
fn Results(data: LogsPage, path: String) -> impl IntoView {
    let query = use_query_map();
    let q = query.read_untracked();
    let page = data.page;
    // Active filters as chips; × drops one.
    let chips: Vec<(String, String, String)> = (&*q)
        .into_iter()
        .filter(|(k, v)| !is_page_key(k) && !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string(), with_query(&path, &q, &[(k.as_ref(), None)])))
        .collect();
    // Clicking a histogram bar narrows the range to it, filters kept.
    let base = with_query(&path, &q, &[("range", None), ("from", None), ("to", None)]);
    let logs_base = if base.contains('?') { format!("{base}&") } else { format!("{base}?") };
    let count = if page.count_exact {
        format!("{} matching logs", format::compact(page.count as f64))
    } else {
        format!("At least {} matching logs (counting stops there; narrow the range for an exact count)", format::compact(page.count as f64))
    };
    let newest = q.get("before").map(|_| with_query(&path, &q, &[]));
    let older = page.next.clone().map(|c| with_query(&path, &q, &[("before", Some(c))]));
    let empty = page.logs.is_empty();
    let rows = page.logs.into_iter().zip(data.times).map(|(l, time)| {
        let tokens = match (l.input_tokens, l.output_tokens) {
            (None, None) => "–".to_string(),
            (i, o) => format::compact((i.unwrap_or(0) + o.unwrap_or(0)) as f64),
        };
        let text = l.error_message.clone().filter(|_| l.status == "error").or(l.message.clone()).unwrap_or_default();
        let text = if text.chars().count() > 160 { format!("{}…", text.chars().take(160).collect::<String>()) } else { text };
        let status_class = if l.status == "error" { "badge bad" } else { "badge ok" };
        view! {
            <tr data-log-id=l.id.to_string()>
                <td class="nowrap"><a href=format!("/logs/{}", l.id)>{time}</a></td>
                <td><span class=status_class>{l.status.clone()}</span>{l.error_type.clone().map(|t| view! { " " <code>{t}</code> })}</td>
                <td>{l.level.clone()}</td>
                <td>{l.provider.clone()}{(!l.model_version.is_empty()).then(|| format!(" · {}", l.model_version))}</td>
                <td class="num">{l.http_status.map(|s| s.to_string()).unwrap_or_default()}</td>
                <td class="num">{format::opt_value(l.latency_ms, Unit::Millis)}</td>
                <td class="num">{tokens}</td>
                <td class="num">{l.cost_usd.map(|c| format::value(c, Unit::Usd)).unwrap_or_default()}</td>
                <td>{l.user_id.clone().unwrap_or_default()}</td>
                <td class="message">{text}</td>
            </tr>
        }
    }).collect_view();
    view! {
        {(!chips.is_empty()).then(|| view! {
            <p class="chips" data-testid="active-filters">
                {chips.into_iter().map(|(k, v, drop)| view! {
                    <span class="chip" data-filter=k.clone()>{filter_label(&k)}" = "{v}<a href=drop aria-label=format!("Remove filter {k}")>"×"</a></span>
                }).collect_view()}
            </p>
        })}
        <p class="muted range-label"><strong data-testid="log-count">{count}</strong>" · "{data.range_label}</p>
        <div class="panels single"><ChartPanel chart=data.histogram logs_base=logs_base/></div>
        {if empty {
            view! { <p class="muted" data-testid="no-logs">"No stored logs match. Widen the range or remove a filter (sampled or dropped records are counted on the dashboard but not stored)."</p> }.into_any()
        } else {
            view! {
                <table class="list logs" data-testid="log-list">
                    <thead><tr>
                        <th>"Time"</th><th>"Status"</th><th>"Level"</th><th>"Provider"</th><th>"HTTP"</th>
                        <th>"Latency"</th><th>"Tokens"</th><th>"Cost"</th><th>"User"</th><th>"Message"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }.into_any()
        }}
        <nav class="pager">
            {newest.map(|href| view! { <a href=href>"← Newest"</a> })}
            {older.map(|href| view! { <a href=href data-testid="older">"Older →"</a> })}
        </nav>
    }
}
