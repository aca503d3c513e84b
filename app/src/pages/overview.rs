//! The overview: every model the user may see with requests/min, error rate, p95 latency,
//! tokens and cost over the range, the change against the previous period and a sparkline.
//! Filtering and sorting use a GET form, so they work without JavaScript and the URL can be shared.

use engine::kpi::{change_pct, OverviewRow};
use engine::Role;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api_dashboards::{load_overview, OverviewPage};
use crate::components::{urlencode, use_me, ErrorNote, Title};
use crate::dash::{range_from_query, refresh_ticker, use_viewer_tz, with_query, RangeBar};
use crate::format::{self, Unit};

#[component]
pub fn Overview() -> impl IntoView {
    let query = use_query_map();
    let tz = use_viewer_tz();
    let tick = refresh_ticker();
    let data = Resource::new(
        move || {
            let mut range = range_from_query(&query.read());
            if range.tz.is_none() {
                range.tz = tz.get();
            }
            (range, tick.get())
        },
        |(range, _)| load_overview(range),
    );
    let me = use_me();
    view! {
        <Title text="Models · Modelwatch"/>
        <div class="page-head">
            <h1>"Models"</h1>
        </div>
        <RangeBar path="/".to_string()/>
        <Transition fallback=|| view! { <p class="muted">"Loading models…"</p> }>
            {move || Suspend::new(async move {
                let is_admin = matches!(me.await, Ok(Some(ref m)) if m.role == Role::Admin);
                match data.await {
                    Ok(page) if page.overview.rows.is_empty() => view! { <EmptyState is_admin/> }.into_any(),
                    Ok(page) => view! { <ModelTable page/> }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ModelTable(page: OverviewPage) -> impl IntoView {
    let query = use_query_map();
    let q = query.read_untracked();
    let needle = q.get("q").unwrap_or_default().to_lowercase();
    let env = q.get("env").unwrap_or_default();
    let provider = q.get("provider").unwrap_or_default();
    let sort = q.get("sort").unwrap_or_else(|| "name".into());
    let span = page.overview.to - page.overview.from;
    let mut envs: Vec<String> = page.overview.rows.iter().flat_map(|r| r.environments.clone()).collect();
    envs.sort();
    envs.dedup();
    let mut providers: Vec<String> = page.overview.rows.iter().flat_map(|r| r.providers.clone()).collect();
    providers.sort();
    providers.dedup();
    let mut rows: Vec<(OverviewRow, String)> = page
        .overview
        .rows
        .into_iter()
        .zip(page.sparklines)
        .filter(|(r, _)| {
            (needle.is_empty()
                || r.model.name.to_lowercase().contains(&needle)
                || r.model.display_name.to_lowercase().contains(&needle))
                && (env.is_empty() || r.environments.contains(&env))
                && (provider.is_empty() || r.providers.contains(&provider))
        })
        .collect();
    let key = |r: &OverviewRow| -> f64 {
        match sort.as_str() {
            "requests" => -(r.total.requests as f64),
            "errors" => -r.total.error_rate().unwrap_or(0.0),
            "latency" => -r.total.latency_p95.unwrap_or(0.0),
            "cost" => -r.total.cost_usd,
            _ => 0.0,
        }
    };
    rows.sort_by(|a, b| key(&a.0).total_cmp(&key(&b.0)).then_with(|| a.0.model.name.cmp(&b.0.model.name)));
    // Only one page of rows is rendered: a registry of hundreds of models stays one screen.
    let matching = rows.len();
    let pages = matching.div_ceil(OVERVIEW_PER_PAGE).max(1);
    let current = q.get("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).clamp(1, pages);
    let first = (current - 1) * OVERVIEW_PER_PAGE;
    let rows: Vec<(OverviewRow, String)> = rows.into_iter().skip(first).take(OVERVIEW_PER_PAGE).collect();
    let page_link = |n: usize| with_query("/", &q, &[("page", Some(n.to_string()))]);
    let prev = (current > 1).then(|| page_link(current - 1));
    let next = (current < pages).then(|| page_link(current + 1));
    let shown = (pages > 1).then(|| format!("Models {}–{} of {}", first + 1, first + rows.len(), matching));
    let option = |value: &str, label: &str, current: &str| {
        view! { <option value=value.to_string() selected=value == current>{label.to_string()}</option> }
    };
    view! {
        <form method="get" action="/" class="filter row" data-testid="overview-filter">
            <input name="q" type="search" placeholder="Filter by name" value=q.get("q").unwrap_or_default()/>
            <select name="env" aria-label="Environment">
                {option("", "All environments", &env)}
                {envs.iter().map(|e| option(e, e, &env)).collect_view()}
            </select>
            <select name="provider" aria-label="Provider">
                {option("", "All providers", &provider)}
                {providers.iter().map(|p| option(p, p, &provider)).collect_view()}
            </select>
            <select name="sort" aria-label="Sort by">
                {option("name", "Sort by name", &sort)}
                {option("requests", "Most requests", &sort)}
                {option("errors", "Highest error rate", &sort)}
                {option("latency", "Slowest p95", &sort)}
                {option("cost", "Highest cost", &sort)}
            </select>
            {["range", "from", "to", "refresh"].iter().filter_map(|k| q.get(k).map(|v| view! { <input type="hidden" name=*k value=v/> })).collect_view()}
            <button type="submit">"Apply"</button>
        </form>
        <p class="muted range-label">{page.range_label.clone()}</p>
        {if rows.is_empty() {
            view! { <p class="muted">"No model matches this filter."</p> }.into_any()
        } else {
            view! {
                <table class="list overview" data-testid="model-list">
                    <thead><tr>
                        <th>"Model"</th><th>"Requests/min"</th><th>"Error rate"</th><th>"p95 latency"</th>
                        <th>"Tokens"</th><th>"Cost"</th><th>"Requests"</th>
                    </tr></thead>
                    <tbody>
                        {rows.into_iter().map(|(r, spark)| {
                            let t = &r.total;
                            let p = &r.previous;
                            let delta = |c: Option<f64>, pv: Option<f64>| {
                                let text = format::change(c.zip(pv).and_then(|(c, pv)| change_pct(c, pv)));
                                view! { <span class="delta">{text}</span> }
                            };
                            let href = with_query(&format!("/models/{}", urlencode(&r.model.name)), &q, &[("q", None), ("env", None), ("provider", None), ("sort", None)]);
                            view! {
                                <tr data-model=r.model.name.clone()>
                                    <td>
                                        <a href=href>{r.model.display_name.clone()}</a>
                                        {page.firing.get(&r.model.name).map(|(n, critical)| view! {
                                            <a class=if *critical { "badge bad" } else { "badge warn" } href="/alerts" data-testid="firing-badge">{format!("{n} firing")}</a>
                                        })}
                                        <div class="tags">
                                            {r.environments.iter().map(|e| view! { <span class="chip">{e.clone()}</span> }).collect_view()}
                                            {r.providers.iter().map(|e| view! { <span class="chip">{e.clone()}</span> }).collect_view()}
                                        </div>
                                    </td>
                                    <td>{format::compact((r.requests_per_min(span) * 10.0).round() / 10.0)}{delta(Some(t.requests as f64), Some(p.requests as f64))}</td>
                                    <td>{format::opt_value(t.error_rate(), Unit::Percent)}{delta(t.error_rate(), p.error_rate())}</td>
                                    <td>{format::opt_value(t.latency_p95, Unit::Millis)}{delta(t.latency_p95, p.latency_p95)}</td>
                                    <td>{format::compact(t.tokens() as f64)}{delta(Some(t.tokens() as f64), Some(p.tokens() as f64))}</td>
                                    <td>{format::value(t.cost_usd, Unit::Usd)}{delta(Some(t.cost_usd), Some(p.cost_usd))}</td>
                                    <td class="spark" inner_html=spark></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
                <nav class="pager" data-testid="overview-pager">
                    <span>{prev.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}</span>
                    <span class="muted">{shown}</span>
                    <span>{next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}</span>
                </nav>
            }.into_any()
        }}
    }
}

/// Models shown per page of the overview.
pub const OVERVIEW_PER_PAGE: usize = 50;

#[component]
fn EmptyState(is_admin: bool) -> impl IntoView {
    view! {
        <section class="card empty" data-testid="empty-state">
            <h2>"No models yet"</h2>
            {if is_admin {
                view! {
                    <p>"A model appears here as soon as data arrives for it. Point your gateway, SDK or model server at this instance:"</p>
                    <pre>"curl -X POST http://127.0.0.1:8080/api/v1/logs \\\n  -H 'Authorization: Bearer <API key>' \\\n  -H 'Content-Type: application/json' \\\n  -d '[{\"model\": \"gpt-4o\", \"latency_ms\": 420, \"status\": \"ok\"}]'"</pre>
                    <p>"OpenTelemetry exporters can send OTLP/HTTP to " <code>"/v1/traces"</code> ". You can also register a model by hand in " <a href="/admin/models">"Admin: models"</a> "."</p>
                }.into_any()
            } else {
                view! { <p>"No model has been shared with you yet. Ask an administrator to grant you access."</p> }.into_any()
            }}
        </section>
    }
}
