//! Admin: the model registry. Create models, edit display name and description, see who has
//! access, and whether ingest is refusing new models (the model limits). The list comes in
//! pages of 50 with a name filter (a GET form and links, so it works without JavaScript, as
//! does every `ActionForm` here).

use engine::{Model, ModelLimitStatus};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::api::{admin_models, model_grants, CreateModel, UpdateModel};
use crate::components::{urlencode, ActionResult, ErrorNote, LocalTime, Title};
use crate::dash::with_query;

#[component]
pub fn AdminModels() -> impl IntoView {
    let create = ServerAction::<CreateModel>::new();
    let update = ServerAction::<UpdateModel>::new();
    let query = use_query_map();
    let models = Resource::new(
        move || {
            let q = query.read();
            let page = q.get("page").and_then(|p| p.parse::<usize>().ok());
            (create.version().get(), update.version().get(), q.get("q").unwrap_or_default(), page)
        },
        |(_, _, q, page)| admin_models(q, page),
    );
    view! {
        <Title text="Models · Admin · Modelwatch"/>
        <h1>"Models"</h1>
        <section class="card">
            <h2>"Register a model"</h2>
            <p class="muted">"Models are also registered automatically when data first arrives for them."</p>
            <ActionForm action=create attr:class="row" attr:data-testid="create-model">
                <label>"Name sent by clients" <input name="name" placeholder="gpt-4o" required/></label>
                <label>"Display name" <input name="display_name" placeholder="optional"/></label>
                <label>"Description" <input name="description" placeholder="optional"/></label>
                <button type="submit">"Create model"</button>
            </ActionForm>
            <ActionResult value=create.value().into() ok="Model created."/>
        </section>
        <ActionResult value=update.value().into() ok="Model saved."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match models.await {
                    Ok(page) => {
                        let q = query.read_untracked();
                        let filter = q.get("q").unwrap_or_default();
                        let link = |n: usize| with_query("/admin/models", &q, &[("page", Some(n.to_string()))]);
                        let prev = (page.page > 1).then(|| link(page.page - 1));
                        let next = (page.page < page.pages).then(|| link(page.page + 1));
                        let first = (page.page - 1) * page.per_page;
                        let shown = format!(
                            "{}–{} of {} models{}",
                            if page.total == 0 { 0 } else { first + 1 },
                            first + page.models.len(),
                            page.total,
                            if filter.is_empty() { String::new() } else { format!(" matching {filter:?}") },
                        );
                        view! {
                            <LimitNote status=page.limits.clone()/>
                            <form method="get" action="/admin/models" class="row" data-testid="model-filter">
                                <input name="q" value=filter placeholder="filter by name" aria-label="Filter models by name"/>
                                <button type="submit" class="secondary">"Filter"</button>
                                <span class="muted" data-testid="models-shown">{shown}</span>
                            </form>
                            <table class="list" data-testid="admin-models">
                                <thead><tr><th>"Name"</th><th>"Display name and description"</th><th>"Payloads"</th><th>"Breakdown keys"</th><th>"Access"</th></tr></thead>
                                <tbody>
                                    {page.models.into_iter().map(|m| view! { <ModelRow model=m update/> }).collect_view()}
                                </tbody>
                            </table>
                            <nav class="pager" data-testid="models-pager">
                                <span>{prev.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}</span>
                                <span>{next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}</span>
                            </nav>
                        }.into_any()
                    }
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ModelRow(model: Model, update: ServerAction<UpdateModel>) -> impl IntoView {
    let name = model.name.clone();
    let grants = Resource::new(move || name.clone(), model_grants);
    let capture = ServerAction::<crate::api_ingest::SetModelCapture>::new();
    let capture_name = model.name.clone();
    let keys = ServerAction::<crate::api_dashboards::SetBreakdownKeys>::new();
    let keys_name = model.name.clone();
    let keys_value = model.breakdown_keys.join(", ");
    view! {
        <tr>
            <td><a href=format!("/models/{}", urlencode(&model.name))><code>{model.name.clone()}</code></a></td>
            <td>
                <ActionForm action=update attr:class="row">
                    <input type="hidden" name="name" value=model.name.clone()/>
                    <input name="display_name" value=model.display_name.clone() aria-label="Display name" required/>
                    <input name="description" value=model.description.clone() aria-label="Description"/>
                    <button type="submit">"Save"</button>
                </ActionForm>
            </td>
            <td>
                <ActionForm action=capture attr:class="row">
                    <input type="hidden" name="name" value=capture_name/>
                    <label class="check"><input type="checkbox" name="capture" checked=model.capture_payloads/>" store"</label>
                    <button type="submit">"Apply"</button>
                </ActionForm>
                <ActionResult value=capture.value().into() ok="Saved."/>
            </td>
            <td>
                // Metadata keys rolled up for the dashboard's breakdown tables.
                <ActionForm action=keys attr:class="row" attr:data-testid="breakdown-keys">
                    <input type="hidden" name="name" value=keys_name/>
                    <input name="keys" value=keys_value placeholder="team, region" aria-label="Metadata keys to break down by"/>
                    <button type="submit">"Save"</button>
                </ActionForm>
                <ActionResult value=keys.value().into() ok="Saved; new records are counted under these keys."/>
            </td>
            <td>
                <Suspense fallback=|| "…">
                    {move || Suspend::new(async move {
                        match grants.await {
                            Ok(g) if g.is_empty() => view! { <span class="muted">"admins only"</span> }.into_any(),
                            Ok(g) => g.into_iter().map(|g| view! {
                                <span class="chip">{g.username}{g.view_payloads.then_some(" (payloads)")}</span>
                            }).collect_view().into_any(),
                            Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                        }
                    })}
                </Suspense>
            </td>
        </tr>
    }
}

/// How full the registry is, and a warning when ingest refused records for new models.
#[component]
fn LimitNote(status: ModelLimitStatus) -> impl IntoView {
    let usage = format!(
        "{} of at most {} models registered by ingest (--max-models); at most {} new models per API key per minute.",
        status.models, status.max_models, status.new_per_key_per_minute
    );
    let refused = (status.refused_records > 0).then(|| {
        view! {
            <div class="error" role="alert" data-testid="model-limit-warning">
                <strong>{format!("Ingest refused {} records for new models", status.refused_records)}</strong>
                " (last at " <LocalTime ms=status.last_refused_ms/> "): "
                {status.last_reason.clone().unwrap_or_default()}
            </div>
        }
    });
    let near = (status.refused_records == 0 && status.models * 10 >= status.max_models * 9).then(|| {
        view! { <div class="error" role="status" data-testid="model-limit-warning">"The model registry is nearly full: new models will be refused at the limit."</div> }
    });
    view! {
        {refused}
        {near}
        <p class="muted" data-testid="model-limit">{usage}</p>
    }
}
