//! The browser entry point: the generated loader calls `hydrate()` once the wasm is fetched.

// The log explorer page's view type is deep enough to need more than the default 128.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
