//! The plots, drawn with plotters into SVG: wall time against N (one panel per profile, every
//! variant, the ideal dashed) and StartFailbackLaunch over time under throttling. Plotters lays
//! out the axes, ticks and scales; what is left here is which figures go where, and the legends
//! below the plots (one for all panels, which plotters' own per-chart legend cannot do).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::workload::{
    BURST, CONCURRENCY, LATENCY, Minimum, Profile, RATE_PER_SECOND, Run, Variant, ideal,
};

/// Seconds, and a count or seconds.
type Point = (f64, f64);
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn<'a> = Result<(), DrawingAreaErrorKind<<SVGBackend<'a> as DrawingBackend>::ErrorType>>;

/// Plotters draws text at 1/1.24 of the size asked for: these are the sizes asked for.
const TITLE: u32 = 19;
const CAPTION: u32 = 16;
const TEXT: u32 = 15;
const GREY: RGBColor = RGBColor(0x77, 0x77, 0x77);
const MESH: RGBColor = RGBColor(0xee, 0xee, 0xee);

fn colour(variant: Variant) -> RGBColor {
    match variant {
        Variant::Project => RGBColor(0x1f, 0x77, 0xb4),
        Variant::Unpaced => RGBColor(0xff, 0x7f, 0x0e),
        Variant::Baseline => RGBColor(0xd6, 0x27, 0x28),
    }
}

/// Circle for the project, diamond without pacing, square for the baseline; hollow when the run
/// did not launch every instance.
fn marker<'b, DB: DrawingBackend + 'b, C: Clone + 'b>(
    variant: Variant,
    at: C,
    complete: bool,
) -> DynElement<'b, DB, C> {
    let stroke = colour(variant).stroke_width(2);
    let fill = if complete { colour(variant) } else { WHITE }.filled();
    let diamond = vec![(0, -5), (5, 0), (0, 5), (-5, 0), (0, -5)];
    let at = EmptyElement::at(at);
    match variant {
        Variant::Project => {
            (at + Circle::new((0, 0), 4, fill) + Circle::new((0, 0), 4, stroke)).into_dyn()
        }
        Variant::Unpaced => {
            (at + Polygon::new(diamond.clone(), fill) + PathElement::new(diamond, stroke))
                .into_dyn()
        }
        Variant::Baseline => (at
            + Rectangle::new([(-4, -4), (4, 4)], fill)
            + Rectangle::new([(-4, -4), (4, 4)], stroke))
        .into_dyn(),
    }
}

/// A legend line: its sample (a line, with the variant's marker if any) and its words.
fn legend_entry(area: &Area, (x, y): (i32, i32), sample: Sample, words: &str) -> Drawn<'static> {
    let line = vec![(x, y), (x + 28, y)];
    match sample {
        Sample::Variant(variant, with_marker) => {
            area.draw(&PathElement::new(line, colour(variant).stroke_width(2)))?;
            if with_marker {
                area.draw(&marker(variant, (x + 14, y), true))?;
            }
        }
        Sample::Ideal => area.draw(&DashedPathElement::new(line, 5, 4, GREY.stroke_width(1)))?,
    }
    area.draw(&Text::new(
        words.to_owned(),
        (x + 34, y - 6),
        ("sans-serif", TEXT),
    ))
}

#[derive(Clone, Copy)]
enum Sample {
    Variant(Variant, bool),
    Ideal,
}

/// Axis numbers as a person writes them: 0.5, 10, not 10.0.
fn number(value: &f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

pub fn wall_time_svg(runs: &[Run], ns: &[usize]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1140, 370)).into_drawing_area();
        wall_time(&root, runs, ns).map_err(|e| format!("wall-time plot: {e}"))?;
        root.present().map_err(|e| format!("wall-time plot: {e}"))?;
    }
    Ok(svg)
}

