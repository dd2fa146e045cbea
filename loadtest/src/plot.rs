//! The charts of several rates: send-to-receive latency percentiles against the load, as offered
//! messages per second (chat) or deliveries per second (fanout).

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
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).context("drawing the plot")?;
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
    let mut chart = ChartBuilder::on(&root)
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
    root.present().context("writing the plot")?;
    Ok(())
}
