//! Pieces the overview and the model dashboards share: the range picker and auto-refresh (both
//! kept in the URL), the viewer's time zone, and a chart panel with its hover readout.
//!
//! Everything works without JavaScript (links and GET forms); with it, the range changes
//! without a page load, refresh runs on a timer, and charts show a readout under the pointer.

use engine::kpi::{REFRESH_CHOICES, RELATIVE_RANGES, RangeParams};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use crate::api_dashboards::Chart;

/// The range as the URL gives it.
pub fn range_from_query(q: &ParamsMap) -> RangeParams {
    RangeParams { range: q.get("range"), from: q.get("from"), to: q.get("to"), step: None, tz: q.get("tz") }
}

/// A URL for `path` with the current query, some keys replaced (None removes the key). Every
/// other key is kept (the log explorer's filters ride along), except the explorer's page
/// cursor `before`: any change starts again at the newest results.
pub fn with_query(path: &str, q: &ParamsMap, changes: &[(&str, Option<String>)]) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, v) in q {
        if key == "before" || v.is_empty() || changes.iter().any(|c| c.0 == key) || pairs.iter().any(|p| p.0 == **key) {
            continue;
        }
        pairs.push((key.to_string(), v.to_string()));
    }
    for (key, v) in changes {
        if let Some(v) = v {
            pairs.push((key.to_string(), v.clone()));
        }
    }
    if pairs.is_empty() {
        return path.to_string();
    }
    let qs: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v))).collect();
    format!("{path}?{}", qs.join("&"))
}

/// The viewer's time zone as the browser reports it; None on the server and before hydration.
#[derive(Clone, Copy)]
pub struct ViewerTz(pub RwSignal<Option<String>>);

pub fn provide_viewer_tz() {
    let tz = RwSignal::new(None::<String>);
    provide_context(ViewerTz(tz));
    // After hydration: remember the browser's zone in a cookie (so the next page is drawn in
    // it on the server) and redraw this one if it was drawn in another.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let zone = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new()).resolved_options();
            let name = js_sys::Reflect::get(&zone, &"timeZone".into()).ok().and_then(|v| v.as_string());
            if let Some(name) = name {
                use leptos::wasm_bindgen::JsCast;
                if let Some(doc) = leptos::prelude::document().dyn_ref::<web_sys::HtmlDocument>() {
                    let _ = doc.set_cookie(&format!(
                        "{}={}; path=/; max-age=31536000; samesite=lax",
                        crate::api_dashboards::TZ_COOKIE,
                        urlencoding::encode(&name)
                    ));
                }
                tz.set(Some(name));
            }
        }
    });
}

pub fn use_viewer_tz() -> RwSignal<Option<String>> {
    use_context::<ViewerTz>().map(|v| v.0).unwrap_or_else(|| RwSignal::new(None))
}

/// A counter that ticks at the URL's `refresh` interval (in the browser only).
pub fn refresh_ticker() -> ReadSignal<u32> {
    let (tick, set_tick) = signal(0u32);
    let query = use_query_map();
    Effect::new(move |prev: Option<Option<IntervalHandle>>| {
        if let Some(Some(h)) = prev {
            h.clear();
        }
        let secs = query.read().get("refresh").and_then(|r| REFRESH_CHOICES.iter().find(|c| c.0 == r).map(|c| c.1));
        secs.and_then(|s| {
            set_interval_with_handle(move || set_tick.update(|t| *t += 1), std::time::Duration::from_secs(s as u64)).ok()
        })
    });
    tick
}

