//! Admin: ingest rules (drop, sample, redact) and the price table. Rules apply to the next
//! ingested batch; KPIs keep counting every record whatever the rules decide.

use engine::{IngestRule, Price, RuleAction};
use leptos::prelude::*;

use crate::api_ingest::{DeletePrice, DeleteRule, SavePrice, SaveRule, list_prices, list_rules};
use crate::components::{ActionResult, ErrorNote, Title};

#[component]
pub fn AdminIngest() -> impl IntoView {
    let save = ServerAction::<SaveRule>::new();
    let delete = ServerAction::<DeleteRule>::new();
    let save_price = ServerAction::<SavePrice>::new();
    let delete_price = ServerAction::<DeletePrice>::new();
    let rules = Resource::new(move || (save.version().get(), delete.version().get()), |_| list_rules());
    let prices = Resource::new(move || (save_price.version().get(), delete_price.version().get()), |_| list_prices());
    view! {
        <Title text="Ingest rules · Admin · Modelwatch"/>
        <h1>"Ingest rules"</h1>
        <p class="muted">"Rules run before anything is stored, in position order. Dashboards and alerts still count every record: drop and sample decide only which raw rows and payloads are kept."</p>
        <section class="card">
            <h2>"Add a rule"</h2>
            <ActionForm action=save attr:class="stack" attr:data-testid="create-rule">
                <div class="row">
                    <label>"Name" <input name="name" required placeholder="redact PII"/></label>
                    <label>"Kind"
                        <select name="kind">
                            <option value="redact">"redact personal data"</option>
                            <option value="drop">"drop"</option>
                            <option value="sample">"sample"</option>
                        </select>
                    </label>
                    <label>"Models" <input name="model" placeholder="empty: all; gpt-4o or gpt-*"/></label>
                    <label>"Position" <input name="position" type="number" value="100"/></label>
                    <label class="check"><input type="checkbox" name="enabled" checked/>" enabled"</label>
                </div>
                <fieldset class="row">
                    <legend>"Redact"</legend>
                    <label class="check"><input type="checkbox" name="pii_email" checked/>" e-mail"</label>
                    <label class="check"><input type="checkbox" name="pii_phone" checked/>" phone"</label>
                    <label class="check"><input type="checkbox" name="pii_credit_card" checked/>" card number"</label>
                    <label class="check"><input type="checkbox" name="pii_secret" checked/>" tokens and keys"</label>
                    <label class="check"><input type="checkbox" name="pii_ip_address" checked/>" IP address"</label>
                    <label>"Custom name" <input name="custom_name" placeholder="employee_id"/></label>
                    <label>"Custom regex" <input name="custom_regex" placeholder="EMP-\\d{5}"/></label>
                </fieldset>
                <fieldset class="row">
                    <legend>"Drop when all given conditions hold"</legend>
                    <label>"Levels" <input name="levels" placeholder="debug, trace"/></label>
                    <label>"Status"
                        <select name="status"><option value="">"any"</option><option value="ok">"ok"</option><option value="error">"error"</option></select>
                    </label>
                    <label>"Metadata key" <input name="metadata_key"/></label>
                    <label>"equals" <input name="metadata_value" placeholder="any value"/></label>
                </fieldset>
                <fieldset class="row">
                    <legend>"Sample (errors are always kept)"</legend>
                    <label>"Keep %" <input name="keep_percent" type="number" step="any" min="0" max="100" placeholder="10"/></label>
                    <label>"Always keep calls slower than (ms)" <input name="slow_ms" type="number" step="any" min="0"/></label>
                </fieldset>
                <button type="submit">"Save rule"</button>
            </ActionForm>
            <ActionResult value=save.value().into() ok="Rule saved; it applies from the next batch."/>
        </section>
        <ActionResult value=delete.value().into() ok="Rule deleted."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match rules.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted" data-testid="no-rules">"No rules: every record is stored as sent."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="rules">
                            <thead><tr><th>"#"</th><th>"Name"</th><th>"Models"</th><th>"What it does"</th><th>"State"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|r| view! { <RuleRow rule=r delete/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>

        <h2>"Prices"</h2>
        <p class="muted">"USD per million tokens, used when a record carries no cost. A pattern ending in * matches every model name starting with the rest."</p>
        <section class="card">
            <ActionForm action=save_price attr:class="row" attr:data-testid="save-price">
                <label>"Model or pattern" <input name="pattern" required placeholder="my-finetune*"/></label>
                <label>"Input" <input name="input_per_mtok" type="number" step="any" min="0" required/></label>
                <label>"Output" <input name="output_per_mtok" type="number" step="any" min="0" required/></label>
                <label>"Cached input" <input name="cached_input_per_mtok" type="number" step="any" min="0" placeholder="= input"/></label>
                <button type="submit">"Save price"</button>
            </ActionForm>
            <ActionResult value=save_price.value().into() ok="Price saved."/>
            <ActionResult value=delete_price.value().into() ok="Price deleted."/>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match prices.await {
                    Ok(list) => view! {
                        <table class="list" data-testid="prices">
                            <thead><tr><th>"Pattern"</th><th>"Input"</th><th>"Output"</th><th>"Cached input"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|p| view! { <PriceRow price=p delete=delete_price/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

fn describe(action: &RuleAction) -> String {
    match action {
        RuleAction::Drop { levels, status, metadata_key, metadata_value } => {
            let mut parts = Vec::new();
            if !levels.is_empty() {
                parts.push(format!("level {}", levels.join("/")));
            }
            if let Some(s) = status {
                parts.push(format!("status {s}"));
            }
            if let Some(k) = metadata_key {
                parts.push(match metadata_value {
                    Some(v) => format!("metadata {k} = {v}"),
                    None => format!("metadata has {k}"),
                });
            }
            if parts.is_empty() { "drop every record".into() } else { format!("drop when {}", parts.join(" and ")) }
        }
        RuleAction::Sample { keep_percent, slow_ms } => match slow_ms {
            Some(ms) => format!("keep {keep_percent}% of successful calls; keep all errors and calls over {ms} ms"),
            None => format!("keep {keep_percent}% of successful calls; keep all errors"),
        },
        RuleAction::Redact { kinds, custom } => {
            let mut all: Vec<String> = kinds.clone();
            all.extend(custom.iter().map(|c| format!("{} (/{}/)", c.name, c.regex)));
            format!("redact {}", all.join(", "))
        }
    }
}

#[component]
fn RuleRow(rule: IngestRule, delete: ServerAction<DeleteRule>) -> impl IntoView {
    view! {
        <tr>
            <td>{rule.position}</td>
            <td>{rule.name.clone()}</td>
            <td>{if rule.model.is_empty() { "all".to_string() } else { rule.model.clone() }}</td>
            <td>{describe(&rule.action)}</td>
            <td>{if rule.enabled { "enabled" } else { "disabled" }}</td>
            <td>
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=rule.id/>
                    <button type="submit" class="danger">"Delete"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
fn PriceRow(price: Price, delete: ServerAction<DeletePrice>) -> impl IntoView {
    view! {
        <tr>
            <td><code>{price.pattern.clone()}</code></td>
            <td>{format!("${}", price.input_per_mtok)}</td>
            <td>{format!("${}", price.output_per_mtok)}</td>
            <td>{format!("${}", price.cached_input_per_mtok)}</td>
            <td>
                <ActionForm action=delete>
                    <input type="hidden" name="pattern" value=price.pattern.clone()/>
                    <button type="submit" class="danger">"Delete"</button>
                </ActionForm>
            </td>
        </tr>
    }
}
