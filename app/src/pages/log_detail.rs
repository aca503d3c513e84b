//! `/logs/{id}`: one log with every field, its metadata, and the payload (as a conversation
//! when it is a chat) for viewers allowed to see payloads. Without that permission the server
//! never sends the payload; the page says it is withheld.

use engine::LogView;
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api_logs::{LogPage, log_detail};
use crate::components::{ErrorNote, urlencode, Title};
use crate::format::{self, Unit};
use crate::payload_view::{Shown, show};

#[component]
pub fn LogDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
    let data = Resource::new(id, log_detail);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <Detail d=d/> }.into_any(),
                    Err(e) => view! { <Title text="Not found · Modelwatch"/><ErrorNote error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

fn row(label: &'static str, value: Option<String>) -> impl IntoView {
    value.filter(|v| !v.is_empty()).map(|v| view! { <tr><th>{label}</th><td>{v}</td></tr> })
}

#[component]
fn Detail(d: LogPage) -> impl IntoView {
    let l: LogView = d.log;
    let logs = format!("/models/{}/logs", urlencode(&l.model));
    // The same trace, or the same session, around this log's time.
    let around = |key: &str, value: &str| {
        format!("{logs}?from={}&to={}&{key}={}", l.timestamp - 3_600_000, l.timestamp + 3_600_000, urlencode(value))
    };
    let trace_link = l.trace_id.as_deref().map(|t| around("trace_id", t));
    let session_link = l.session_id.as_deref().map(|s| around("session_id", s));
    let metadata: Vec<(String, String)> = l
        .metadata
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    let tokens = |v: Option<i64>| v.map(|n| n.to_string());
    let status_class = if l.status == "error" { "badge bad" } else { "badge ok" };
    view! {
        <Title text=format!("Log {} · {} · Modelwatch", l.id, l.model)/>
        <div class="page-head">
            <div>
                <h1>"Log " <code data-testid="log-id">{l.id}</code></h1>
                <span class=status_class data-testid="log-status">{l.status.clone()}</span>
                {l.redacted.then(|| view! { " " <span class="badge" data-testid="redacted" title="Personal data was replaced by placeholders such as [EMAIL] before storing">"redacted"</span> })}
            </div>
            <a class="button-link" href=logs.clone()>"All logs of " {l.model.clone()}</a>
        </div>
        <div class="detail-grid">
            <section class="card">
                <h2>"Call"</h2>
                // Rows inside <tbody>: the browser's parser adds one around bare rows, and a
                // server-rendered page would then not hydrate.
                <table class="fields" data-testid="log-fields"><tbody>
                    {row("Time", Some(d.time.clone()))}
                    {row("Model", Some(l.model.clone()))}
                    {row("Provider", Some(l.provider.clone()))}
                    {row("Version", Some(l.model_version.clone()))}
                    {row("Environment", Some(l.environment.clone()))}
                    {row("Operation", Some(l.operation.clone()))}
                    {row("Level", Some(l.level.clone()))}
                    {row("HTTP status", l.http_status.map(|s| s.to_string()))}
                    {row("Error type", l.error_type.clone())}
                    {row("Error", l.error_message.clone())}
                    {row("Message", l.message.clone())}
                    {row("Latency", l.latency_ms.map(|v| format::value(v, Unit::Millis)))}
                    {row("Time to first token", l.ttft_ms.map(|v| format::value(v, Unit::Millis)))}
                    {row("Input tokens", tokens(l.input_tokens))}
                    {row("Output tokens", tokens(l.output_tokens))}
                    {row("Cached tokens", tokens(l.cached_tokens))}
                    {row("Cost", l.cost_usd.map(|v| format::value(v, Unit::Usd)))}
                    {row("Cache hit", Some(if l.cache_hit { "yes" } else { "no" }.to_string()))}
                    {row("Feedback", l.feedback.map(|f| match f { 1 => "positive".to_string(), -1 => "negative".into(), _ => "neutral".into() }))}
                    {row("User", l.user_id.clone())}
                </tbody></table>
            </section>
            <section class="card">
                <h2>"Context"</h2>
                <table class="fields"><tbody>
                    {l.trace_id.clone().map(|t| view! { <tr><th>"Trace"</th><td><code>{t}</code> " " <a href=trace_link.clone().unwrap_or_default()>"logs of this trace"</a></td></tr> })}
                    {row("Span", l.span_id.clone())}
                    {l.session_id.clone().map(|s| view! { <tr><th>"Session"</th><td><code>{s}</code> " " <a href=session_link.clone().unwrap_or_default()>"logs of this session"</a></td></tr> })}
                </tbody></table>
                <h3>"Metadata"</h3>
                {if metadata.is_empty() {
                    view! { <p class="muted">"None."</p> }.into_any()
                } else {
                    view! {
                        <table class="fields" data-testid="log-metadata"><tbody>
                            {metadata.into_iter().map(|(k, v)| {
                                let href = format!("{logs}?from={}&to={}&meta:{}={}", l.timestamp - 3_600_000, l.timestamp + 3_600_000, urlencode(&k), urlencode(&v));
                                view! { <tr><th>{k}</th><td><a href=href>{v}</a></td></tr> }
                            }).collect_view()}
                        </tbody></table>
                    }.into_any()
                }}
            </section>
        </div>
        <section class="card" data-testid="payload">
            <h2>"Payload"</h2>
            {if l.payload_withheld {
                view! { <p class="muted" data-testid="payload-withheld">"This log has a request and response, but you may not view payloads of this model. An admin can grant “view payloads” for it."</p> }.into_any()
            } else if !l.has_payload {
                view! { <p class="muted">"No payload was stored (capture off for this model or key, or the record had none)."</p> }.into_any()
            } else {
                view! {
                    {l.payload_truncated.then(|| view! { <p class="muted">"Truncated at the configured payload size limit."</p> })}
                    <h3>"Request"</h3>
                    <PayloadView text=l.request.clone().unwrap_or_default() testid="payload-request"/>
                    <h3>"Response"</h3>
                    <PayloadView text=l.response.clone().unwrap_or_default() testid="payload-response"/>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn PayloadView(text: String, testid: &'static str) -> impl IntoView {
    if text.is_empty() {
        return view! { <p class="muted" data-testid=testid>"Empty."</p> }.into_any();
    }
    match show(&text) {
        Shown::Chat(messages) => view! {
            <div class="conversation" data-testid=testid>
                {messages.into_iter().map(|(role, content)| {
                    let class = format!("msg role-{}", role.replace(|c: char| !c.is_ascii_alphanumeric(), ""));
                    view! {
                    <div class=class>
                        <span class="role">{role}</span>
                        <pre>{content}</pre>
                    </div>
                    }
                }).collect_view()}
                <details><summary>"Raw"</summary><pre>{text.clone()}</pre></details>
            </div>
        }.into_any(),
        Shown::Json(pretty) => view! { <pre class="payload json" data-testid=testid>{pretty}</pre> }.into_any(),
        Shown::Text(t) => view! { <pre class="payload" data-testid=testid>{t}</pre> }.into_any(),
    }
}
