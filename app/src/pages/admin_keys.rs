//! Admin: API keys for ingest and the read API. A new key's secret is shown once (this needs
//! JavaScript; without it, create keys with `modelwatch key create`).

use engine::ApiKey;
use leptos::prelude::*;

use crate::api_ingest::{CreateApiKey, RevokeApiKey, list_api_keys};
use crate::components::{ActionResult, ErrorNote, Title};

#[component]
pub fn AdminKeys() -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_api_keys());
    view! {
        <Title text="API keys · Admin · Modelwatch"/>
        <h1>"API keys"</h1>
        <section class="card">
            <h2>"Create a key"</h2>
            <p class="muted">"Clients send it as " <code>"Authorization: Bearer <key>"</code> ". Only a hash is stored: copy the key when it is shown."</p>
            <ActionForm action=create attr:class="row" attr:data-testid="create-key">
                <label>"Name" <input name="name" placeholder="litellm gateway" required/></label>
                <label class="check"><input type="checkbox" name="scope_ingest" checked/>" ingest"</label>
                <label class="check"><input type="checkbox" name="scope_read"/>" read"</label>
                <label>"Only these models" <input name="models" placeholder="empty: all models"/></label>
                <label class="check"><input type="checkbox" name="no_payloads"/>" do not store payloads"</label>
                <button type="submit">"Create key"</button>
            </ActionForm>
            {move || match create.value().get() {
                Some(Ok(secret)) => view! {
                    <p class="ok" role="status">"Key created. Copy it now, it is not shown again: " <code data-testid="new-key">{secret}</code></p>
                }.into_any(),
                Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
                None => ().into_any(),
            }}
        </section>
        <ActionResult value=revoke.value().into() ok="Key revoked; clients using it now get 401."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match keys.await {
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No API keys yet."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="list" data-testid="api-keys">
                            <thead><tr><th>"Name"</th><th>"Prefix"</th><th>"Scopes"</th><th>"Models"</th><th>"Payloads"</th><th>"Created by"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|k| view! { <KeyRow key=k revoke/> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn KeyRow(key: ApiKey, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    let scopes = key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let models = key.models.clone().map(|m| m.join(", ")).unwrap_or_else(|| "all".into());
    let revoked = key.revoked_at.is_some();
    view! {
        <tr class:muted=revoked>
            <td>{key.name.clone()}{revoked.then_some(" (revoked)")}</td>
            <td><code>{key.prefix.clone()}"…"</code></td>
            <td>{scopes}</td>
            <td>{models}</td>
            <td>{if key.capture_payloads { "stored" } else { "not stored" }}</td>
            <td>{key.created_by.clone().unwrap_or_else(|| "CLI".into())}</td>
            <td><crate::components::LocalTime ms=key.last_used_at/></td>
            <td>
                {(!revoked).then(|| view! {
                    <ActionForm action=revoke>
                        <input type="hidden" name="id" value=key.id/>
                        <button type="submit" class="danger">"Revoke"</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}
