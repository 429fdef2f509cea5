//! Renders real charts and checks the files are valid images of the requested size.

use plot::{LineChart, Series};

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("plot-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn writes_png_and_svg_of_requested_size() {
    let dir = tempdir("size");
    let chart = LineChart::new("Validation CER")
        .x_label("epoch")
        .y_label("CER")
        .size(640, 400)
        .series(Series::over_epochs(
            "no attention",
            &[0.58, 0.45, 0.38, 0.33],
        ))
        .series(
            Series::over_epochs("attention", &[0.53, 0.32, 0.28, 0.25]).with_band(vec![
                (1.0, 0.5, 0.56),
                (2.0, 0.3, 0.34),
                (4.0, 0.24, 0.26),
            ]),
        );
    let (png, svg) = chart.save(dir.join("cer")).unwrap();
    assert_eq!(png, dir.join("cer.png"));

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (640, 400));
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..frame.buffer_size()];
    // Lines, text and grid must have put a good share of non-white pixels on the canvas.
    let ink = pixels
        .chunks(3)
        .filter(|p| p.iter().any(|&c| c < 200))
        .count();
    assert!(ink > 2_000, "only {ink} dark pixels: chart looks empty");

    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "not an SVG document");
    assert!(text.contains(r#"width="640""#) && text.contains(r#"height="400""#));
    for label in [
        "Validation CER",
        "epoch",
        "CER",
        "no attention",
        "attention",
    ] {
        assert!(text.contains(label), "SVG lacks the text {label:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn chart_without_points_is_an_error() {
    let dir = tempdir("empty");
    let err = LineChart::new("nothing")
        .series(Series::new("nan", vec![(1.0, f64::NAN)]))
        .save(dir.join("x"))
        .unwrap_err();
    assert!(format!("{err:#}").contains("no finite points"), "{err:#}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn image_grid_has_expected_size_and_grey_levels() {
    let dir = tempdir("grid");
    let ramp: Vec<f64> = (0..16).map(f64::from).collect();
    let grid = plot::ImageGrid {
        title: "grid".into(),
        rows: vec![
            ("a".into(), vec![ramp.clone(), ramp.clone()]),
            ("b".into(), vec![ramp]),
        ],
        side: 4,
        scale: 5,
    };
    let path = grid.save(dir.join("g")).unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let reader = decoder.read_info().unwrap();
    // label column 150 + 2 images of 20 px with 6 px gaps; title 40 + 2 rows.
    assert_eq!(reader.info().width, 150 + 2 * 26 + 6);
    assert_eq!(reader.info().height, 40 + 2 * 26 + 6);

    let bad = plot::ImageGrid {
        rows: vec![("x".into(), vec![vec![0.0; 3]])],
        ..grid
    };
    let err = format!("{:#}", bad.save(dir.join("bad")).unwrap_err());
    assert!(err.contains("expected 16"), "{err}");
    // A failed render leaves nothing: no figure under its final name, no temporary.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with("bad")), "{names:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
