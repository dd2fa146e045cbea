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
    let max_rate = results.iter().map(|r| load.of(r)).fold(1.0, f64::max);
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
    let ms = |us: u64| us as f64 / 1000.0;
    let max_latency = results
        .iter()
        .map(|r| ms(r.send_to_receive.p999_us))
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&upper)
        .caption(caption, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_rate * 1.05, 0.0..max_latency * 1.1)
        .context("drawing the plot")?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("latency (ms)")
        .draw()
        .context("drawing the plot")?;
    type Series = (&'static str, fn(&RunResult) -> u64, RGBColor);
    let series: [Series; 3] = [
        ("p50", |r| r.send_to_receive.p50_us, BLUE),
        ("p99", |r| r.send_to_receive.p99_us, RGBColor(230, 120, 0)),
        ("p99.9", |r| r.send_to_receive.p999_us, RED),
    ];
    for (name, value, color) in series {
        let points: Vec<(f64, f64)> = results.iter().map(|r| (load.of(r), ms(value(r)))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .context("drawing the plot")?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )
            .context("drawing the plot")?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .context("drawing the plot")?;
    cpu_per_delivery(&lower, results, load, max_rate, x_desc)?;
    root.present().context("writing the plot")?;
    Ok(())
}

/// The CPU per delivery of each rate's run: the edges' processes and the machine's whole.
fn cpu_per_delivery(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    results: &[RunResult],
    load: Load,
    max_rate: f64,
    x_desc: &str,
) -> anyhow::Result<()> {
    let max_cpu = (results.iter())
        .map(|r| r.machine_cpu_micros_per_delivery)
        .chain(
            results
                .iter()
                .filter_map(|r| r.edge_cpu_micros_per_delivery),
        )
        .fold(0.1, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("CPU per delivery", ("sans-serif", 18))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_rate * 1.05, 0.0..max_cpu * 1.1)
        .context("drawing the plot")?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("CPU per delivery (us)")
        .draw()
        .context("drawing the plot")?;
    type Series = (&'static str, fn(&RunResult) -> Option<f64>, RGBColor);
    let series: [Series; 2] = [
        ("the edges", |r| r.edge_cpu_micros_per_delivery, BLUE),
        (
            "the machine (generator included)",
            |r| Some(r.machine_cpu_micros_per_delivery),
            BLACK,
        ),
    ];
    for (name, value, color) in series {
        let points: Vec<(f64, f64)> = (results.iter())
            .filter_map(|r| Some((load.of(r), value(r)?)))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .context("drawing the plot")?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )
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
