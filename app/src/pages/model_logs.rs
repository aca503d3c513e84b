//! The log explorer: `/models/{model}/logs?…` for one model (dashboards link here with a slice
//! as filters), `/logs?…` for every model the user may see.
//! The URL holds the range, every filter and the page cursor, so a search can be shared; the
//! filter form is a plain GET form and pages are links, so it all works without JavaScript.

use engine::LogView;
use engine::search::{LEVELS, NONE_VALUE, encode_pairs};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use leptos_router::params::ParamsMap;

use crate::api_logs::{CountLogsToDelete, DeleteLogs, DeleteSavedSearch, LogsPage, SaveSearch, saved_searches, search_logs};
use crate::components::{ErrorNote, urlencode, use_me, Title};
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
        "q" => "text".into(),
        other => other.strip_prefix("meta:").map(|k| format!("metadata {k}")).unwrap_or_else(|| other.replace('_', " ")),
    }
}

/// The page's URL pairs with a non-empty value whose key `keep` accepts, in URL order.
fn pairs_of(q: &ParamsMap, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    q.into_iter().filter(|(k, v)| keep(k) && !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The search without its page cursor, as a query string (what saving and deleting act on).
fn search_query(q: &ParamsMap) -> String {
    encode_pairs(&pairs_of(q, |k| k != "before"))
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
    let path = move || if name().is_empty() { "/logs".to_string() } else { format!("/models/{}/logs", urlencode(&name())) };
    let one = move || !name().is_empty();
    let tick = refresh_ticker();
    let data = Resource::new(
        move || (name(), query.read().to_query_string(), tick.get()),
        |(name, q, _)| search_logs(name, q.trim_start_matches('?').to_string()),
    );
    view! {
        <Title text=move || format!("Logs · {} · Modelwatch", if one() { name() } else { "All models".into() })/>
        <div class="page-head">
            <div>
                <h1>"Logs"</h1>
                <code data-testid="logs-model">{move || if one() { name() } else { "all models".into() }}</code>
            </div>
            <div class="tail-head">
                {move || view! { <ModelPicker current=name()/> }}
                {move || one().then(|| view! { <a class="button-link" href=format!("/models/{}", urlencode(&name()))>"Dashboard"</a> })}
            </div>
        </div>
        {move || view! { <RangeBar path=path() default_range="1h"/> }}
        {move || view! { <FilterForm path=path()/> }}
        {move || one().then(|| view! { <SavedSearches model=name() path=path()/> })}
        {move || view! { <LiveTail model=name()/> }}
        {move || one().then(|| view! { <DeleteLogsBox model=name()/> })}
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
            <label class="text-search">"Text"
                <input type="search" name="q" value=v("q") placeholder="words or \"a phrase\" in message, error or payload" data-testid="log-q"/>
            </label>
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
        format!(
            "At least {} matching logs: counted in the newest 200k logs of the range, since {} (narrow the range for an exact count)",
            format::compact(page.count as f64),
            data.counted_since.clone().unwrap_or_default()
        )
    };
    let newest = q.get("before").map(|_| with_query(&path, &q, &[]));
    // Export: this search over the resolved range, every page.
    let export = |format: &str| {
        let mut qs = vec![("model".to_string(), page.model.clone()), ("from".into(), page.from.to_string()), ("to".into(), page.to.to_string())];
        qs.extend(pairs_of(&q, |k| !is_page_key(k)));
        qs.push(("format".into(), format.to_string()));
        format!("/api/v1/logs/export?{}", encode_pairs(&qs))
    };
    let (export_csv, export_ndjson) = (export("csv"), export("ndjson"));
    let older = page.next.clone().map(|c| with_query(&path, &q, &[("before", Some(c))]));
    let empty = page.logs.is_empty();
    let all = page.model.is_empty();
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
                {all.then(|| view! { <td><a href=format!("/models/{}/logs", urlencode(&l.model))>{l.model.clone()}</a></td> })}
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
        <p class="muted range-label">
            <strong data-testid="log-count">{count}</strong>" · "{data.range_label}" · Export "
            <a href=export_csv rel="external" download="" data-testid="export-csv">"CSV"</a>" "
            <a href=export_ndjson rel="external" download="">"NDJSON"</a>
        </p>
        <div class="panels single"><ChartPanel chart=data.histogram logs_base=logs_base/></div>
        {if empty {
            view! { <p class="muted" data-testid="no-logs">"No stored logs match. Widen the range or remove a filter (sampled or dropped records are counted on the dashboard but not stored)."</p> }.into_any()
        } else {
            view! {
                <table class="list logs" data-testid="log-list">
                    <thead><tr>
                        <th>"Time"</th><th>"Status"</th><th>"Level"</th>{all.then(|| view! { <th>"Model"</th> })}<th>"Provider"</th><th>"HTTP"</th>
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

/// Rows the live tail keeps in the page; older ones drop off.
const TAIL_KEEP: usize = 200;

/// `HH:MM:SS.mmm` in UTC, the same on the server and in the browser.
fn utc_clock(ms: i64) -> String {
    let day = ms.rem_euclid(86_400_000);
    format!("{:02}:{:02}:{:02}.{:03}", day / 3_600_000, day / 60_000 % 60, day / 1000 % 60, day % 1000)
}

/// New logs matching the current filters as they arrive (server-sent events from
/// `/api/v1/logs/tail`), newest on top, at most `TAIL_KEEP`. Pausing holds new rows back
/// until resumed. Needs JavaScript.
#[component]
fn LiveTail(model: String) -> impl IntoView {
    let query = use_query_map();
    let running = RwSignal::new(false);
    let paused = RwSignal::new(false);
    let rows = RwSignal::new(Vec::<LogView>::new());
    let held = RwSignal::new(Vec::<LogView>::new());
    let sampled = RwSignal::new(false);
    // Set once the server has answered: logs stored from then on will show.
    let ready = RwSignal::new(false);
    let model = StoredValue::new(model);
    let url = {
        move || {
            let mut qs = vec![("model".to_string(), model.get_value())];
            qs.extend(pairs_of(&query.read_untracked(), |k| !is_page_key(k)));
            format!("/api/v1/logs/tail?{}", encode_pairs(&qs))
        }
    };
    #[cfg(feature = "hydrate")]
    let source = StoredValue::new_local(None::<web_sys::EventSource>);
    #[cfg(feature = "hydrate")]
    on_cleanup(move || {
        if let Some(es) = source.try_update_value(|s| s.take()).flatten() {
            es.close();
        }
    });
    let start = move |_| {
        #[cfg(feature = "hydrate")]
        {
            source.update_value(|s| {
                if let Some(old) = s.take() {
                    old.close();
                }
                *s = tail::open(&url(), rows, held, paused, sampled, ready);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = url();
        rows.set(Vec::new());
        held.set(Vec::new());
        sampled.set(false);
        ready.set(false);
        paused.set(false);
        running.set(true);
    };
    let stop = move |_| {
        #[cfg(feature = "hydrate")]
        source.update_value(|s| {
            if let Some(es) = s.take() {
                es.close();
            }
        });
        running.set(false);
    };
    let toggle_pause = move |_| {
        if paused.get_untracked() {
            let mut newer = held.get_untracked();
            held.set(Vec::new());
            rows.update(|r| {
                newer.append(r);
                newer.truncate(TAIL_KEEP);
                *r = newer;
            });
        }
        paused.update(|p| *p = !*p);
    };
    view! {
        <section class="card live-tail" data-testid="live-tail">
            <div class="tail-head">
                <h2>"Live tail"</h2>
                {move || if running.get() {
                    view! {
                        <span class="badge ok" data-testid="tail-status">{move || if !ready.get() { "connecting…" } else if paused.get() { "paused" } else { "live" }}</span>
                        <button type="button" on:click=toggle_pause data-testid="tail-pause">{move || if paused.get() { format!("Resume ({} new)", held.get().len()) } else { "Pause".to_string() }}</button>
                        <button type="button" class="link" on:click=stop>"Stop"</button>
                    }.into_any()
                } else {
                    view! {
                        <button type="button" on:click=start data-testid="tail-start">"Start"</button>
                        <span class="muted">"New logs matching these filters, as they arrive (needs JavaScript)."</span>
                    }.into_any()
                }}
            </div>
            {move || sampled.get().then(|| view! {
                <p class="muted" data-testid="tail-sampled">"More logs arrive than the tail shows: it keeps the newest 200 of each half second."</p>
            })}
            {move || (running.get() && !rows.with(|r| r.is_empty())).then(|| view! {
                <table class="list logs" data-testid="tail-list">
                    <thead><tr><th>"Time (UTC)"</th><th>"Status"</th><th>"Provider"</th><th>"Latency"</th><th>"User"</th><th>"Message"</th></tr></thead>
                    <tbody>
                        <For each=move || rows.get() key=|l| l.id let:l>
                            <tr data-log-id=l.id.to_string()>
                                <td class="nowrap"><a href=format!("/logs/{}", l.id)>{utc_clock(l.timestamp)}</a></td>
                                <td><span class=if l.status == "error" { "badge bad" } else { "badge ok" }>{l.status.clone()}</span></td>
                                <td>{l.provider.clone()}</td>
                                <td class="num">{format::opt_value(l.latency_ms, Unit::Millis)}</td>
                                <td>{l.user_id.clone().unwrap_or_default()}</td>
                                <td class="message">{l.error_message.clone().or(l.message.clone()).unwrap_or_default()}</td>
                            </tr>
                        </For>
                    </tbody>
                </table>
            })}
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod tail {
    use engine::LogView;
    use leptos::prelude::*;
    use leptos::wasm_bindgen::JsCast;
    use leptos::wasm_bindgen::closure::Closure;

    use super::TAIL_KEEP;

    /// Opens the event stream; rows go to `held` while paused.
    pub fn open(
        url: &str,
        rows: RwSignal<Vec<LogView>>,
        held: RwSignal<Vec<LogView>>,
        paused: RwSignal<bool>,
        sampled: RwSignal<bool>,
        ready: RwSignal<bool>,
    ) -> Option<web_sys::EventSource> {
        let es = web_sys::EventSource::new(url).ok()?;
        let on_log = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            let Ok(log) = serde_json::from_str::<LogView>(&text) else { return };
            let target = if paused.get_untracked() { held } else { rows };
            target.update(|v| {
                v.insert(0, log);
                v.truncate(TAIL_KEEP);
            });
        });
        es.add_event_listener_with_callback("log", on_log.as_ref().unchecked_ref()).ok()?;
        on_log.forget();
        let on_sampled = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| sampled.set(true));
        es.add_event_listener_with_callback("sampled", on_sampled.as_ref().unchecked_ref()).ok()?;
        on_sampled.forget();
        let on_ready = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_: web_sys::MessageEvent| ready.set(true));
        es.add_event_listener_with_callback("ready", on_ready.as_ref().unchecked_ref()).ok()?;
        on_ready.forget();
        Some(es)
    }
}

/// The user's saved searches for this model (links), and a form to save the current one.
#[component]
fn SavedSearches(model: String, path: String) -> impl IntoView {
    let query = use_query_map();
    let save = ServerAction::<SaveSearch>::new();
    let delete = ServerAction::<DeleteSavedSearch>::new();
    let m = model.clone();
    let list = Resource::new(move || (save.version().get(), delete.version().get()), move |_| saved_searches(m.clone()));
    // The current search without the page cursor.
    let current = move || search_query(&query.read());
    view! {
        <section class="card saved" data-testid="saved-searches">
            <div class="tail-head">
                <h2>"Saved searches"</h2>
                <Transition fallback=|| ()>
                    {move || {
                        let path = path.clone();
                        Suspend::new(async move {
                            match list.await {
                                Ok(items) if items.is_empty() => view! { <span class="muted">"None yet."</span> }.into_any(),
                                Ok(items) => items.into_iter().map(|s| {
                                    let href = if s.query.is_empty() { path.clone() } else { format!("{path}?{}", s.query) };
                                    let label = format!("Delete saved search {}", s.name);
                                    view! {
                                        <span class="chip" data-saved=s.name.clone()>
                                            <a href=href>{s.name.clone()}</a>
                                            <ActionForm action=delete attr:class="inline">
                                                <input type="hidden" name="id" value=s.id/>
                                                <button type="submit" class="link" aria-label=label>"×"</button>
                                            </ActionForm>
                                        </span>
                                    }
                                }).collect_view().into_any(),
                                Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                            }
                        })
                    }}
                </Transition>
            </div>
            <ActionForm action=save attr:class="row" attr:data-testid="save-search">
                <input type="hidden" name="model" value=model.clone()/>
                <input type="hidden" name="query" value=current/>
                <label>"Save this search as" <input name="name" required maxlength="100" placeholder="timeouts on openai"/></label>
                <button type="submit">"Save"</button>
            </ActionForm>
            {move || match save.value().get() {
                Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
                _ => ().into_any(),
            }}
        </section>
    }
}

/// Admins: delete the stored logs this search matches (data-subject requests). Two steps: count,
/// then type the count to confirm.
#[component]
fn DeleteLogsBox(model: String) -> impl IntoView {
    let me = use_me();
    let query = use_query_map();
    let count = ServerAction::<CountLogsToDelete>::new();
    let delete = ServerAction::<DeleteLogs>::new();
    let current = move || search_query(&query.read());
    let model = StoredValue::new(model);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let admin = matches!(me.await, Ok(Some(m)) if m.role == engine::Role::Admin);
                admin.then(|| view! {
                    <details class="card danger-zone" data-testid="delete-logs">
                        <summary>"Delete matching logs (admins)"</summary>
                        <p class="muted">"Removes the stored logs this search matches, with their payloads, for good (for example a data-subject request: filter by user). Dashboard totals keep counting them; a search by user also removes that user from the user breakdown."</p>
                        <ActionForm action=count attr:class="row">
                            <input type="hidden" name="model" value=model.get_value()/>
                            <input type="hidden" name="query" value=current/>
                            <button type="submit">"Count logs to delete"</button>
                        </ActionForm>
                        {move || match count.value().get() {
                            Some(Ok(n)) => view! {
                                <p data-testid="delete-count">{format!("{n} stored logs match this search.")}</p>
                                <ActionForm action=delete attr:class="row" attr:data-testid="delete-confirm">
                                    <input type="hidden" name="model" value=model.get_value()/>
                                    <input type="hidden" name="query" value=current/>
                                    <label>"Type the number to confirm" <input name="confirm" inputmode="numeric" required/></label>
                                    <button type="submit" class="danger">"Delete for good"</button>
                                </ActionForm>
                            }.into_any(),
                            Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
                            None => ().into_any(),
                        }}
                        {move || match delete.value().get() {
                            Some(Ok(n)) => view! { <p class="ok" role="status" data-testid="deleted">{format!("Deleted {n} logs.")}</p> }.into_any(),
                            Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
                            None => ().into_any(),
                        }}
                    </details>
                })
            })}
        </Suspense>
    }
}

/// Switches the explorer to another model the user may see, keeping range and filters (a GET
/// form to `/logs`, which redirects; no JavaScript needed).
#[component]
fn ModelPicker(current: String) -> impl IntoView {
    let query = use_query_map();
    let models = Resource::new(|| (), |_| crate::api::list_models());
    let hidden = pairs_of(&query.read_untracked(), |k| k != "before");
    view! {
        <form method="get" action="/logs/open" class="row" data-testid="model-picker">
            {hidden.into_iter().map(|(k, v)| view! { <input type="hidden" name=k value=v/> }).collect_view()}
            <Suspense fallback=|| ()>
                {move || {
                    let current = current.clone();
                    Suspend::new(async move {
                        let list = models.await.unwrap_or_default();
                        view! {
                            <select name="model" aria-label="Model">
                                <option value="" selected=current.is_empty()>"All models"</option>
                                {list.into_iter().map(|m| {
                                    let selected = m.name == current;
                                    view! { <option value=m.name.clone() selected=selected>{m.name.clone()}</option> }
                                }).collect_view()}
                            </select>
                        }
                    })
                }}
            </Suspense>
            <button type="submit">"Open"</button>
        </form>
    }
}
