//! Admin: scrape targets. A model server's Prometheus endpoint (vLLM, TGI, Triton, …) scraped
//! on an interval; the chosen series become the model's custom metrics. The list shows each
//! target's health: last scrape, points stored, the last error.

use engine::types::{SCRAPE_PRESETS, ScrapeTarget, scrape_preset};
use leptos::prelude::*;

use crate::api_ingest::{DeleteScrapeTarget, SaveScrapeTarget, list_scrape_targets};
use crate::components::{ActionResult, ErrorNote, LocalTime, Title};

#[component]
pub fn AdminScrape() -> impl IntoView {
    let save = ServerAction::<SaveScrapeTarget>::new();
    let delete = ServerAction::<DeleteScrapeTarget>::new();
    let targets = Resource::new(move || (save.version().get(), delete.version().get()), |_| list_scrape_targets());
    view! {
        <Title text="Scrape targets · Admin · Modelwatch"/>
        <h1>"Scrape targets"</h1>
        <p class="muted">"Modelwatch reads a model server's Prometheus page on an interval and stores the chosen series as the model's custom metrics: gauges as they are, counters as the increase since the previous scrape, histograms as count, sum, mean and p50/p95/p99 per interval."</p>
        <section class="card">
            <h2>"Add a target"</h2>
            <ActionForm action=save attr:class="stack" attr:data-testid="create-scrape-target">
                <div class="row">
                    <label>"Model" <input name="model" required placeholder="llama-3-70b"/></label>
                    <label>"Metrics URL" <input name="url" type="url" required placeholder="http://vllm:8000/metrics" size="40"/></label>
                    <label>"Every (s)" <input name="interval_secs" type="number" min="1" max="3600" value="15" required/></label>
                    <label>"Server"
                        <select name="preset">
                            {SCRAPE_PRESETS.iter().map(|p| view! { <option value=p.id>{p.label}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="check"><input type="checkbox" name="enabled" checked/>" enabled"</label>
                </div>
                <label>"Series to keep (one per line, * matches anything; empty: the preset's list below)"
                    <textarea name="keep" rows="3" placeholder="vllm:num_requests_*"></textarea>
                </label>
                <button type="submit">"Save target"</button>
            </ActionForm>
            <ActionResult value=save.value().into() ok="Target saved; the first scrape runs within a few seconds."/>
            <details>
                <summary>"What each preset keeps"</summary>
                <dl class="presets">
                    {SCRAPE_PRESETS.iter().filter(|p| !p.keep.is_empty()).map(|p| view! {
                        <dt>{p.label}</dt>
                        <dd><code>{p.keep.join(", ")}</code></dd>
                    }).collect_view()}
                </dl>
            </details>
        </section>
        <ActionResult value=delete.value().into() ok="Target deleted."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match targets.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted" data-testid="no-scrape-targets">"No scrape targets yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="scrape-targets">
                            <thead><tr><th>"Model"</th><th>"URL"</th><th>"Server"</th><th>"Every"</th><th>"Series"</th><th>"Last scrape"</th><th>"Health"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|t| view! { <TargetRow target=t save delete/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn TargetRow(target: ScrapeTarget, save: ServerAction<SaveScrapeTarget>, delete: ServerAction<DeleteScrapeTarget>) -> impl IntoView {
    let preset = scrape_preset(&target.preset).map(|p| p.label).unwrap_or("?");
    let series = if target.keep.is_empty() { format!("{preset} preset") } else { target.keep.join(", ") };
    let health = match (&target.last_error, target.last_scrape_ms) {
        (_, None) => view! { <span class="muted">"not scraped yet"</span> }.into_any(),
        (Some(e), _) => view! { <span class="error" data-testid="scrape-error">{format!("failing: {e}")}</span> }.into_any(),
        (None, Some(_)) => view! {
            <span class="ok" data-testid="scrape-ok">{format!("up · {} points · {} ms", target.last_points.unwrap_or(0), target.last_duration_ms.unwrap_or(0))}</span>
        }.into_any(),
    };
    let toggle_label = if target.enabled { "Pause" } else { "Resume" };
    view! {
        <tr data-testid="scrape-target">
            <td><a href=format!("/models/{}", crate::components::urlencode(&target.model))>{target.model.clone()}</a></td>
            <td><code>{target.url.clone()}</code></td>
            <td>{preset}</td>
            <td>{format!("{} s", target.interval_secs)}</td>
            <td class="small">{series}</td>
            <td><LocalTime ms=target.last_scrape_ms/></td>
            <td>{health}{(!target.enabled).then(|| view! { <span class="muted">" · paused"</span> })}</td>
            <td class="actions">
                <ActionForm action=save>
                    <input type="hidden" name="id" value=target.id/>
                    <input type="hidden" name="model" value=target.model.clone()/>
                    <input type="hidden" name="url" value=target.url.clone()/>
                    <input type="hidden" name="interval_secs" value=target.interval_secs/>
                    <input type="hidden" name="preset" value=target.preset.clone()/>
                    <input type="hidden" name="keep" value=target.keep.join("\n")/>
                    {(!target.enabled).then(|| view! { <input type="hidden" name="enabled" value="on"/> })}
                    <button type="submit">{toggle_label}</button>
                </ActionForm>
                <ActionForm action=delete>
                    <input type="hidden" name="id" value=target.id/>
                    <button type="submit" class="danger">"Delete"</button>
                </ActionForm>
            </td>
        </tr>
    }
}
