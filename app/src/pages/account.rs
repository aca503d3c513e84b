//! The signed-in user's own account: change password (which ends every session of theirs).

use leptos::prelude::*;

use crate::api::ChangePassword;
use crate::components::{ActionResult, Title};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    view! {
        <Title text="Account · Modelwatch"/>
        <section class="card narrow">
            <h1>"Change password"</h1>
            <p class="muted">"Changing your password logs you out everywhere, including here."</p>
            <ActionForm action=change attr:class="stack">
                <label>"Current password" <input name="current_password" type="password" autocomplete="current-password" required/></label>
                <label>"New password (8 characters or more)" <input name="new_password" type="password" autocomplete="new-password" minlength="8" required/></label>
                <button type="submit">"Change password"</button>
            </ActionForm>
            <ActionResult value=change.value().into() ok="Password changed."/>
        </section>
    }
}
