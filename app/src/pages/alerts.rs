//! Alerting pages: `/alerts` (firing now, rules, silences, history, notification log),
//! `/alerts/rules/new` and `/alerts/rules/:id` (the rule editor with its preview), and
//! `/alerts/channels` (admins: where notifications go, with a send-test button).

use engine::types::{
    ALERT_METRICS, AlertChannel, AlertEvent, AlertKind, AlertNotification, AlertRule, AlertSilence, AlertState, CUSTOM_AGGREGATIONS, Role,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

use crate::api_alerts::{
    AcknowledgeAlert, CreateChannel, CreateSilence, DeleteAlertRule, DeleteChannel, DeleteSilence, SubmitAlertRule, TestChannel, alert_history,
    alert_states, get_alert_rule, list_alert_rules, list_channels, list_notifications, list_silences,
};
use crate::components::{ActionResult, ErrorNote, LocalTime, urlencode, use_me, Title, raw_text_content};

fn condition(r: &AlertRule) -> String {
    let (label, unit) = r.metric_label();
    let window = if r.window_secs % 3600 == 0 { format!("{}h", r.window_secs / 3600) } else { format!("{}m", r.window_secs / 60) };
    match r.kind {
        AlertKind::NoData => format!("no logs for {window}"),
        AlertKind::Anomaly => format!("{label} over {window} leaves its {} band (±{} MAD)", r.seasonality, r.sensitivity),
        AlertKind::Threshold => {
            let mut parts = Vec::new();
            if let Some(w) = r.warning {
                parts.push(format!("warn {} {w}{unit}", r.comparison));
            }
            if let Some(c) = r.critical {
                parts.push(format!("crit {} {c}{unit}", r.comparison));
            }
            format!("{label} over {window}: {}", parts.join(", "))
        }
    }
}

fn value_text(v: Option<f64>) -> String {
    match v {
        None => "no data".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string(),
    }
}

fn state_badge(state: &str, severity: &str) -> impl IntoView + use<> {
    let class = match (state, severity) {
        ("firing", "critical") => "badge bad",
        ("firing", _) => "badge warn",
        ("pending", _) => "badge muted",
        _ => "badge ok",
    };
    let text = if state == "ok" { "ok".to_string() } else { format!("{state} {severity}").trim().to_string() };
    view! { <span class=class>{text}</span> }
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let ack = ServerAction::<AcknowledgeAlert>::new();
    let silence = ServerAction::<CreateSilence>::new();
    let unsilence = ServerAction::<DeleteSilence>::new();
    let states = Resource::new(move || (ack.version().get(), silence.version().get(), unsilence.version().get()), |_| alert_states());
    let rules = Resource::new(|| (), |_| list_alert_rules());
    let silences = Resource::new(move || (silence.version().get(), unsilence.version().get()), |_| list_silences());
    // `?model=` narrows the history to one model (the dashboards' badges link here).
    let query = leptos_router::hooks::use_query_map();
    let model_filter = move || query.read().get("model").filter(|m| !m.is_empty());
    let history = Resource::new(move || (ack.version().get(), model_filter()), |(_, m)| alert_history(None, m));
    // Viewers may not read the notification log: not asked for, so the page answers 200
    // instead of taking the log's 403 (or, racing the history's answer, a random status).
    let notifications = Resource::new(
        || (),
        |_| async move {
            match crate::api::get_me().await? {
                Some(me) if me.role != Role::Viewer => list_notifications().await.map(Some),
                _ => Ok(None),
            }
        },
    );
    let me = use_me();
    view! {
        <Title text="Alerts · Modelwatch"/>
        <div class="page-head">
            <h1>"Alerts"</h1>
            <div class="head-actions">
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let role = me.await.ok().flatten().map(|m| m.role);
                    view! {
                        {matches!(role, Some(Role::Admin | Role::Editor)).then(|| view! { <a class="button" href="/alerts/rules/new" data-testid="new-rule">"New rule"</a> })}
                        {matches!(role, Some(Role::Admin)).then(|| view! { <a class="button secondary" href="/alerts/channels">"Channels"</a> })}
                    }
                })}
            </Suspense>
            </div>
        </div>

        <h2>"Firing now"</h2>
        <ActionResult value=ack.value().into() ok="Acknowledged: no repeat notifications until it resolves."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match states.await {
                    Ok(list) => {
                        let active: Vec<AlertState> = list.into_iter().filter(|s| s.state != "ok").collect();
                        if active.is_empty() {
                            view! { <p class="muted" data-testid="nothing-firing">"Nothing is firing."</p> }.into_any()
                        } else {
                            view! {
                                <table class="list" data-testid="firing">
                                    <thead><tr><th>"State"</th><th>"Rule"</th><th>"Model"</th><th>"Value"</th><th>"Since"</th><th>"Acknowledged"</th><th></th></tr></thead>
                                    <tbody>{active.into_iter().map(|s| view! { <StateRow s=s ack/> }).collect_view()}</tbody>
                                </table>
                            }.into_any()
                        }
                    }
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>

        <h2>"Rules"</h2>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match rules.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted" data-testid="no-alert-rules">"No alert rules yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="alert-rules">
                            <thead><tr><th>"Name"</th><th>"Models"</th><th>"Condition"</th><th>"For"</th><th>"State"</th></tr></thead>
                            <tbody>{list.into_iter().map(|r| view! {
                                <tr>
                                    <td><a href=format!("/alerts/rules/{}", r.id)>{r.name.clone()}</a></td>
                                    <td>{scope_text(&r)}</td>
                                    <td>{condition(&r)}</td>
                                    <td>{if r.for_secs > 0 { format!("{} min", r.for_secs / 60) } else { "at once".into() }}</td>
                                    <td>{if r.enabled { "enabled" } else { "disabled" }}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>

        <h2>"Silences"</h2>
        <section class="card">
            <ActionForm action=silence attr:class="row" attr:data-testid="create-silence">
                <label>"Rule id" <input name="rule_id" size="6" placeholder="any"/></label>
                <label>"Model" <input name="model" placeholder="any"/></label>
                <label>"For (minutes)" <input name="minutes" type="number" min="1" value="60" required/></label>
                <label>"Why" <input name="comment" required placeholder="deploying v2"/></label>
                <button type="submit">"Silence"</button>
            </ActionForm>
            <ActionResult value=silence.value().into() ok="Silenced."/>
            <ActionResult value=unsilence.value().into() ok="Silence removed."/>
        </section>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match silences.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No silences."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="silences">
                            <thead><tr><th>"Rule"</th><th>"Model"</th><th>"Until"</th><th>"Why"</th><th>"By"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|s: AlertSilence| view! {
                                <tr>
                                    <td>{s.rule_name.clone().unwrap_or_else(|| "any".into())}</td>
                                    <td>{s.model.clone().unwrap_or_else(|| "any".into())}</td>
                                    <td><LocalTime ms=Some(s.ends_ms)/></td>
                                    <td>{s.comment.clone()}</td>
                                    <td>{s.created_by.clone()}</td>
                                    <td><ActionForm action=unsilence><input type="hidden" name="id" value=s.id/><button type="submit" class="link">"End"</button></ActionForm></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>

        <h2>"History" {move || model_filter().map(|m| format!(" of {m}"))}</h2>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match history.await {
                    Ok(list) => view! { <History events=list/> }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>

        <h2>"Notifications"</h2>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match notifications.await {
                    Ok(Some(list)) => view! { <Notifications list=list/> }.into_any(),
                    Ok(None) => view! { <p class="muted">"The notification log is for editors and admins."</p> }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StateRow(s: AlertState, ack: ServerAction<AcknowledgeAlert>) -> impl IntoView {
    let firing = s.state == "firing";
    let acked = s.acked_by.clone();
    view! {
        <tr data-testid="alert-state">
            <td>{state_badge(&s.state, &s.severity)}{s.silenced.then(|| view! { <span class="badge muted">"silenced"</span> })}</td>
            <td><a href=format!("/alerts/rules/{}", s.rule_id)>{s.rule_name.clone()}</a></td>
            <td><a href=format!("/models/{}", urlencode(&s.model))>{s.model.clone()}</a></td>
            <td>{value_text(s.value)}</td>
            <td><LocalTime ms=Some(s.since_ms)/></td>
            <td>{acked.clone().map(|by| format!("by {by}")).unwrap_or_default()}</td>
            <td>
                {(firing && acked.is_none()).then(|| view! {
                    <ActionForm action=ack>
                        <input type="hidden" name="rule_id" value=s.rule_id/>
                        <input type="hidden" name="model" value=s.model.clone()/>
                        <button type="submit" class="secondary">"Acknowledge"</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}

#[component]
fn History(events: Vec<AlertEvent>) -> impl IntoView {
    if events.is_empty() {
        return view! { <p class="muted">"No alert has changed state yet."</p> }.into_any();
    }
    view! {
        <table class="list" data-testid="alert-history">
            <thead><tr><th>"When"</th><th>"Rule"</th><th>"Model"</th><th>"What"</th><th>"Value"</th><th></th></tr></thead>
            <tbody>{events.into_iter().map(|e| view! {
                <tr>
                    <td><LocalTime ms=Some(e.ts)/></td>
                    <td><a href=format!("/alerts/rules/{}", e.rule_id)>{e.rule_name.clone()}</a></td>
                    <td>{e.model.clone()}</td>
                    <td>{state_badge(if e.kind == "resolved" || e.kind == "ok" { "ok" } else { "firing" }, &e.severity)}" "{e.kind.clone()}</td>
                    <td>{value_text(e.value)}</td>
                    <td class="muted small">{e.detail.clone()}</td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

#[component]
fn Notifications(list: Vec<AlertNotification>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted">"No notifications sent yet."</p> }.into_any();
    }
    view! {
        <table class="list" data-testid="notifications">
            <thead><tr><th>"Queued"</th><th>"Channel"</th><th>"Event"</th><th>"Summary"</th><th>"Status"</th><th>"Attempts"</th><th>"Last error"</th></tr></thead>
            <tbody>{list.into_iter().map(|n| view! {
                <tr data-testid="notification" data-status=n.status.clone()>
                    <td><LocalTime ms=Some(n.created_ms)/></td>
                    <td>{n.channel.clone()}</td>
                    <td>{n.event.clone()}</td>
                    <td>{n.summary.clone()}</td>
                    <td>{n.status.clone()}</td>
                    <td>{n.attempts}</td>
                    <td class="small">{n.last_error.clone().unwrap_or_default()}</td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
    .into_any()
}

/// When the preview would have fired: the count, and the first and last few stretches.
fn preview_text(firing: &[(i64, i64)]) -> String {
    if firing.is_empty() {
        return "It would not have fired in this range.".into();
    }
    let span = |(a, b): &(i64, i64)| format!("{} – {}", engine::utc_minute_text(*a), engine::utc_minute_text(*b));
    let shown: Vec<String> = if firing.len() <= 6 {
        firing.iter().map(span).collect()
    } else {
        let mut v: Vec<String> = firing[..3].iter().map(span).collect();
        v.push(format!("… {} more …", firing.len() - 6));
        v.extend(firing[firing.len() - 3..].iter().map(span));
        v
    };
    format!("It would have fired {} time(s): {}", firing.len(), shown.join("; "))
}

/// `/alerts/rules/new` and `/alerts/rules/:id`.
#[component]
pub fn RuleEditPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let rule = Resource::new(id, |id| async move { if id == 0 { Ok(AlertRule::default()) } else { get_alert_rule(id).await } });
    let channels = Resource::new(|| (), |_| list_channels());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let channels = channels.await.unwrap_or_default();
                match rule.await {
                    Ok(r) => view! { <RuleEditor rule=r channels/> }.into_any(),
                    Err(e) => view! { <Title text="Not found · Modelwatch"/><ErrorNote error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The models of a rule, with its environment and provider filters.
fn scope_text(r: &AlertRule) -> String {
    let mut out = r.models.join(", ");
    if !r.environments.is_empty() {
        out.push_str(&format!(" · env {}", r.environments.join(", ")));
    }
    if !r.providers.is_empty() {
        out.push_str(&format!(" · via {}", r.providers.join(", ")));
    }
    out
}

#[component]
fn RuleEditor(rule: AlertRule, channels: Vec<AlertChannel>) -> impl IntoView {
    let submit = ServerAction::<SubmitAlertRule>::new();
    let delete = ServerAction::<DeleteAlertRule>::new();
    let is_new = rule.id == 0;
    let rule_id = rule.id;
    let history = Resource::new(move || rule_id, |id| async move { if id == 0 { Ok(Vec::new()) } else { alert_history(Some(id), None).await } });
    let (custom_agg, custom_name) = match rule.metric.strip_prefix("custom:").and_then(|r| r.split_once(':')) {
        Some((a, n)) => (a.to_string(), n.to_string()),
        None => ("avg".to_string(), String::new()),
    };
    let metric_is = {
        let m = rule.metric.clone();
        move |id: &str| if id == "custom" { m.starts_with("custom:") } else { m == id }
    };
    let kind = match rule.kind {
        AlertKind::Threshold => "threshold",
        AlertKind::Anomaly => "anomaly",
        AlertKind::NoData => "no_data",
    };
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let labels = rule.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    let title = if is_new { "New alert rule".to_string() } else { format!("Rule: {}", rule.name) };
    view! {
        <Title text=format!("{title} · Alerts · Modelwatch")/>
        <div class="page-head"><h1>{title.clone()}</h1><a href="/alerts">"All alerts"</a></div>
        <section class="card">
            <ActionForm action=submit attr:class="stack" attr:data-testid="rule-form">
                <input type="hidden" name="rule[id]" value=rule.id/>
                <div class="row">
                    <label>"Name" <input name="rule[name]" required value=rule.name.clone() placeholder="High error rate"/></label>
                    <label>"Models" <input name="rule[models]" required value=rule.models.join(", ") placeholder="gpt-4o, llama-* or *"/></label>
                    <label>"Environments" <input name="rule[environments]" value=rule.environments.join(", ") placeholder="any, or prod, eu-prod" title="Only models that log in these environments, and only those logs count"/></label>
                    <label>"Providers" <input name="rule[providers]" value=rule.providers.join(", ") placeholder="any, or openai, anthropic" title="Only models served by these providers, and only those logs count"/></label>
                    <label>"Kind"
                        <select name="rule[kind]">
                            <option value="threshold" selected=kind == "threshold">"threshold"</option>
                            <option value="anomaly" selected=kind == "anomaly">"anomaly (seasonal baseline)"</option>
                            <option value="no_data" selected=kind == "no_data">"no data"</option>
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" name="rule[enabled]" checked=rule.enabled/>" enabled"</label>
                </div>
                <div class="row">
                    <label>"Metric"
                        <select name="rule[metric]">
                            {ALERT_METRICS.iter().map(|(id, label, unit)| {
                                let text = if unit.is_empty() { label.to_string() } else { format!("{label} ({unit})") };
                                view! { <option value=*id selected=metric_is(id)>{text}</option> }
                            }).collect_view()}
                            <option value="custom" selected=metric_is("custom")>"custom metric…"</option>
                        </select>
                    </label>
                    <label>"Custom metric" <input name="rule[custom_name]" value=custom_name placeholder="gpu.utilization"/></label>
                    <label>"aggregated as"
                        <select name="rule[custom_agg]">
                            {CUSTOM_AGGREGATIONS.iter().map(|a| view! { <option value=*a selected=custom_agg == *a>{*a}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Window (min)" <input name="rule[window_minutes]" type="number" min="1" value=rule.window_secs / 60/></label>
                </div>
                <div class="row">
                    <label>"Comparison"
                        <select name="rule[comparison]">
                            {[">", ">=", "<", "<=", "<>"].into_iter().map(|c| view! { <option value=c selected=rule.comparison == c>{c}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>"Warning" <input name="rule[warning]" type="number" step="any" value=num(rule.warning)/></label>
                    <label>"Critical" <input name="rule[critical]" type="number" step="any" value=num(rule.critical)/></label>
                    <label>"For (min)" <input name="rule[for_minutes]" type="number" min="0" step="any" value=rule.for_secs as f64 / 60.0/></label>
                    <label>"Min requests" <input name="rule[min_requests]" type="number" min="0" value=rule.min_requests/></label>
                    <label>"No data means"
                        <select name="rule[no_data]">
                            {[("ok", "ok"), ("keep", "keep the state"), ("alert", "alert")].into_iter().map(|(v, t)| view! { <option value=v selected=rule.no_data == v>{t}</option> }).collect_view()}
                        </select>
                    </label>
                </div>
                <div class="row">
                    <label>"Anomaly sensitivity (MADs)" <input name="rule[sensitivity]" type="number" step="any" min="0.5" max="20" value=rule.sensitivity/></label>
                    <label>"Baseline"
                        <select name="rule[seasonality]">
                            <option value="day" selected=rule.seasonality == "day">"same time, previous 7 days"</option>
                            <option value="week" selected=rule.seasonality == "week">"same time, previous 4 weeks"</option>
                        </select>
                    </label>
                    <label>"Repeat every (min, 0 = never)" <input name="rule[repeat_minutes]" type="number" min="0" value=rule.repeat_secs / 60/></label>
                </div>
                <fieldset class="row">
                    <legend>"Notify"</legend>
                    {if channels.is_empty() {
                        view! { <span class="muted">"No channels yet (admins add them under Channels)."</span> }.into_any()
                    } else {
                        channels.into_iter().map(|c| {
                            let on = rule.channels.contains(&c.id);
                            view! { <label class="check"><input type="checkbox" name="rule[channels][]" value=c.id checked=on/>" "{format!("{} ({})", c.name, c.kind)}</label> }
                        }).collect_view().into_any()
                    }}
                </fieldset>
                <label>"Description" <textarea name="rule[description]" rows="2">{raw_text_content(&rule.description)}</textarea></label>
                <div class="row">
                    <label>"Runbook URL" <input name="rule[runbook_url]" type="url" value=rule.runbook_url.clone() size="40"/></label>
                    <label>"Labels" <input name="rule[labels]" value=labels placeholder="team=ml, tier=1"/></label>
                </div>
                <div class="row">
                    <label>"Preview over"
                        <select name="days"><option value="1">"24 hours"</option><option value="7">"7 days"</option></select>
                    </label>
                    <button type="submit" name="intent" value="preview" class="secondary" data-testid="preview">"Preview"</button>
                    <button type="submit" name="intent" value="save" data-testid="save-rule">"Save rule"</button>
                </div>
            </ActionForm>
            {move || match submit.value().get() {
                Some(Ok(out)) => view! {
                    {out.saved.map(|r| view! { <p class="ok" role="status" data-testid="rule-saved">"Rule saved. "<a href=format!("/alerts/rules/{}", r.id)>"Open it"</a></p> })}
                    {out.preview.map(|p| view! {
                        <div class="preview" data-testid="rule-preview">
                            <h3>{format!("Preview on {}", p.model)}</h3>
                            <div inner_html=p.chart.svg.clone()></div>
                            <ul class="legend">{p.chart.legend.iter().map(|(name, color)| view! {
                                <li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill=color.clone()/></svg>{name.clone()}</li>
                            }).collect_view()}</ul>
                            <p class="muted" data-testid="preview-firing">{preview_text(&p.firing)}</p>
                        </div>
                    })}
                }.into_any(),
                Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
                None => ().into_any(),
            }}
        </section>
        {(!is_new).then(|| view! {
            <section class="card">
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=rule_id/>
                    <button type="submit" class="danger">"Delete rule"</button>
                </ActionForm>
                <ActionResult value=delete.value().into() ok="Rule deleted."/>
            </section>
            <h2>"History of this rule"</h2>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match history.await {
                        Ok(list) => view! { <History events=list/> }.into_any(),
                        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    }
                })}
            </Transition>
        })}
    }
}

/// `/alerts/channels` (admins).
#[component]
pub fn ChannelsPage() -> impl IntoView {
    let create = ServerAction::<CreateChannel>::new();
    let delete = ServerAction::<DeleteChannel>::new();
    let test = ServerAction::<TestChannel>::new();
    let channels = Resource::new(move || (create.version().get(), delete.version().get()), |_| list_channels());
    let notifications = Resource::new(move || test.version().get(), |_| list_notifications());
    view! {
        <Title text="Alert channels · Modelwatch"/>
        <div class="page-head"><h1>"Alert channels"</h1><a href="/alerts">"All alerts"</a></div>
        <section class="card">
            <h2>"Add a channel"</h2>
            <ActionForm action=create attr:class="stack" attr:data-testid="create-channel">
                <div class="row">
                    <label>"Name" <input name="name" required placeholder="on-call"/></label>
                    <label>"Kind"
                        <select name="kind">
                            <option value="webhook">"webhook (signed)"</option>
                            <option value="slack">"Slack incoming webhook"</option>
                            <option value="pagerduty">"PagerDuty (Events API v2)"</option>
                            <option value="email">"e-mail"</option>
                        </select>
                    </label>
                </div>
                <div class="row">
                    <label>"URL (webhook, Slack; PagerDuty: optional)" <input name="url" size="40" placeholder="https://hooks.slack.com/services/…"/></label>
                    <label>"Secret (webhook: empty = generate; PagerDuty: routing key)" <input name="secret" size="30"/></label>
                    <label>"E-mail to" <input name="to" placeholder="oncall@example.com"/></label>
                </div>
                <button type="submit">"Add channel"</button>
            </ActionForm>
            {move || match create.value().get() {
                Some(Ok(c)) => view! {
                    <p class="ok" role="status" data-testid="channel-created">"Channel added."
                        {(c.kind == "webhook").then(|| view! { " Signing secret (shown once): " <code data-testid="webhook-secret">{c.secret.clone()}</code> })}
                    </p>
                }.into_any(),
                Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
                None => ().into_any(),
            }}
        </section>
        <ActionResult value=test.value().into() ok="Test notification queued; it is sent within seconds (see below)."/>
        <ActionResult value=delete.value().into() ok="Channel deleted."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match channels.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No channels yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="channels">
                            <thead><tr><th>"Name"</th><th>"Kind"</th><th>"Where"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|c| view! {
                                <tr data-testid="channel">
                                    <td>{c.name.clone()}</td>
                                    <td>{c.kind.clone()}</td>
                                    <td><code>{if c.kind == "email" { c.to.join(", ") } else { c.url.clone() }}</code></td>
                                    <td class="actions">
                                        <ActionForm action=test><input type="hidden" name="id" value=c.id/><button type="submit" class="secondary" data-testid="send-test">"Send test"</button></ActionForm>
                                        <ActionForm action=delete><input type="hidden" name="id" value=c.id/><button type="submit" class="danger">"Delete"</button></ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
        <h2>"Recent notifications"</h2>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match notifications.await {
                    Ok(list) => view! { <Notifications list=list/> }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}
