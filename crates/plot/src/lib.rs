//! Line charts for the report: one or more named series over a shared x axis (epochs, β, N…),
//! with title, axis labels, legend and grid, saved as both PNG and SVG; grids of grey-scale
//! images; and attention maps ([`HeatmapGrid`]).
//!
//! Text is drawn with DejaVu Sans embedded in the binary, so rendering needs no system fonts.
//!
//! ```no_run
//! use plot::{LineChart, Series};
//! LineChart::new("Validation CER")
//!     .x_label("epoch")
//!     .y_label("CER")
//!     .series(Series::new("attention", vec![(1.0, 0.53), (2.0, 0.32), (3.0, 0.28)]))
//!     .save("reports/val_cer")?; // writes val_cer.png and val_cer.svg
//! # Ok::<(), anyhow::Error>(())
//! ```

mod heatmap;

pub use heatmap::{Heatmap, HeatmapGrid};

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One named line, optionally with a shaded band (e.g. mean ± standard deviation).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// (x, y) points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Optional (x, low, high) band drawn under the line.
    pub band: Option<Vec<(f64, f64, f64)>>,
}

impl Series {
    /// A plain line.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            band: None,
        }
    }

    /// A line over epochs 1, 2, … from a slice of values.
    pub fn over_epochs(name: impl Into<String>, values: &[f64]) -> Self {
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect();
        Self::new(name, points)
    }

    /// Adds a shaded (x, low, high) band.
    pub fn with_band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = Some(band);
        self
    }
}

/// A line chart; build it with the chained setters, then [`LineChart::save`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Caption above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis.
    pub y_label: String,
    /// The lines, drawn in order with a fixed palette.
    pub series: Vec<Series>,
    /// Image size in pixels (PNG) or user units (SVG).
    pub size: (u32, u32),
}

impl LineChart {
    /// An empty 800×500 chart with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            size: (800, 500),
        }
    }

    /// Sets the x-axis label.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the y-axis label.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Adds a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Sets the image size.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Writes `<stem>.png` and `<stem>.svg` (any extension on `stem` is replaced) and returns
    /// both paths. Each is rendered to a temporary sibling and renamed into place, so a full
    /// disk or a kill never leaves a truncated figure under the final name.
    pub fn save(&self, stem: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
        let png = stem.as_ref().with_extension("png");
        let svg = stem.as_ref().with_extension("svg");
        artifacts::with_temp_file(&png, |tmp| {
            self.render(BitMapBackend::new(tmp, self.size).into_drawing_area())
        })
        .with_context(|| format!("rendering {}", png.display()))?;
        artifacts::with_temp_file(&svg, |tmp| {
            self.render(SVGBackend::new(tmp, self.size).into_drawing_area())
        })
        .with_context(|| format!("rendering {}", svg.display()))?;
        Ok((png, svg))
    }

    fn bounds(&self) -> Result<((f64, f64), (f64, f64))> {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for s in &self.series {
            for &(x, y) in &s.points {
                xs.push(x);
                ys.push(y);
            }
            for &(x, lo, hi) in s.band.iter().flatten() {
                xs.push(x);
                ys.extend([lo, hi]);
            }
        }
        let finite = |v: &[f64]| {
            v.iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold(None, |acc: Option<(f64, f64)>, x| match acc {
                    None => Some((x, x)),
                    Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
                })
        };
        let (Some(x), Some(y)) = (finite(&xs), finite(&ys)) else {
            bail!("chart '{}' has no finite points to draw", self.title);
        };
        Ok((pad(x, 0.0), pad(y, 0.05)))
    }

    fn render<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        register_fonts();
        let ((x0, x1), (y0, y1)) = self.bounds()?;
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(err)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            if let Some(band) = &s.band {
                let outline: Vec<(f64, f64)> = band
                    .iter()
                    .map(|&(x, _, hi)| (x, hi))
                    .chain(band.iter().rev().map(|&(x, lo, _)| (x, lo)))
                    .collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.2))))
                    .map_err(err)?;
            }
            let style = ShapeStyle::from(color).stroke_width(2);
            let points = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(err)?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        if self.series.iter().any(|s| !s.name.is_empty()) {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
        Ok(())
    }
}

/// A grid of square grey-scale images with a label per row, saved as PNG; each image is
/// scaled to its own min..max.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageGrid {
    /// Caption above the grid.
    pub title: String,
    /// (row label, images) — every image has `side²` values in row-major order.
    pub rows: Vec<(String, Vec<Vec<f64>>)>,
    /// Width and height of each image in pixels of data.
    pub side: usize,
    /// Screen pixels per data pixel.
    pub scale: u32,
}

impl ImageGrid {
    /// Writes the grid to `<stem>.png` (through a temporary sibling renamed into place) and
    /// returns the path.
    pub fn save(&self, stem: impl AsRef<Path>) -> Result<PathBuf> {
        let path = stem.as_ref().with_extension("png");
        artifacts::with_temp_file(&path, |tmp| self.draw(tmp))
            .with_context(|| format!("rendering {}", path.display()))?;
        Ok(path)
    }

    fn draw(&self, path: &Path) -> Result<()> {
        register_fonts();
        let cols = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0) as u32;
        let (cell, gap, label_w, title_h) = (self.side as u32 * self.scale, 6u32, 150u32, 40u32);
        let size = (
            label_w + cols * (cell + gap) + gap,
            title_h + self.rows.len() as u32 * (cell + gap) + gap,
        );
        let root = BitMapBackend::new(path, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let font = ("sans-serif", 16).into_font();
        root.draw(&Text::new(
            self.title.clone(),
            (10, 10),
            ("sans-serif", 20).into_font(),
        ))
        .map_err(err)?;
        for (r, (label, images)) in self.rows.iter().enumerate() {
            let y0 = (title_h + gap + r as u32 * (cell + gap)) as i32;
            root.draw(&Text::new(
                label.clone(),
                (10, y0 + cell as i32 / 2 - 8),
                font.clone(),
            ))
            .map_err(err)?;
            for (c, img) in images.iter().enumerate() {
                if img.len() != self.side * self.side {
                    bail!(
                        "image {c} of row '{label}' has {} values, expected {}",
                        img.len(),
                        self.side * self.side
                    );
                }
                let (lo, hi) = img
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                let span = if hi > lo { hi - lo } else { 1.0 };
                let x0 = (label_w + gap + c as u32 * (cell + gap)) as i32;
                for (i, &v) in img.iter().enumerate() {
                    let g = (255.0 * (v - lo) / span).round().clamp(0.0, 255.0) as u8;
                    let (py, px) = ((i / self.side) as i32, (i % self.side) as i32);
                    let s = self.scale as i32;
                    let (x, y) = (x0 + px * s, y0 + py * s);
                    root.draw(&Rectangle::new(
                        [(x, y), (x + s, y + s)],
                        RGBColor(g, g, g).filled(),
                    ))
                    .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
        drop(root);
        Ok(())
    }
}

fn pad((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    if hi > lo {
        let m = (hi - lo) * frac;
        (lo - m, hi + m)
    } else {
        (lo - 0.5, hi + 0.5)
    }
}

fn err<E: std::error::Error + Send + Sync + 'static>(e: E) -> anyhow::Error {
    anyhow::Error::new(e)
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // DejaVu is a valid TrueType font; registration can only fail on a corrupt build.
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let bytes = match style {
                FontStyle::Bold => dejavu::sans::bold(),
                _ => dejavu::sans::regular(),
            };
            plotters::style::register_font("sans-serif", style, bytes)
                .unwrap_or_else(|_| panic!("embedded DejaVu font failed to load"));
        }
    });
}