fn wall_time<'a>(root: &Area<'a>, runs: &[Run], ns: &[usize]) -> Drawn<'a> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "drs-failback wall time against N (real time, simulator latency 50 ms per call)",
        ("sans-serif", TITLE).into_font().style(FontStyle::Bold),
    )?;
    let (panels, legend) = root.split_vertically(285);
    for (area, profile) in panels.split_evenly((1, 3)).iter().zip(Profile::ALL) {
        wall_time_panel(area, profile, runs, ns)?;
    }
    let mut x = 52;
    for variant in [Variant::Project, Variant::Unpaced, Variant::Baseline] {
        legend_entry(
            &legend,
            (x, 20),
            Sample::Variant(variant, true),
            variant.name(),
        )?;
        x += 34 + 8 * variant.name().len() as i32;
    }
    legend_entry(&legend, (x, 20), Sample::Ideal, "ideal (see BENCHMARKS.md)")?;
    legend.draw(&Text::new(
        "Hollow marker: the run did not launch every instance (some deferred); its wall time is not comparable.",
        (52, 36),
        ("sans-serif", TEXT),
    ))
}

/// One profile: every variant's wall time against N (log scale), the ideal dashed.
fn wall_time_panel<'a>(area: &Area<'a>, profile: Profile, runs: &[Run], ns: &[usize]) -> Drawn<'a> {
    let of_profile: Vec<&Run> = runs.iter().filter(|r| r.profile == profile).collect();
    let top = of_profile
        .iter()
        .map(|r| r.wall.as_secs_f64())
        .chain(ns.iter().map(|n| ideal(profile, *n).as_secs_f64()))
        .fold(0.1f64, f64::max)
        * 1.05;
    let (min_n, max_n) = (
        ns.iter().copied().min().unwrap_or(100) as f64,
        ns.iter().copied().max().unwrap_or(5000) as f64,
    );
    let keys: Vec<f64> = ns.iter().map(|n| *n as f64).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            profile.name(),
            ("sans-serif", CAPTION).into_font().style(FontStyle::Bold),
        )
        .margin_right(24)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(
            (min_n * 0.8..max_n * 1.25)
                .log_scale()
                .with_key_points(keys),
            0f64..top,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .bold_line_style(MESH)
        .x_desc("requested instances N (log scale)")
        .y_desc("wall time (s)")
        .x_label_formatter(&|n| format!("{n:.0}"))
        .y_label_formatter(&number)
        .y_labels(5)
        .label_style(("sans-serif", TEXT))
        .draw()?;
    let ideal_line = ns
        .iter()
        .map(|n| (*n as f64, ideal(profile, *n).as_secs_f64()));
    chart.draw_series(DashedLineSeries::new(
        ideal_line,
        5,
        4,
        GREY.stroke_width(1),
    ))?;
    // The baseline first, so the project's line stays visible where they coincide.
    for variant in profile.variants().iter().rev() {
        let mut points: Vec<(f64, f64, bool)> = of_profile
            .iter()
            .filter(|r| r.variant == *variant)
            .map(|r| (r.n as f64, r.wall.as_secs_f64(), r.complete()))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let line = points.iter().map(|(x, y, _)| (*x, *y));
        chart.draw_series(LineSeries::new(line, colour(*variant).stroke_width(2)))?;
        for (x, y, complete) in points {
            chart
                .plotting_area()
                .draw(&marker(*variant, (x, y), complete))?;
        }
    }
    Ok(())
}

/// Launches over time in the throttling profile at one N: cumulative admitted launches per
/// variant (the median run), each throttled call crossed where it happened, and the ideal.
pub fn launch_timeline_svg(runs: &[Run], n: usize) -> Result<Option<String>, String> {
    let shown: Vec<&Run> = [Variant::Baseline, Variant::Unpaced, Variant::Project]
        .iter()
        .filter_map(|v| {
            runs.iter()
                .find(|r| r.profile == Profile::Throttling && r.n == n && r.variant == *v)
        })
        .collect();
    if shown.is_empty() {
        return Ok(None);
    }
    let mut svg = String::new();
    {
        let height = 400 + 18 * (shown.len() as u32 + 1);
        let root = SVGBackend::with_string(&mut svg, (850, height)).into_drawing_area();
        launch_timeline(&root, &shown, n).map_err(|e| format!("launch timeline: {e}"))?;
        root.present()
            .map_err(|e| format!("launch timeline: {e}"))?;
    }
    Ok(Some(svg))
}

