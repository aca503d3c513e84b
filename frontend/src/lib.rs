//! The browser entry point: the generated loader calls `hydrate()` once the wasm is fetched.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
