//! The overview: every model the user may see. Filtering uses a GET form (`?q=`), so it works
//! without JavaScript and the URL can be shared.

use engine::{Model, Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::list_models;
use crate::components::{urlencode, use_me, ErrorNote};

#[component]
pub fn Overview() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let models = Resource::new(|| (), |_| list_models());
    let me = use_me();
    view! {
        <Title text="Models · Modelwatch"/>
        <div class="page-head">
            <h1>"Models"</h1>
            <form method="get" action="/" class="filter">
                <input name="q" type="search" placeholder="Filter by name" value=q/>
                <button type="submit">"Filter"</button>
            </form>
        </div>
        <Suspense fallback=|| view! { <p class="muted">"Loading models…"</p> }>
            {move || Suspend::new(async move {
                let is_admin = matches!(me.await, Ok(Some(ref m)) if m.role == Role::Admin);
                match models.await {
                    Ok(list) if list.is_empty() => view! { <EmptyState is_admin/> }.into_any(),
                    Ok(list) => {
                        let needle = q().to_lowercase();
                        let shown: Vec<Model> = list
                            .into_iter()
                            .filter(|m| needle.is_empty()
                                || m.name.to_lowercase().contains(&needle)
                                || m.display_name.to_lowercase().contains(&needle))
                            .collect();
                        view! { <ModelTable models=shown/> }.into_any()
                    }
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ModelTable(models: Vec<Model>) -> impl IntoView {
    if models.is_empty() {
        return view! { <p class="muted">"No model matches this filter."</p> }.into_any();
    }
    view! {
        <table class="list" data-testid="model-list">
            <thead><tr><th>"Model"</th><th>"Name sent by clients"</th><th>"Description"</th></tr></thead>
            <tbody>
                {models.into_iter().map(|m| view! {
                    <tr>
                        <td><a href=format!("/models/{}", urlencode(&m.name))>{m.display_name}</a></td>
                        <td><code>{m.name}</code></td>
                        <td>{m.description}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

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