/// Relative ranges, an absolute from/to form, and the auto-refresh choice. `default_range` is
/// what the page shows when the URL names no range (24h on dashboards, 1h in the explorer).
#[component]
pub fn RangeBar(path: String, #[prop(default = "24h")] default_range: &'static str) -> impl IntoView {
    let query = use_query_map();
    let tz = use_viewer_tz();
    let p = path.clone();
    let relative = move || {
        let q = query.read();
        let active = if q.get("from").is_some() { String::new() } else { q.get("range").unwrap_or_else(|| default_range.into()) };
        RELATIVE_RANGES
            .iter()
            .map(|(r, _)| {
                let href = with_query(&p, &q, &[("range", Some(r.to_string())), ("from", None), ("to", None)]);
                let class = if active == *r { "seg active" } else { "seg" };
                view! { <a class=class href=href data-range=*r>{*r}</a> }
            })
            .collect_view()
    };
    let p2 = path.clone();
    let refresh = move || {
        let q = query.read();
        let active = q.get("refresh").unwrap_or_default();
        let mut links = vec![("off".to_string(), with_query(&p2, &q, &[("refresh", None)]), active.is_empty())];
        for (r, _) in REFRESH_CHOICES {
            links.push((r.to_string(), with_query(&p2, &q, &[("refresh", Some(r.to_string()))]), active == r));
        }
        links
            .into_iter()
            .map(|(label, href, on)| view! { <a class=if on { "seg active" } else { "seg" } href=href>{label}</a> })
            .collect_view()
    };
    // The absolute-range form keeps everything else in the URL (refresh, breakdown, filters).
    let hidden = move || {
        let q = query.read();
        (&*q).into_iter()
            .filter(|(k, _)| !matches!(k.as_ref(), "range" | "from" | "to" | "tz" | "before"))
            .map(|(k, v)| view! { <input type="hidden" name=k.to_string() value=v.to_string()/> })
            .collect_view()
    };
    view! {
        <div class="rangebar">
            <nav class="segmented" aria-label="Time range">{relative}</nav>
            <form method="get" action=path.clone() class="absolute">
                <input type="datetime-local" name="from" aria-label="From" value=move || query.read().get("from").filter(|v| v.contains('T'))/>
                <input type="datetime-local" name="to" aria-label="To" value=move || query.read().get("to").filter(|v| v.contains('T'))/>
                <input type="hidden" name="tz" value=move || tz.get()/>
                {hidden}
                <button type="submit">"Apply"</button>
            </form>
            <nav class="segmented" aria-label="Auto-refresh"><span class="muted">"Refresh"</span>{refresh}</nav>
        </div>
    }
}

/// One dashboard panel: title, CSV link, the server-drawn SVG, a legend, and (with JavaScript)
/// a readout of the point under the pointer; clicking opens that step's logs.
#[component]
pub fn ChartPanel(chart: Chart, logs_base: String) -> impl IntoView {
    let hover = RwSignal::new(None::<usize>);
    let n = chart.t.len();
    let (x0, x1) = (chart.plot_x0, chart.plot_x1);
    let (xf, xt) = (chart.x_from as f64, chart.x_to as f64);
    let ts = chart.t.clone();
    let index_at = move |frac: f64| -> Option<usize> {
        if n == 0 || x1 <= x0 {
            return None;
        }
        let t = xf + (frac - x0) / (x1 - x0) * (xt - xf);
        ts.iter().enumerate().min_by(|a, b| (*a.1 as f64 - t).abs().total_cmp(&(*b.1 as f64 - t).abs())).map(|(i, _)| i)
    };
    let index_at2 = index_at.clone();
    let frac_of = move |ev: &leptos::ev::MouseEvent| -> f64 {
        let w = event_target::<leptos::web_sys::HtmlElement>(ev).client_width().max(1) as f64;
        ev.offset_x() as f64 / w
    };
    let readouts = chart.readouts.clone();
    let t_for_click = chart.t.clone();
    let step = chart.step_ms;
    let marker_left = {
        let t = chart.t.clone();
        move || {
            hover.get().and_then(|i| t.get(i)).map(|ti| {
                let frac = x0 + (*ti as f64 + step as f64 / 2.0 - xf) / (xt - xf) * (x1 - x0);
                format!("{:.2}%", frac.clamp(0.0, 1.0) * 100.0)
            })
        }
    };
    let navigate = leptos_router::hooks::use_navigate();
    view! {
        <section class="panel" data-panel=chart.key.clone()>
            <header>
                <h3>{chart.title.clone()}</h3>
                {(!chart.csv.is_empty()).then(|| view! { <a class="csv" href=chart.csv.clone() rel="external" download="">"CSV"</a> })}
            </header>
            <div class="chart" data-has-data=chart.has_data.to_string()>
                <div inner_html=chart.svg.clone()></div>
                <div
                    class="hover"
                    on:mousemove=move |ev| hover.set(index_at(frac_of(&ev)))
                    on:mouseleave=move |_| hover.set(None)
                    on:click=move |ev| {
                        if let Some(t) = index_at2(frac_of(&ev)).and_then(|i| t_for_click.get(i)) {
                            navigate(&format!("{logs_base}from={t}&to={}", t + step), Default::default());
                        }
                    }
                ></div>
                // Positioned through the CSSOM (style:left), which the style-src CSP allows.
                <div class="marker" hidden=move || hover.get().is_none() style:left=marker_left></div>
            </div>
            <p class="readout" aria-live="polite">
                {move || hover.get().and_then(|i| readouts.get(i).cloned()).unwrap_or_else(|| "\u{a0}".into())}
            </p>
            <ul class="legend">
                {chart.legend.iter().map(|(name, color)| view! {
                    <li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" rx="2" fill=color.clone()/></svg>{name.clone()}</li>
                }).collect_view()}
            </ul>
        </section>
    }
}
