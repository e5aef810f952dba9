//! The accuracy-versus-timestep plot, drawn with `plotters` (bitmap backend, text with the
//! embedded DejaVu Sans font through `ab_glyph`: no system font libraries needed).

use super::Report;
use crate::common::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The font name plots draw with (DejaVu Sans, registered by [`register_font`]).
pub(crate) const FONT: &str = "sans-serif";

/// Register the embedded DejaVu Sans under [`FONT`] (once per process).
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // DejaVu Sans is a valid TrueType font; registration cannot fail for it.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Distinct line colours (matplotlib's first eight), cycled.
pub(crate) const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Draw the report's accuracies to a PNG at `path` (rendered to a temporary file in the same
/// directory, then renamed).
pub(super) fn accuracy_vs_timestep(report: &Report, path: &Path) -> Result<()> {
    register_font();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("plot.png");
    let tmp = dir.join(format!(".{name}.tmp-{}.png", std::process::id()));
    let drawn = draw(report, &tmp);
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Config(format!("{}: drawing the plot: {e}", path.display())));
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { path: path.to_path_buf(), source }
    })
}

fn draw(report: &Report, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    // One panel per condition, each with its own accuracy scale, so that changes of a fraction
    // of a percent over the timesteps stay visible next to conditions far apart in accuracy.
    let k = report.results.len().max(1);
    let cols = if k <= 1 { 1 } else if k <= 4 { 2 } else { 3 };
    let rows = k.div_ceil(cols);
    let (w, h) = (480 * cols as u32, 40 + 320 * rows as u32);
    let root = BitMapBackend::new(path, (w.max(960), h)).into_drawing_area();
    root.fill(&WHITE)?;
    let label = if report.label.is_empty() { String::new() } else { format!(" [{}]", report.label) };
    let caption = format!(
        "{}{label}: accuracy vs timestep, {} images (dashed: plain network; band: ff + 95% CI of Δ)",
        report.network, report.images
    );
    let root = root.titled(&caption, (FONT, 17))?;
    let panels = root.split_evenly((rows, cols));
    let t_max = report.timesteps.max(1) as f64;
    for (i, r) in report.results.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // The paired interval of each timestep, drawn as a band around the accuracy it would
        // imply (ff + [lo, hi]): where the band leaves the dashed line, the change is real.
        let band: Vec<(f64, f64, f64)> = r.paired.iter().enumerate().map(|(t, p)| (t as f64, (r.feedforward + p.ci_lo) * 100.0, (r.feedforward + p.ci_hi) * 100.0)).collect();
        let vals = r.timesteps.iter().copied().chain([r.feedforward]).chain(band.iter().flat_map(|b| [b.1 / 100.0, b.2 / 100.0]));
        let (lo, hi) = vals.fold((1.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let pad = ((hi - lo) * 0.15).max(0.005);
        let (y0, y1) = ((lo - pad).max(0.0) * 100.0, (hi + pad).min(1.0) * 100.0);
        let (t0, last) = (r.timesteps[0], *r.timesteps.last().unwrap_or(&r.timesteps[0]));
        let ns = if r.paired.last().is_some_and(|p| !p.significant()) { " n.s." } else { "" };
        let title = format!("{}: {:.2}% → {:.2}% ({:+.2}{ns})", r.noise.label(), 100.0 * t0, 100.0 * last, 100.0 * (last - t0));
        let mut chart = ChartBuilder::on(&panels[i])
            .caption(title, (FONT, 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.2f64..t_max + 0.2, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("timestep")
            .y_desc("accuracy (%)")
            .x_labels(report.timesteps.min(20) + 1)
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if !band.is_empty() {
            let outline: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).chain(band.iter().rev().map(|b| (b.0, b.1))).collect();
            chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.15).filled())))?;
        }
        let pts: Vec<(f64, f64)> = r.timesteps.iter().enumerate().map(|(t, v)| (t as f64, v * 100.0)).collect();
        chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        let ff = r.feedforward * 100.0;
        chart.draw_series(DashedLineSeries::new(vec![(0.0, ff), (t_max, ff)], 6, 4, BLACK.mix(0.5).stroke_width(1)))?;
    }
    root.present()?;
    Ok(())
}
