use leptos::prelude::*;
use crate::components::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::session::set_status(404);
    view! {
        <Title text="Not found · Modelwatch"/>
        <section class="card narrow">
            <h1>"Page not found"</h1>
            <p>"There is nothing here, or you are not allowed to see it."</p>
            <p><a href="/">"Back to the models"</a></p>
        </section>
    }
}
