//! The login page: a plain HTML form posted to `/auth/login`, so it works with and without
//! JavaScript. The server answers with a redirect; failures come back as `?error=`.

use leptos::prelude::*;
use crate::components::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let message = move || match query.read().get("error").as_deref() {
        Some("throttled") => Some("Too many failed attempts. Wait a few minutes and try again."),
        Some(_) => Some("Invalid username or password."),
        None => None,
    };
    let notice = move || {
        let q = query.read();
        if q.get("changed").is_some() {
            Some("Your password was changed. Log in with the new one.")
        } else if q.get("loggedout").is_some() {
            Some("You have been logged out.")
        } else {
            None
        }
    };
    view! {
        <Title text="Log in · Modelwatch"/>
        <section class="card narrow">
            <h1>"Log in"</h1>
            {move || notice().map(|n| view! { <p class="ok" role="status">{n}</p> })}
            {move || message().map(|m| view! { <p class="error" role="alert" data-testid="login-error">{m}</p> })}
            <form method="post" action="/auth/login" class="stack">
                <input type="hidden" name="next" value=next/>
                <label>"Username" <input name="username" autocomplete="username" required autofocus/></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required/></label>
                <button type="submit">"Log in"</button>
            </form>
        </section>
    }
}
