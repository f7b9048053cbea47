//! A hand-written SVG: wall time against N, one panel per profile, project vs baseline, with
//! the ideal dashed.

use std::fmt::Write;

use crate::workload::{Profile, Run, Variant, ideal};

const PANEL_W: f64 = 300.0;
const PANEL_H: f64 = 230.0;
const LEFT: f64 = 52.0;
const TOP: f64 = 44.0;
const GAP: f64 = 28.0;
const BOTTOM: f64 = 96.0;

fn colour(variant: Variant) -> &'static str {
    match variant {
        Variant::Project => "#1f77b4",
        Variant::Unpaced => "#ff7f0e",
        Variant::Baseline => "#d62728",
    }
}

/// Circle for the project, diamond without pacing, square for the baseline.
fn marker(variant: Variant, x: f64, y: f64, fill: &str) -> String {
    let stroke = colour(variant);
    match variant {
        Variant::Project => format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" fill="{fill}" stroke="{stroke}" stroke-width="2"/>"#
        ),
        Variant::Unpaced => format!(
            r#"<path d="M {x:.1} {:.1} L {:.1} {y:.1} L {x:.1} {:.1} L {:.1} {y:.1} Z" fill="{fill}" stroke="{stroke}" stroke-width="2"/>"#,
            y - 5.5,
            x + 5.5,
            y + 5.5,
            x - 5.5
        ),
        Variant::Baseline => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="{fill}" stroke="{stroke}" stroke-width="2"/>"#,
            x - 4.0,
            y - 4.0
        ),
    }
}

/// A round step giving 4 to 6 ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let residual = raw / magnitude;
    let nice = if residual <= 1.0 {
        1.0
    } else if residual <= 2.0 {
        2.0
    } else if residual <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn wall_time_svg(runs: &[Run], ns: &[usize]) -> String {
    let profiles = Profile::ALL;
    let width = LEFT + profiles.len() as f64 * (PANEL_W + GAP + LEFT) - LEFT;
    let height = TOP + PANEL_H + BOTTOM;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/>
<text x="{:.0}" y="20" font-size="15" font-weight="bold" text-anchor="middle">drs-failback wall time against N (real time, simulator latency 50 ms per call)</text>"#,
        width / 2.0
    );
    let (min_n, max_n) = (
        *ns.iter().min().unwrap_or(&100) as f64,
        *ns.iter().max().unwrap_or(&5000) as f64,
    );
    let x_of = |n: usize, x0: f64| {
        let span = (max_n.log10() - min_n.log10()).max(1e-9);
        x0 + 16.0 + (PANEL_W - 32.0) * ((n as f64).log10() - min_n.log10()) / span
    };
    for (index, profile) in profiles.iter().enumerate() {
        let x0 = LEFT + index as f64 * (PANEL_W + GAP + LEFT);
        let of_profile: Vec<&Run> = runs.iter().filter(|r| r.profile == *profile).collect();
        let max_wall = of_profile
            .iter()
            .map(|r| r.wall.as_secs_f64())
            .chain(ns.iter().map(|n| ideal(*profile, *n).as_secs_f64()))
            .fold(0.1f64, f64::max);
        let step = nice_step(max_wall * 1.05);
        let top = (max_wall * 1.05 / step).ceil() * step;
        let y_of = |seconds: f64| TOP + PANEL_H - PANEL_H * seconds / top;

        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold" text-anchor="middle">{}</text>
<rect x="{x0:.1}" y="{TOP:.1}" width="{PANEL_W:.1}" height="{PANEL_H:.1}" fill="none" stroke="#999"/>"##,
            x0 + PANEL_W / 2.0,
            TOP - 8.0,
            escape(profile.name())
        );
        let mut tick = 0.0;
        while tick <= top + step / 2.0 {
            let y = y_of(tick);
            let label = if step < 1.0 {
                format!("{tick:.1}")
            } else {
                format!("{tick:.0}")
            };
            let _ = writeln!(
                svg,
                r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>
<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
                x0 + PANEL_W,
                x0 - 5.0,
                y + 4.0
            );
            tick += step;
        }
        for n in ns {
            let x = x_of(*n, x0);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/>
<text x="{x:.1}" y="{:.1}" text-anchor="middle">{n}</text>"##,
                TOP + PANEL_H,
                TOP + PANEL_H + 5.0,
                TOP + PANEL_H + 18.0
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">requested instances N (log scale)</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">wall time (s)</text>"#,
            x0 + PANEL_W / 2.0,
            TOP + PANEL_H + 34.0,
            x0 - 38.0,
            TOP + PANEL_H / 2.0,
            x0 - 38.0,
            TOP + PANEL_H / 2.0
        );

        // The ideal, dashed.
        let ideal_points: Vec<String> = ns
            .iter()
            .map(|n| {
                format!(
                    "{:.1},{:.1}",
                    x_of(*n, x0),
                    y_of(ideal(*profile, *n).as_secs_f64())
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#777" stroke-width="1.5" stroke-dasharray="5,4"/>"##,
            ideal_points.join(" ")
        );
        // The baseline first, so the project's line stays visible where they coincide.
        for variant in profile.variants().iter().rev() {
            let mut points: Vec<(f64, f64, bool)> = of_profile
                .iter()
                .filter(|r| r.variant == *variant)
                .map(|r| (x_of(r.n, x0), y_of(r.wall.as_secs_f64()), r.complete()))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let line: Vec<String> = points
                .iter()
                .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
                line.join(" "),
                colour(*variant)
            );
            for (x, y, complete) in points {
                let fill = if complete { colour(*variant) } else { "white" };
                let _ = writeln!(svg, "{}", marker(*variant, x, y, fill));
            }
        }
    }

    // Legend.
    let legend_y = TOP + PANEL_H + 62.0;
    let mut x = LEFT;
    for variant in [Variant::Project, Variant::Unpaced, Variant::Baseline] {
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{}" stroke-width="2"/>
{}
<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 28.0,
            colour(variant),
            marker(variant, x + 14.0, legend_y, colour(variant)),
            x + 34.0,
            legend_y + 4.0,
            escape(variant.name())
        );
        x += 34.0 + 8.0 * variant.name().len() as f64;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="#777" stroke-width="1.5" stroke-dasharray="5,4"/>
