//! `/models/{model}/logs?…`: where dashboard charts and breakdown rows link to. Until the log
//! explorer lands, it shows the filter the link carries and the most recent matching logs of
//! the time range (the REST lookup filters by time only; the other filters are listed).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api_dashboards::recent_logs;
use crate::components::{urlencode, ErrorNote, LocalTime};

#[component]
pub fn ModelLogsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let name = move || {
        let raw = params.read().get("name").unwrap_or_default();
        urlencoding::decode(&raw).map(|s| s.into_owned()).unwrap_or(raw)
    };
    let logs = Resource::new(
        move || {
            let q = query.read();
            (name(), q.get("from").and_then(|v| v.parse().ok()), q.get("to").and_then(|v| v.parse().ok()))
        },
        |(name, from, to)| recent_logs(name, from, to),
    );
    let filters = move || {
        query
            .get()
            .into_iter()
            .filter(|(k, _)| k != "from" && k != "to")
            .map(|(k, v)| {
                let k = k.to_string();
                view! { <span class="chip" data-filter=k.clone()>{k.clone()}" = "{v.clone()}</span> }
            })
            .collect_view()
    };
    view! {
        <Title text=move || format!("Logs · {} · Modelwatch", name())/>
        <div class="page-head">
            <h1>"Logs"</h1>
            <a href=move || format!("/models/{}", urlencode(&name()))>"Back to the dashboard"</a>
        </div>
        <section class="card" data-testid="log-filter">
            <h2>"Filter"</h2>
            <p>
                <span class="chip">"model = "{name}</span>
                {move || {
                    let q = query.read();
                    q.get("from").zip(q.get("to")).map(|(f, t)| view! {
                        <span class="chip" data-filter="time">
                            <LocalTime ms=f.parse().ok()/>" – "<LocalTime ms=t.parse().ok()/>
                        </span>
                    })
                }}
                {filters}
            </p>
        </section>
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match logs.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No logs stored in this time range."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="log-list">
                            <thead><tr><th>"Time"</th><th>"Status"</th><th>"Provider"</th><th>"Latency"</th><th>"Tokens"</th><th>"Message"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|l| view! {
                                    <tr>
                                        <td><LocalTime ms=Some(l.timestamp)/></td>
                                        <td>{l.status.clone()}{l.error_type.clone().map(|t| format!(" ({t})"))}</td>
                                        <td>{l.provider.clone()}</td>
                                        <td>{l.latency_ms.map(|v| crate::format::value(v, crate::format::Unit::Millis))}</td>
                                        <td>{l.input_tokens.unwrap_or(0) + l.output_tokens.unwrap_or(0)}</td>
                                        <td>{l.message.clone().or(l.error_message.clone())}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
