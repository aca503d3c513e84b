//! Dashboard charts drawn with plotters into SVG on the server, so the page is complete without
//! JavaScript and hydration sees the same markup. Axis and grid use `currentColor`, so one SVG
//! fits the light and the dark theme; series colours are mid-tones readable on both.
//!
//! Owns drawing only: numbers come in as series, labels and readouts go out as strings.

use engine::dashboards::{TimeZone, format_time, time_ticks};
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;

use crate::api_dashboards::Chart;
use crate::format::{self, Unit};


const WIDTH: u32 = 640;
const HEIGHT: u32 = 220;
/// Drawn in this colour, then rewritten to `currentColor` so CSS decides.
const INK: RGBColor = RGBColor(1, 2, 3);

pub const BLUE: &str = "#3b82f6";
pub const RED: &str = "#ef4444";
pub const AMBER: &str = "#f59e0b";
pub const GREEN: &str = "#10b981";
pub const VIOLET: &str = "#8b5cf6";
pub const CYAN: &str = "#06b6d4";

fn rgb(hex: &str) -> RGBColor {
    let h = hex.trim_start_matches('#');
    let c = |i: usize| u8::from_str_radix(h.get(i..i + 2).unwrap_or("80"), 16).unwrap_or(128);
    RGBColor(c(0), c(2), c(4))
}

/// One line (or stacked layer) of a chart.
pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub values: Vec<Option<f64>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lines,
    /// Layers stacked bottom-up in the order given, drawn as areas.
    Stacked,
}

/// What a chart needs besides its series.
pub struct Frame<'a> {
    pub key: String,
    pub title: String,
    pub unit: Unit,
    pub kind: Kind,
    pub t: &'a [i64],
    pub from: i64,
    pub to: i64,
    pub step_ms: i64,
    pub tz: &'a TimeZone,
    pub csv: String,
}

fn readout_time(ms: i64, span: i64, tz: &TimeZone) -> String {
    format_time(ms, tz, if span > 86_400_000 { "%a %b %-d %H:%M" } else { "%H:%M" })
}

