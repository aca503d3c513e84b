//! Admin: users, their roles and per-model grants. Every form is an `ActionForm`, so it works
//! without JavaScript; generated passwords are shown once, which needs JavaScript (without it,
//! type the password you want).

use engine::{Model, Role, UserWithGrants};
use leptos::prelude::*;

use crate::api::{list_models, list_users, CreateUser, GrantModel, ResetPassword, RevokeModel, UpdateUser};
use crate::components::{ActionResult, ErrorNote, Title};

#[derive(Clone, Copy)]
struct UserActions {
    update: ServerAction<UpdateUser>,
    reset: ServerAction<ResetPassword>,
    grant: ServerAction<GrantModel>,
    revoke: ServerAction<RevokeModel>,
}

#[component]
pub fn AdminUsers() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let actions = UserActions {
        update: ServerAction::new(),
        reset: ServerAction::new(),
        grant: ServerAction::new(),
        revoke: ServerAction::new(),
    };
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                actions.update.version().get(),
                actions.grant.version().get(),
                actions.revoke.version().get(),
            )
        },
        |_| list_users(),
    );
    let models = Resource::new(|| (), |_| list_models());
    view! {
        <Title text="Users · Admin · Modelwatch"/>
        <h1>"Users"</h1>
        <section class="card">
            <h2>"Add a user"</h2>
            <ActionForm action=create attr:class="row" attr:data-testid="create-user">
                <label>"Username" <input name="username" required/></label>
                <label>"Role" <RoleSelect selected=Role::Viewer/></label>
                <label>"Password" <input name="password" type="password" placeholder="empty: generate one" autocomplete="new-password"/></label>
                <button type="submit">"Add user"</button>
            </ActionForm>
            <GeneratedPassword value=create.value().into() what="User created."/>
        </section>
        <ActionResult value=actions.update.value().into() ok="User saved."/>
        <ActionResult value=actions.grant.value().into() ok="Access granted."/>
        <ActionResult value=actions.revoke.value().into() ok="Access revoked."/>
        <GeneratedPassword value=actions.reset.value().into() what="Password reset; the user's sessions have ended."/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let models = models.await.unwrap_or_default();
                match users.await {
                    Ok(list) => view! {
                        <table class="list" data-testid="admin-users">
                            <thead><tr><th>"User"</th><th>"Role and state"</th><th>"Models"</th><th>"Password"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|u| view! { <UserRow user=u models=models.clone() actions/> }).collect_view()}
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
fn RoleSelect(selected: Role) -> impl IntoView {
    view! {
        <select name="role">
            {Role::ALL.into_iter().map(|r| view! {
                <option value=r.as_str() selected=r == selected>{r.as_str()}</option>
            }).collect_view()}
        </select>
    }
}

#[component]
fn UserRow(user: UserWithGrants, models: Vec<Model>, actions: UserActions) -> impl IntoView {
    let UserWithGrants { user, grants } = user;
    let id = user.id;
    let ungranted: Vec<Model> = models.into_iter().filter(|m| !grants.iter().any(|g| g.model_id == m.id)).collect();
    let is_admin = user.role == Role::Admin;
    view! {
        <tr data-testid=format!("user-{}", user.username)>
            <td>
                <strong>{user.username.clone()}</strong>
                {user.disabled.then(|| view! { " " <span class="chip warn">"disabled"</span> })}
            </td>
            <td>
                <ActionForm action=actions.update attr:class="row">
                    <input type="hidden" name="id" value=id.to_string()/>
                    <RoleSelect selected=user.role/>
                    <label class="check"><input type="checkbox" name="disabled" value="on" checked=user.disabled/>" disabled"</label>
                    <button type="submit">"Save"</button>
                </ActionForm>
            </td>
            <td>
                {if is_admin {
                    view! { <span class="muted">"all models (admin)"</span> }.into_any()
                } else {
                    view! {
                        <div class="chips">
                            {grants.into_iter().map(|g| view! {
                                <ActionForm action=actions.revoke attr:class="chip">
                                    <input type="hidden" name="user_id" value=id.to_string()/>
                                    <input type="hidden" name="model" value=g.model.clone()/>
                                    {g.model.clone()}{g.view_payloads.then_some(" (payloads)")}
                                    <button type="submit" class="link" title="Revoke access">"×"</button>
                                </ActionForm>
                            }).collect_view()}
                        </div>
                        {(!ungranted.is_empty()).then(|| view! {
                            <ActionForm action=actions.grant attr:class="row" attr:data-testid="grant-form">
                                <input type="hidden" name="user_id" value=id.to_string()/>
                                <select name="model" aria-label="Model">
                                    {ungranted.into_iter().map(|m| view! { <option value=m.name.clone()>{m.name.clone()}</option> }).collect_view()}
                                </select>
                                <label class="check"><input type="checkbox" name="view_payloads" value="on"/>" payloads"</label>
                                <button type="submit">"Grant"</button>
                            </ActionForm>
                        })}
                    }.into_any()
                }}
            </td>
            <td>
                <ActionForm action=actions.reset attr:class="row">
                    <input type="hidden" name="id" value=id.to_string()/>
                    <input name="password" type="password" placeholder="empty: generate" autocomplete="new-password" aria-label="New password"/>
                    <button type="submit">"Reset"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// The result of an action that may have generated a password, which is shown exactly once.
#[component]
fn GeneratedPassword(value: Signal<Option<Result<Option<String>, crate::error::AppError>>>, what: &'static str) -> impl IntoView {
    move || match value.get() {
        Some(Ok(Some(pw))) => view! {
            <p class="ok" role="status">{what} " Generated password (shown once): " <code data-testid="generated-password">{pw}</code></p>
        }.into_any(),
        Some(Ok(None)) => view! { <p class="ok" role="status">{what}</p> }.into_any(),
        Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
        None => ().into_any(),
    }
}
