//! The charts of several rates: send-to-receive latency percentiles against the load, as offered
//! messages per second (chat) or deliveries per second (fanout), and below them the CPU each
//! delivery took (the edges, and the whole machine with the generator).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::run::RunResult;

/// What the chart's load axis shows.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Messages sent per second (chat: each to a handful of devices).
    Offered,
    /// Messages delivered per second over every device (fanout).
    Delivered,
}

impl Load {
    fn of(self, r: &RunResult) -> f64 {
        match self {
            Self::Offered => r.offered_rate as f64,
            Self::Delivered => r.deliveries_per_second,
        }
    }
}

pub fn latency_against_load(path: &Path, results: &[RunResult], load: Load) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 860)).into_drawing_area();
    root.fill(&WHITE).context("drawing the plot")?;
    let (upper, lower) = root.split_vertically(540);
    let (caption, x_desc) = match load {
        Load::Offered => (
            "Send-to-receive latency against offered load (chat)",
            "offered load (messages per second)",
        ),
        Load::Delivered => (
            "Send-to-receive latency against deliveries per second (fanout)",
            "deliveries per second",
        ),
    };
    let axis = Axis {
        max: results.iter().map(|r| load.of(r)).fold(1.0, f64::max),
        desc: x_desc,
    };
    let points = |value: fn(&RunResult) -> Option<f64>| -> Vec<(f64, f64)> {
        (results.iter())
            .filter_map(|r| Some((load.of(r), value(r)?)))
            .collect()
    };
    let latency = [
        ("p50", points(|r| ms(r.send_to_receive.p50_us)), BLUE),
        (
            "p99",
            points(|r| ms(r.send_to_receive.p99_us)),
            RGBColor(230, 120, 0),
        ),
        ("p99.9", points(|r| ms(r.send_to_receive.p999_us)), RED),
    ];
    panel(&upper, (caption, 22), &axis, "latency (ms)", &latency)?;
    let cpu = [
        (
            "the edges",
            points(|r| r.edge_cpu_micros_per_delivery),
            BLUE,
        ),
        (
            "the machine (generator included)",
            points(|r| Some(r.machine_cpu_micros_per_delivery)),
            BLACK,
        ),
    ];
    panel(
        &lower,
        ("CPU per delivery", 18),
        &axis,
        "CPU per delivery (us)",
        &cpu,
    )?;
    root.present().context("writing the plot")?;
    Ok(())
}

/// Microseconds as milliseconds, for the latency panel.
fn ms(us: u64) -> Option<f64> {
    Some(us as f64 / 1000.0)
}

/// A line of a panel: its name, its points (load, value), its colour.
type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// The load axis every panel shares.
struct Axis<'a> {
    max: f64,
    desc: &'a str,
}

/// One chart: each series a line through its points (a series with none is left out), the
/// vertical axis from zero to a little over the largest value.
fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    caption: (&str, u32),
    axis: &Axis,
    y_desc: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    let max_y = (series.iter())
        .flat_map(|(_, points, _)| points.iter().map(|&(_, y)| y))
        .fold(0.1, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(caption.0, ("sans-serif", caption.1))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..axis.max * 1.05, 0.0..max_y * 1.1)
        .context("drawing the plot")?;
    chart
        .configure_mesh()
        .x_desc(axis.desc)
        .y_desc(y_desc)
        .draw()
        .context("drawing the plot")?;
    for (name, points, color) in series.iter().filter(|(_, points, _)| !points.is_empty()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .context("drawing the plot")?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .context("drawing the plot")?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .context("drawing the plot")?;
    Ok(())
}
