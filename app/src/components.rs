//! Pieces shared by pages: navigation, error and form-result messages.

use engine::{Me, Role};
use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::error::AppError;

pub type MeResource = Resource<Result<Option<Me>, AppError>>;

pub fn use_me() -> MeResource {
    expect_context::<MeResource>()
}

/// Text for the inside of `<title>` and `<textarea>`. Leptos writes both unescaped into the
/// server's HTML (leptos_meta puts the title in as is; tachys takes a textarea's children for
/// raw text), so a model name, rule text or URL holding `</title>` or `</textarea>` would end
/// the element and inject markup. The server escapes it here; in the browser the text is set
/// through the DOM, where it is never parsed as markup.
pub fn raw_text_content(text: &str) -> String {
    #[cfg(feature = "ssr")]
    return html_escape::encode_text(text).into_owned();
    #[cfg(not(feature = "ssr"))]
    return text.to_string();
}

/// The page's `<title>`: `leptos_meta::Title` with its text escaped on the server (pages use
/// this one, never leptos_meta's directly).
#[component]
pub fn Title(#[prop(into)] text: TextProp) -> impl IntoView {
    view! { <leptos_meta::Title text=move || raw_text_content(&text.get())/> }
}

#[component]
pub fn Nav() -> impl IntoView {
    let me = use_me();
    let location = use_location();
    let theme_href = move || format!("/theme?next={}", urlencode(&location.pathname.get()));
    view! {
        <header class="topbar">
            <a class="brand" href="/">"Modelwatch"</a>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(Some(me)) => view! {
                            <nav class="mainnav">
                                <a href="/">"Models"</a>
                                <a href="/alerts">"Alerts"</a>
                                {(me.role == Role::Admin).then(|| view! {
                                    <a href="/admin/models">"Admin: models"</a>
                                    <a href="/admin/users">"Admin: users"</a>
                                    <a href="/admin/keys">"API keys"</a>
                                    <a href="/admin/ingest">"Ingest rules"</a>
                                    <a href="/admin/scrape">"Scrape targets"</a>
                                })}
                            </nav>
                            <div class="account">
                                <a href="/account" class="who" data-testid="whoami">{me.username.clone()}" · "{me.role.to_string()}</a>
                                <form method="post" action="/auth/logout" class="inline">
                                    <button type="submit" class="link">"Log out"</button>
                                </form>
                            </div>
                        }.into_any(),
                        _ => view! { <nav class="mainnav"></nav> }.into_any(),
                    }
                })}
            </Suspense>
            <a class="theme" rel="external" href=theme_href title="Switch light/dark theme">"◐"</a>
        </header>
    }
}

/// An error from a server function, with a way out when the session has ended.
#[component]
pub fn ErrorNote(error: AppError) -> impl IntoView {
    let login = error.is_unauthenticated();
    view! {
        <div class="error" role="alert">
            <strong>{error.message.clone()}</strong>
            {error.field.clone().map(|f| view! { <span class="field">" (" {f} ")"</span> })}
            {login.then(|| view! { " " <a href="/login" rel="external">"Log in"</a> })}
        </div>
    }
}

/// The outcome of the last submission of a form.
#[component]
pub fn ActionResult<T: Clone + Send + Sync + 'static>(
    value: Signal<Option<Result<T, AppError>>>,
    ok: &'static str,
) -> impl IntoView {
    move || match value.get() {
        Some(Ok(_)) => view! { <p class="ok" role="status">{ok}</p> }.into_any(),
        Some(Err(e)) => view! { <ErrorNote error=e/> }.into_any(),
        None => ().into_any(),
    }
}

/// Percent-encodes a path segment or query value.
pub fn urlencode(s: &str) -> String {
    urlencoding::encode(s).into_owned()
}

/// A UTC epoch-millisecond time, rendered the same on the server and in the browser.
#[component]
pub fn LocalTime(ms: Option<i64>) -> impl IntoView {
    let Some(ms) = ms else { return view! { <span class="muted">"never"</span> }.into_any() };
    let text = engine::utc_minute_text(ms);
    view! { <time datetime=ms.to_string()>{text}</time> }.into_any()
}
