//! PNG charts of training runs (`microdnn plot RUN_DIR`) and the building blocks the lab uses:
//! line charts with legends and markers, and decision-boundary rasters.
//!
//! Text is drawn with `ab_glyph` from DejaVu Sans compiled into the binary (the `dejavu` crate),
//! so charts render the same on a machine without any system font.
//!
//! From a run folder's `metrics.json` ([`plot_run`]):
//! - `loss.png`, `accuracy.png`: training and validation curves, the epoch early stopping kept
//!   marked;
//! - with per-layer diagnostics (`"diagnostics"` in each epoch, `"diagnostics_at_init"`):
//!   `grad_norms.png` (log10 of each layer's gradient norm, epoch 0 = initialisation),
//!   `dead_units.png` (dead ReLU fraction per layer), `activations.png` (15/50/85th percentiles
//!   of each layer's activations) and `unit_input.png` (the same for the input of unit 0 of each
//!   layer).

mod run;

pub use run::{plot_metrics, plot_run};

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (900, 560);

/// Registers the embedded font as `sans-serif` (idempotent; called by every drawing function).
pub fn init_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Distinct line colours, picked in order.
pub const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One line of a chart.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points, in drawing order (non-finite ones are skipped).
    pub points: Vec<(f64, f64)>,
    /// Index into [`COLORS`].
    pub color: usize,
    /// Dashed line.
    pub dashed: bool,
    /// Draw a dot at each point.
    pub markers: bool,
}

impl Series {
    /// A solid line.
    pub fn new(label: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            dashed: false,
            markers: false,
        }
    }

    /// The same line, dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    /// The same line with a dot on every point.
    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }
}

/// A line chart.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Lines.
    pub series: Vec<Series>,
    /// Vertical markers: x and text.
    pub vlines: Vec<(f64, String)>,
    /// Fixed y range (default: the data's, padded).
    pub y_range: Option<(f64, f64)>,
    /// Legend position: upper right (default) or lower right.
    pub legend_lower: bool,
}

fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return None;
    }
    if hi - lo < 1e-12 {
        let pad = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

/// Draws `chart` as a PNG at `path`.
pub fn line_chart(path: &Path, chart: &Chart) -> anyhow::Result<()> {
    init_fonts();
    let pts = || chart.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) =
        range(pts().map(|p| p.0).chain(chart.vlines.iter().map(|v| v.0))).unwrap_or((0.0, 1.0));
    let (y0, y1) = match chart.y_range {
        Some(r) => r,
        None => {
            let (a, b) = range(pts().map(|p| p.1)).unwrap_or((0.0, 1.0));
            let pad = (b - a) * 0.05;
            (a - pad, b + pad)
        }
    };
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(75)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    c.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for s in &chart.series {
        let color = COLORS[s.color % COLORS.len()];
        let style = color.stroke_width(2);
        let p: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let anno = if s.dashed {
            c.draw_series(DashedLineSeries::new(p.clone(), 8, 5, style))?
        } else {
            c.draw_series(LineSeries::new(p.clone(), style))?
        };
        if !s.label.is_empty() {
            anno.label(&s.label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(3))
            });
        }
        if s.markers {
            c.draw_series(p.iter().map(|&xy| Circle::new(xy, 3, color.filled())))?;
        }
    }
    for (x, text) in &chart.vlines {
        let style = BLACK.mix(0.6).stroke_width(1);
        c.draw_series(DashedLineSeries::new(vec![(*x, y0), (*x, y1)], 4, 4, style))?;
        let y = y1 - (y1 - y0) * 0.04;
        c.draw_series(std::iter::once(Text::new(
            format!(" {text}"),
            (*x, y),
            ("sans-serif", 15).into_font().color(&BLACK),
        )))?;
    }
    if chart.series.iter().any(|s| !s.label.is_empty()) {
        c.configure_series_labels()
            .position(if chart.legend_lower {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Predicted class-1 probabilities on an `nx` by `ny` grid of cell centres over
/// `[x0, x1] x [y0, y1]`, row `j` (bottom to top) of column `i` at `prob[j * nx + i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Raster {
    /// Left edge.
    pub x0: f32,
    /// Right edge.
    pub x1: f32,
    /// Bottom edge.
    pub y0: f32,
    /// Top edge.
    pub y1: f32,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Class-1 probability per cell.
    pub prob: Vec<f32>,
}

impl Raster {
    /// The centre of cell `(i, j)`.
    pub fn centre(&self, i: usize, j: usize) -> (f32, f32) {
        (
            self.x0 + (i as f32 + 0.5) * (self.x1 - self.x0) / self.nx as f32,
            self.y0 + (j as f32 + 0.5) * (self.y1 - self.y0) / self.ny as f32,
        )
    }

    /// The share of cells predicted as class 1.
    pub fn class1_share(&self) -> f64 {
        self.prob.iter().filter(|&&p| p > 0.5).count() as f64 / self.prob.len() as f64
    }
}

/// A decision-boundary picture: a raster of predicted class-1 probabilities over a rectangle and
/// the labelled points drawn on top.
#[derive(Clone, Debug)]
pub struct BoundaryPlot<'a> {
    /// Title.
    pub title: String,
    /// The raster.
    pub raster: &'a Raster,
    /// Points `(x, y)` with their class (0 or 1).
    pub points: &'a [(f32, f32, u32)],
}

/// Draws a [`BoundaryPlot`] as a square PNG.
pub fn boundary_chart(path: &Path, b: &BoundaryPlot<'_>) -> anyhow::Result<()> {
    init_fonts();
    let r = b.raster;
    let root = BitMapBackend::new(path, (560, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(&b.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(r.x0 as f64..r.x1 as f64, r.y0 as f64..r.y1 as f64)?;
    c.configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 14))
        .draw()?;
    let (dx, dy) = (
        (r.x1 - r.x0) as f64 / r.nx as f64,
        (r.y1 - r.y0) as f64 / r.ny as f64,
    );
    c.draw_series((0..r.ny).flat_map(|j| {
        (0..r.nx).map(move |i| {
            let p = r.prob[j * r.nx + i] as f64;
            // Blue for class 0, red for class 1, pale near 0.5.
            let (c0, c1) = ((150.0, 180.0, 235.0), (240.0, 160.0, 150.0));
            let k = p.clamp(0.0, 1.0);
            let mix = |a: f64, b: f64| (a + (b - a) * k) as u8;
            let color = if (p - 0.5).abs() < 0.02 {
                RGBColor(90, 90, 90)
            } else {
                RGBColor(mix(c0.0, c1.0), mix(c0.1, c1.1), mix(c0.2, c1.2))
            };
            let x = r.x0 as f64 + i as f64 * dx;
            let y = r.y0 as f64 + j as f64 * dy;
            Rectangle::new([(x, y), (x + dx, y + dy)], color.filled())
        })
    }))?;
    c.draw_series(b.points.iter().map(|&(x, y, k)| {
        let color = if k == 0 {
            RGBColor(20, 60, 200)
        } else {
            RGBColor(200, 20, 20)
        };
        EmptyElement::at((x as f64, y as f64))
            + Circle::new((0, 0), 4, color.filled())
            + Circle::new((0, 0), 4, BLACK.stroke_width(1))
    }))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