<text x="{:.1}" y="{:.1}">ideal (see BENCHMARKS.md)</text>
<text x="{LEFT:.1}" y="{:.1}">Hollow marker: the run did not launch every instance (some deferred); its wall time is not comparable.</text>"##,
        x + 28.0,
        x + 34.0,
        legend_y + 4.0,
        legend_y + 24.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// Launches over time in the throttling profile at one N: cumulative admitted launches per
/// variant (the median run), each throttled call marked where it happened, and the ideal.
pub fn launch_timeline_svg(runs: &[Run], n: usize) -> Option<String> {
    use crate::workload::{BURST, CONCURRENCY, LATENCY, Minimum, RATE_PER_SECOND};

    let shown: Vec<&Run> = [Variant::Baseline, Variant::Unpaced, Variant::Project]
        .iter()
        .filter_map(|v| {
            runs.iter()
                .find(|r| r.profile == Profile::Throttling && r.n == n && r.variant == *v)
        })
        .collect();
    if shown.is_empty() {
        return None;
    }
    let minimum = Minimum::of(Profile::Throttling, n);
    let jobs = minimum.launches as f64;
    let ideal_start =
        (LATENCY * (1 + minimum.describe_instances).div_ceil(CONCURRENCY) as u32).as_secs_f64();
    let ideal_end =
        ideal_start + minimum.launches.saturating_sub(BURST as usize) as f64 / RATE_PER_SECOND;
    let t_max = shown
        .iter()
        .flat_map(|r| r.launches.last().map(|(at, _)| *at as f64 / 1e3))
        .fold(ideal_end, f64::max);
    let step = nice_step(t_max * 1.05);
    let x_top = (t_max * 1.05 / step).ceil() * step;
    let (left, top, w, h) = (60.0, 44.0, 760.0, 300.0);
    let width = left + w + 30.0;
    let height = top + h + 56.0 + 18.0 * (shown.len() as f64 + 1.0);
    let x_of = |t: f64| left + w * t / x_top;
    let y_of = |count: f64| top + h - h * count / (jobs * 1.05);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{:.0}" y="20" font-size="15" font-weight="bold" text-anchor="middle">StartFailbackLaunch over time, throttling profile, N = {n} ({RATE_PER_SECOND}/s, burst {BURST})</text>
<rect x="{left:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#999"/>"##,
        width / 2.0
    );
    let mut tick = 0.0;
    while tick <= x_top + step / 2.0 {
        let x = x_of(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/>
<text x="{x:.1}" y="{:.1}" text-anchor="middle">{tick:.0}</text>"##,
            top + h,
            top + h + 16.0
        );
        tick += step;
    }
    let y_step = nice_step(jobs);
    let mut count = 0.0;
    while count <= jobs + y_step / 2.0 {
        let y = y_of(count);
        let _ = writeln!(
            svg,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>
<text x="{:.1}" y="{:.1}" text-anchor="end">{count:.0}</text>"##,
            left + w,
            left - 6.0,
            y + 4.0
        );
        count += y_step;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since the run's first call</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">admitted launches (jobs created)</text>"#,
        left + w / 2.0,
        top + h + 34.0,
        left - 42.0,
        top + h / 2.0,
        left - 42.0,
        top + h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<polyline points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="none" stroke="#777" stroke-width="1.5" stroke-dasharray="5,4"/>"##,
        x_of(ideal_start),
        y_of(0.0),
        x_of(ideal_start),
        y_of(f64::from(BURST).min(jobs)),
        x_of(ideal_end),
        y_of(jobs)
    );
    for run in &shown {
        let colour = colour(run.variant);
        let mut admitted = 0.0;
        let mut points = vec![format!("{:.1},{:.1}", x_of(0.0), y_of(0.0))];
        let mut crosses = String::new();
        for (at, status) in &run.launches {
            let x = x_of(*at as f64 / 1e3);
            if *status == 200 {
                points.push(format!("{x:.1},{:.1}", y_of(admitted)));
                admitted += 1.0;
                points.push(format!("{x:.1},{:.1}", y_of(admitted)));
            } else {
                let y = y_of(admitted);
                let _ = write!(
                    crosses,
                    r#"<path d="M {:.1} {:.1} L {:.1} {:.1} M {:.1} {:.1} L {:.1} {:.1}" stroke="{colour}" stroke-width="1.2"/>"#,
                    x - 3.0,
                    y - 3.0,
                    x + 3.0,
                    y + 3.0,
                    x - 3.0,
                    y + 3.0,
                    x + 3.0,
                    y - 3.0
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>
{crosses}"#,
            points.join(" ")
        );
    }
    let mut legend_y = top + h + 56.0;
    let x = left;
    for run in shown.iter().rev() {
        let throttled = run.launches.iter().filter(|(_, s)| *s != 200).count();
        let label = format!(
            "{}: {} launched, {} throttled calls (×)",
            run.variant.name(),
            run.launched,
            throttled
        );
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{}" stroke-width="2"/>
<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 24.0,
            colour(run.variant),
            x + 30.0,
            legend_y + 4.0,
            escape(&label)
        );
        legend_y += 18.0;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#777" stroke-width="1.5" stroke-dasharray="5,4"/>
<text x="{:.1}" y="{:.1}">ideal: the burst at once after the reads, then one launch per token</text>
</svg>"##,
        legend_y,
        left + 24.0,
        legend_y,
        left + 30.0,
        legend_y + 4.0
    );
    Some(svg)
}
