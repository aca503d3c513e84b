//! Admin: the model registry. Create models, edit display name and description, see who has
//! access. Every form is an `ActionForm`, so it works without JavaScript too.

use engine::Model;
use leptos::prelude::*;

use crate::api::{list_models, model_grants, CreateModel, UpdateModel};
use crate::components::{urlencode, ActionResult, ErrorNote, Title};

#[component]
pub fn AdminModels() -> impl IntoView {
    let create = ServerAction::<CreateModel>::new();
    let update = ServerAction::<UpdateModel>::new();
    let models = Resource::new(
        move || (create.version().get(), update.version().get()),
        |_| list_models(),
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
                    Ok(list) => view! {
                        <table class="list" data-testid="admin-models">
                            <thead><tr><th>"Name"</th><th>"Display name and description"</th><th>"Payloads"</th><th>"Breakdown keys"</th><th>"Access"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|m| view! { <ModelRow model=m update/> }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
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