/// Draws one panel. Gaps (None) break lines instead of dropping to zero.
pub fn render(f: Frame<'_>, series: Vec<Series>) -> Chart {
    let n = f.t.len();
    let x_from = f.t.first().copied().unwrap_or(f.from).min(f.from);
    let x_to = f.to.max(x_from + 1);
    // Stacked layers are drawn as cumulative sums.
    let mut drawn: Vec<Vec<Option<f64>>> = Vec::new();
    for s in &series {
        let mut v = s.values.clone();
        if f.kind == Kind::Stacked
            && let Some(below) = drawn.last()
        {
            for (i, x) in v.iter_mut().enumerate() {
                *x = Some(x.unwrap_or(0.0) + below.get(i).copied().flatten().unwrap_or(0.0));
            }
        }
        drawn.push(v);
    }
    let max = drawn.iter().flatten().flatten().fold(0.0f64, |a, b| a.max(*b));
    let y_max = if max <= 0.0 {
        if f.unit == Unit::Percent { 0.01 } else { 1.0 }
    } else {
        max * 1.1
    };
    // Rates and percentiles have data when any step has a value (0% is a value); stacked counts
    // only when something was counted.
    let has_data = drawn.iter().flatten().any(|v| v.is_some_and(|x| f.kind == Kind::Lines || x > 0.0));
    let ticks = time_ticks(x_from, x_to, f.tz, 6);
    let tick_points: Vec<i64> = ticks.iter().map(|t| t.0).collect();

    let mut svg = String::new();
    let mut plot_x = (0i32, WIDTH as i32);
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let built = ChartBuilder::on(&root)
            .margin_top(10)
            .margin_right(16)
            .margin_left(4)
            .x_label_area_size(24)
            .y_label_area_size(64)
            .build_cartesian_2d((x_from..x_to).with_key_points(tick_points), 0f64..y_max);
        if let Ok(mut chart) = built {
            let unit = f.unit;
            let label_of = |x: &i64| ticks.iter().find(|t| t.0 == *x).map(|t| t.1.clone()).unwrap_or_default();
            let font = ("sans-serif", 13).into_font().color(&INK);
            let _ = chart
                .configure_mesh()
                .disable_x_mesh()
                .bold_line_style(INK.mix(0.12))
                .light_line_style(TRANSPARENT)
                .axis_style(INK.mix(0.4))
                .label_style(font)
                .x_labels(ticks.len().max(1))
                .y_labels(5)
                .x_label_formatter(&label_of)
                .y_label_formatter(&|y: &f64| format::value(*y, unit))
                .draw();
            plot_x = (chart.plotting_area().get_pixel_range().0.start, chart.plotting_area().get_pixel_range().0.end);
            for (s, values) in series.iter().zip(drawn.iter()).rev() {
                let color = rgb(s.color);
                let pts: Vec<(i64, f64)> = f.t.iter().zip(values).filter_map(|(t, v)| v.map(|v| (*t, v))).collect();
                if f.kind == Kind::Stacked {
                    let _ = chart.draw_series(AreaSeries::new(pts, 0.0, color.mix(0.75)).border_style(color.stroke_width(1)));
                } else {
                    // One line per run of consecutive values.
                    let mut run: Vec<(i64, f64)> = Vec::new();
                    let mut runs = Vec::new();
                    for (t, v) in f.t.iter().zip(values) {
                        match v {
                            Some(v) => run.push((*t, *v)),
                            None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                            None => {}
                        }
                    }
                    if !run.is_empty() {
                        runs.push(run);
                    }
                    for r in runs {
                        if r.len() == 1 {
                            let _ = chart.draw_series(std::iter::once(Circle::new(r[0], 2, color.filled())));
                        } else {
                            let _ = chart.draw_series(LineSeries::new(r, color.stroke_width(2)));
                        }
                    }
                }
            }
            if !has_data {
                let _ = root.draw(&Text::new(
                    "No data in this range",
                    ((WIDTH / 2 - 70) as i32, (HEIGHT / 2 - 12) as i32),
                    ("sans-serif", 14).into_font().color(&INK.mix(0.6)),
                ));
            }
        }
        let _ = root.present();
    }
    let svg = svg
        .replace("#010203", "currentColor")
        .replacen(&format!("width=\"{WIDTH}\" height=\"{HEIGHT}\" "), "", 1)
        .replacen("<svg ", &format!("<svg class=\"chart-svg\" role=\"img\" aria-label=\"{}\" ", html_escape(&f.title)), 1);

    let span = x_to - x_from;
    let readouts = (0..n)
        .map(|i| {
            let mut parts = vec![readout_time(f.t[i], span, f.tz)];
            for s in &series {
                parts.push(format!("{}: {}", s.name, format::opt_value(s.values.get(i).copied().flatten(), f.unit)));
            }
            parts.join(" · ")
        })
        .collect();
    Chart {
        key: f.key,
        title: f.title,
        svg,
        legend: series.iter().map(|s| (s.name.clone(), s.color.to_string())).collect(),
        t: f.t.to_vec(),
        readouts,
        x_from,
        x_to,
        plot_x0: plot_x.0 as f64 / WIDTH as f64,
        plot_x1: plot_x.1 as f64 / WIDTH as f64,
        step_ms: f.step_ms,
        has_data,
        csv: f.csv,
    }
}

/// A small requests sparkline for the overview (no axes).
pub fn sparkline(values: &[i64]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (120, 28)).into_drawing_area();
        let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
        if let Ok(mut chart) = ChartBuilder::on(&root).margin(2).build_cartesian_2d(0..values.len().max(2) as i64 - 1, 0f64..max) {
            let pts: Vec<(i64, f64)> = values.iter().enumerate().map(|(i, v)| (i as i64, *v as f64)).collect();
            let _ = chart.draw_series(AreaSeries::new(pts, 0.0, rgb(BLUE).mix(0.25)).border_style(rgb(BLUE).stroke_width(1)));
        }
        let _ = root.present();
    }
    svg.replacen("width=\"120\" height=\"28\" ", "", 1).replacen("<svg ", "<svg class=\"sparkline\" aria-hidden=\"true\" ", 1)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}
