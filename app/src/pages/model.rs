//! One model's page. The model is fetched by name through `get_model`, which answers "not
//! found" for models the caller may not see, so a URL alone never reveals one.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::get_model;
use crate::components::ErrorNote;

#[component]
pub fn ModelPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || {
        let raw = params.read().get("name").unwrap_or_default();
        urlencoding::decode(&raw).map(|s| s.into_owned()).unwrap_or(raw)
    };
    let model = Resource::new(name, get_model);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match model.await {
                    Ok(m) => view! {
                        <Title text=format!("{} · Modelwatch", m.display_name)/>
                        <div class="page-head">
                            <h1 data-testid="model-title">{m.display_name.clone()}</h1>
                            <code>{m.name.clone()}</code>
                        </div>
                        {(!m.description.is_empty()).then(|| view! { <p>{m.description.clone()}</p> })}
                        <section class="card">
                            <h2>"Waiting for data"</h2>
                            <p>"Send logs for " <code>{m.name.clone()}</code> " to see requests, errors, latency, tokens and cost here."</p>
                        </section>
                    }.into_any(),
                    // The server function already set the page status (404 for unknown or hidden models).
                    Err(e) => view! { <Title text="Not found · Modelwatch"/><ErrorNote error=e/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
