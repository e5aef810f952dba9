//! The success-rate-versus-ε plot (plotters' bitmap backend, text in the embedded DejaVu Sans
//! through `ab_glyph`, as [`crate::eval`]'s plot).

use super::report::AttackReport;
use crate::common::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use crate::eval::plot::{register_font, COLORS, FONT};

/// Draw `report` to a PNG at `path` (a temporary file in the same directory, then renamed, so a
/// failed drawing never leaves half a file).
pub(super) fn success_vs_eps(report: &AttackReport, path: &Path) -> Result<()> {
    register_font();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("attack.png");
    let tmp = dir.join(format!(".{name}.tmp-{}.png", std::process::id()));
    if let Err(e) = draw(report, &tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Config(format!("{}: drawing the plot: {e}", path.display())));
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { path: path.to_path_buf(), source }
    })
}

/// One panel: a line of success rate (%) versus ε per series `(label, points)`.
type Series = (String, Vec<(f64, f64)>);

fn draw(report: &AttackReport, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let goals = report.goals();
    let mut panels: Vec<(String, Vec<Series>)> = Vec::new();
    for &goal in &goals {
        let series = report
            .timesteps
            .iter()
            .map(|&t| {
                let pts = report.rows.iter().filter(|r| r.goal == goal && r.timesteps == t).map(|r| (r.eps as f64, 100.0 * r.success_rate)).collect();
                (format!("T = {t}"), pts)
            })
            .collect();
        panels.push((format!("{} attack at T", goal.label()), series));
    }
    if !report.transfer.is_empty() {
        // The timesteps the attacks read, so the transfer lines compare with the direct ones.
        let shown: Vec<usize> = report.timesteps.iter().map(|&t| t - 1).filter(|&s| s < report.transfer_timesteps).collect();
        for &goal in &goals {
            let series = shown
                .iter()
                .map(|&s| {
                    let pts = report.transfer.iter().filter(|r| r.goal == goal && r.timestep == s).map(|r| (r.eps as f64, 100.0 * r.success_rate)).collect();
                    (format!("timestep {s}"), pts)
                })
                .collect();
            panels.push((format!("{}: plain-network adversarials (transfer)", goal.label()), series));
        }
    }
    let cols = if panels.len() <= 1 { 1 } else { 2 };
    let rows = panels.len().max(1).div_ceil(cols);
    let root = BitMapBackend::new(path, (560 * cols as u32, 40 + 380 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("{}: success rate vs ε, {} images, {}", report.network, report.images, report.method.label());
    let root = root.titled(&caption, (FONT, 20))?;
    let areas = root.split_evenly((rows, cols));
    let e_max = report.epsilons.iter().copied().fold(0f32, f32::max).max(1e-3) as f64;
    for ((title, series), area) in panels.iter().zip(areas.iter()) {
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 15))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..e_max * 1.05, 0f64..101f64)?;
        chart
            .configure_mesh()
            .x_desc("ε (L∞)")
            .y_desc("success rate (%)")
            .y_labels(6)
            .x_label_formatter(&|x| format!("{x:.2}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (label, pts)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?.label(label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 12))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