fn launch_timeline<'a>(root: &Area<'a>, shown: &[&Run], n: usize) -> Drawn<'a> {
    let minimum = Minimum::of(Profile::Throttling, n);
    let jobs = minimum.launches as f64;
    // The ideal: the reads, then the burst at once, then one launch per token.
    let ideal_start =
        (LATENCY * (1 + minimum.describe_instances).div_ceil(CONCURRENCY) as u32).as_secs_f64();
    let ideal_end =
        ideal_start + minimum.launches.saturating_sub(BURST as usize) as f64 / RATE_PER_SECOND;
    let last = shown
        .iter()
        .flat_map(|r| r.launches.last().map(|(at, _)| *at as f64 / 1e3))
        .fold(ideal_end, f64::max);
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "StartFailbackLaunch over time, throttling profile, N = {n} ({RATE_PER_SECOND}/s, burst {BURST})"
        ),
        ("sans-serif", TITLE).into_font().style(FontStyle::Bold),
    )?;
    let (plot, legend) = root.split_vertically(360);
    let mut chart = ChartBuilder::on(&plot)
        .margin_right(30)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..last * 1.05, 0f64..jobs * 1.05)?;
    chart
        .configure_mesh()
        .max_light_lines(0)
        .bold_line_style(MESH)
        .x_desc("seconds since the run's first call")
        .y_desc("admitted launches (jobs created)")
        .x_label_formatter(&number)
        .y_label_formatter(&number)
        .label_style(("sans-serif", TEXT))
        .draw()?;
    let ideal = [
        (ideal_start, 0.0),
        (ideal_start, f64::from(BURST).min(jobs)),
        (ideal_end, jobs),
    ];
    chart.draw_series(DashedLineSeries::new(ideal, 5, 4, GREY.stroke_width(1)))?;
    for run in shown {
        let (steps, throttles) = admitted_steps(run);
        chart.draw_series(LineSeries::new(steps, colour(run.variant).stroke_width(2)))?;
        let cross = colour(run.variant).stroke_width(1);
        chart.draw_series(throttles.into_iter().map(|at| Cross::new(at, 3, cross)))?;
    }
    let mut y = 12;
    for run in shown.iter().rev() {
        let throttled = run.launches.iter().filter(|(_, s)| *s != 200).count();
        let words = format!(
            "{}: {} launched, {throttled} throttled calls (×)",
            run.variant.name(),
            run.launched
        );
        legend_entry(
            &legend,
            (60, y),
            Sample::Variant(run.variant, false),
            &words,
        )?;
        y += 18;
    }
    let words = "ideal: the burst at once after the reads, then one launch per token";
    legend_entry(&legend, (60, y), Sample::Ideal, words)
}

/// The admitted launches as a staircase over time, and where each throttled call fell on it.
fn admitted_steps(run: &Run) -> (Vec<Point>, Vec<Point>) {
    let mut admitted = 0.0;
    let mut steps = vec![(0.0, 0.0)];
    let mut throttles = Vec::new();
    for (at, status) in &run.launches {
        let t = *at as f64 / 1e3;
        if *status == 200 {
            steps.push((t, admitted));
            admitted += 1.0;
            steps.push((t, admitted));
        } else {
            throttles.push((t, admitted));
        }
    }
    (steps, throttles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;

    fn recorded() -> Report {
        serde_json::from_str(include_str!("../testdata/results.json")).unwrap()
    }

    #[test]
    fn the_plots_of_the_recorded_run_say_what_they_show_and_do_not_vary() {
        let report = recorded();
        let wall = wall_time_svg(&report.runs, &report.ns).unwrap();
        assert!(wall.starts_with("<svg") && wall.trim_end().ends_with("</svg>"));
        for words in [
            "no faults",
            "quota pressure",
            "baseline: SDK standard retry",
            "ideal",
        ] {
            assert!(wall.contains(words), "{words}");
        }
        assert_eq!(wall, wall_time_svg(&report.runs, &report.ns).unwrap());
        let timeline = launch_timeline_svg(&report.runs, 5000).unwrap().unwrap();
        assert!(timeline.contains("project, pacing off: 5000 launched, 72 throttled calls"));
        assert_eq!(launch_timeline_svg(&report.runs, 7).unwrap(), None);
    }
}
