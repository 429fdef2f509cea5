//! The npz reader's error cases, the two pixel layouts, and short real training runs on a
//! small generated dataset with learnable classes.

use std::path::PathBuf;

use tch::nn::ModuleT;
use tch::Device;
use torchkit::rng::exclusive;
use vision::dataset::{Dataset, Layout};
use vision::model::CnnConfig;
use vision::npz::{write_npz, Array, Dtype, Npz};
use vision::train::{evaluate, train, RunFiles, TrainConfig};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vision-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("data.npz")
}

fn u8_images(n: usize, seed: u64) -> (Array, Array) {
    // Class c: a bright square in one of six positions, plus noise — learnable in a few steps.
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut rand = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut data = vec![0u8; n * 48 * 48 * 3];
    let mut labels = Vec::new();
    for i in 0..n {
        let c = (i % 6) as i64;
        labels.extend(c.to_le_bytes());
        let (y0, x0) = ((c as usize / 3) * 24, (c as usize % 3) * 16);
        for y in 0..48 {
            for x in 0..48 {
                for ch in 0..3 {
                    let inside = (y0..y0 + 24).contains(&y) && (x0..x0 + 16).contains(&x);
                    let v = if inside { 200 } else { 30 } + (rand() % 40) as u8;
                    data[((i * 48 + y) * 48 + x) * 3 + ch] = v;
                }
            }
        }
    }
    (
        Array {
            dtype: Dtype::U8,
            shape: vec![n, 48, 48, 3],
            data,
        },
        Array {
            dtype: Dtype::I64,
            shape: vec![n],
            data: labels,
        },
    )
}

fn write_dataset(path: &std::path::Path, n: [usize; 3]) {
    let (tr, trl) = u8_images(n[0], 1);
    let (va, val) = u8_images(n[1], 2);
    let (te, tel) = u8_images(n[2], 3);
    write_npz(
        path,
        &[
            ("train_images", &tr),
            ("val_images", &va),
            ("test_images", &te),
            ("train_labels", &trl),
            ("val_labels", &val),
            ("test_labels", &tel),
        ],
    )
    .unwrap();
}

#[test]
fn layouts_read_the_same_bytes_differently() {
    let path = tmp("layout");
    write_dataset(&path, [12, 6, 6]);
    let skel = Dataset::load(&path, Layout::Skeleton).unwrap();
    let cl = Dataset::load(&path, Layout::ChannelsLast).unwrap();
    assert_eq!(skel.train.images().size(), [12, 3, 48, 48]);
    assert_eq!(skel.train.len(), 12);
    let raw = Npz::open(&path).unwrap().read("train_images").unwrap();
    // Skeleton: flat C-order bytes ÷ 256 viewed as (3, 48, 48).
    let flat = Vec::<f32>::try_from(skel.train.images().get(0).view([-1])).unwrap();
    assert!(flat
        .iter()
        .zip(&raw.data)
        .all(|(a, &b)| *a == b as f32 / 256.0));
    // Channels-last: pixel (y, x, c) lands at [c, y, x].
    let (y, x, c) = (5usize, 7usize, 2usize);
    let want = raw.data[(y * 48 + x) * 3 + c] as f64 / 256.0;
    assert_eq!(
        cl.train
            .images()
            .get(0)
            .get(c as i64)
            .get(y as i64)
            .get(x as i64)
            .double_value(&[]),
        want
    );
}

#[test]
fn npz_errors_name_the_key_and_the_expectation() {
    let path = tmp("errors");
    let (img, lab) = u8_images(4, 1);
    let check = |arrays: &[(&str, &Array)], expected: &str| {
        write_npz(&path, arrays).unwrap();
        let err = format!("{:#}", Dataset::load(&path, Layout::Skeleton).unwrap_err());
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    };
    check(
        &[("train_images", &img), ("train_labels", &lab)],
        "no array 'val_images'",
    );
    let bad_shape = Array {
        shape: vec![4, 48, 3, 48],
        ..img.clone()
    };
    check(
        &[("train_images", &bad_shape)],
        "'train_images' has shape [4, 48, 3, 48]; expected (N, 48, 48, 3) or (N, 6912)",
    );
    let ints = Array {
        dtype: Dtype::I64,
        shape: vec![1, 6912],
        data: vec![0; 6912 * 8],
    };
    check(&[("train_images", &ints)], "holds int64");
    let bad_labels = Array {
        data: [0i64, 1, 2, 9]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        ..lab.clone()
    };
    check(
        &[("train_images", &img), ("train_labels", &bad_labels)],
        "'train_labels' has labels in 0..=9; expected 0..=5",
    );
    let short_labels = Array {
        shape: vec![3],
        data: lab.data[..24].to_vec(),
        ..lab.clone()
    };
    check(
        &[("train_images", &img), ("train_labels", &short_labels)],
        "expected (4,) to match its images",
    );

    // Pixels: NaN refused, every split of one type, none empty.
    let floats = |values: &[f32], n: usize| Array {
        dtype: Dtype::F32,
        shape: vec![n, 48, 48, 3],
        data: (0..n * 6912)
            .flat_map(|i| values[i % values.len()].to_le_bytes())
            .collect(),
    };
    check(
        &[
            ("train_images", &floats(&[0.5, f32::NAN], 4)),
            ("train_labels", &lab),
        ],
        "'train_images' holds NaN or infinite pixels",
    );
    check(
        &[
            ("train_images", &img),
            ("train_labels", &lab),
            ("val_images", &floats(&[1.0], 4)),
            ("val_labels", &lab),
        ],
        "'val_images' holds F32 pixels but the train split holds U8",
    );
    let empty = Array {
        shape: vec![0, 48, 48, 3],
        data: Vec::new(),
        ..img.clone()
    };
    check(
        &[("train_images", &empty)],
        "'train_images' holds no images",
    );
    // A shape whose byte count overflows (2^56 · 6912 ≡ 0 mod 2^64: no data "needed"),
    // written by hand (NumPy's writers refuse it).
    let header =
        "{'descr': '|u1', 'fortran_order': False, 'shape': (72057594037927936, 48, 48, 3), }";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let padded = format!("{header:<117}\n");
    npy.extend((padded.len() as u16).to_le_bytes());
    npy.extend(padded.as_bytes());
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("train_images.npy", stored).unwrap();
    std::io::Write::write_all(&mut zip, &npy).unwrap();
    std::fs::write(&path, zip.finish().unwrap().into_inner()).unwrap();
    let err = format!("{:#}", Dataset::load(&path, Layout::Skeleton).unwrap_err());
    assert!(
        err.contains("'train_images': shape [72057594037927936, 48, 48, 3] of |u1 multiplies past 2^64 bytes"),
        "{err}"
    );
    let dir_err = format!(
        "{:#}",
        Dataset::load(path.parent().unwrap(), Layout::Skeleton).unwrap_err()
    );
    assert!(
        dir_err.contains("is a folder, not an npz file"),
        "{dir_err}"
    );
    // Float pixels are scaled as the skeleton scales every array: ÷256.
    let (small, small_lab) = u8_images(4, 2);
    let as_float = Array {
        dtype: Dtype::F32,
        data: small
            .data
            .iter()
            .flat_map(|&b| f32::from(b).to_le_bytes())
            .collect(),
        ..small.clone()
    };
    let mut loaded = Vec::new();
    for images in [&small, &as_float] {
        write_npz(
            &path,
            &[
                ("train_images", images),
                ("train_labels", &small_lab),
                ("val_images", images),
                ("val_labels", &small_lab),
                ("test_images", images),
                ("test_labels", &small_lab),
            ],
        )
        .unwrap();
        loaded.push(
            Dataset::load(&path, Layout::Skeleton)
                .unwrap()
                .train
                .images(),
        );
    }
    assert!(
        loaded[0].equal(&loaded[1]),
        "uint8 and float pixels scale alike"
    );

    // Truncated files: the end record gone, or data cut short.
    write_dataset(&path, [6, 6, 6]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 30]).unwrap();
    assert!(
        format!("{:#}", Dataset::load(&path, Layout::Skeleton).unwrap_err()).contains("truncated")
    );
    let flat = Array {
        dtype: Dtype::U8,
        shape: vec![2, 6912],
        data: vec![0; 2 * 6912],
    };
    let mut npz_bytes = Vec::new();
    write_npz(&path, &[("train_images", &flat)]).unwrap();
    npz_bytes.extend(std::fs::read(&path).unwrap());
    // Shrink the declared data by editing the .npy shape in place: (2, 6912) -> (3, 6912).
    let pos = npz_bytes.windows(8).position(|w| w == b"(2, 6912").unwrap();
    npz_bytes[pos + 1] = b'3';
    std::fs::write(&path, &npz_bytes).unwrap();
    let err = format!(
        "{:#}",
        Npz::open(&path).unwrap().read("train_images").unwrap_err()
    );
    assert!(
        err.contains("'train_images'") && err.contains("promises"),
        "{err}"
    );
    // A flipped data byte fails the entry's CRC-32.
    write_npz(&path, &[("train_images", &flat)]).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let data_at = bytes.windows(8).position(|w| w == b"(2, 6912").unwrap() + 200;
    bytes[data_at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = format!(
        "{:#}",
        Npz::open(&path).unwrap().read("train_images").unwrap_err()
    );
    assert!(
        err.contains("'train_images'") && err.contains("corrupt"),
        "{err}"
    );
}

#[test]
fn one_sgd_step_lowers_the_loss_on_a_fixed_batch() {
    // Both seed libtorch's generator; neither may draw inside the other's run.
    let _generator = exclusive();
    let path = tmp("step");
    write_dataset(&path, [32, 6, 6]);
    let data = Dataset::load(&path, Layout::Skeleton).unwrap();
    for model in [CnnConfig::model_2_1(), CnnConfig::model_2_2()] {
        tch::manual_seed(3);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let net = vision::model::Cnn::new(&vs.root(), &model);
        let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Sgd::default(), &vs, 0.05).unwrap();
        let (x, y) = (
            data.train.images_in(0, 16),
            data.train.labels.narrow(0, 0, 16),
        );
        let loss = |train: bool| net.forward_t(&x, train).nll_loss(&y);
        // Dropout off for the measurement: compare the same deterministic function.
        let before = tch::no_grad(|| loss(false)).double_value(&[]);
        for _ in 0..3 {
            opt.backward_step(&loss(true));
        }
        let after = tch::no_grad(|| loss(false)).double_value(&[]);
        assert!(after < before, "{model:?}: loss {before} -> {after}");
    }
}

/// Adam's moments take the channels-last layout of the convolutions' weights: a resume
/// point must still be written (safetensors stores row-major data), and the run learn.
#[test]
fn an_adam_run_on_channels_last_memory_writes_its_resume_points() {
    let _generator = exclusive();
    let path = tmp("adam");
    write_dataset(&path, [120, 30, 30]);
    let data = Dataset::load(&path, Layout::Skeleton).unwrap();
    torchkit::rng::seed(7);
    let config = TrainConfig {
        epochs: 2,
        learning_rate: 0.001,
        optimizer: vision::train::Optimizer::Adam,
        ..TrainConfig::default()
    };
    let files = RunFiles {
        checkpoint: path.with_file_name("adam.safetensors"),
        log_csv: path.with_file_name("adam.csv"),
        replace: true,
    };
    let trained = train(&CnnConfig::model_2_2(), &config, &data, &files, Device::Cpu)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let rows = &trained.epochs;
    assert!(
        rows[1].train_loss_epoch < rows[0].train_loss_epoch,
        "{rows:?}"
    );
}

#[test]
fn tiny_end_to_end_run_learns() {
    // Both seed libtorch's generator; neither may draw inside the other's run.
    let _generator = exclusive();
    let path = tmp("e2e");
    write_dataset(&path, [300, 60, 60]);
    let data = Dataset::load(&path, Layout::Skeleton).unwrap();
    torchkit::rng::seed(42);
    let config = TrainConfig {
        epochs: 3,
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    let log = path.with_file_name("epochs.csv");
    let files = RunFiles {
        checkpoint: path.with_file_name("e2e.safetensors"),
        log_csv: log.clone(),
        replace: true,
    };
    let trained = train(&CnnConfig::model_2_2(), &config, &data, &files, Device::Cpu).unwrap();
    let (_, acc, preds) = evaluate(&trained.net, &data.test, 1000);
    assert!(
        acc > 0.9,
        "test accuracy {acc} after 3 epochs on an easy task"
    );
    assert_eq!(preds.len(), 60);
    let rows = &trained.epochs;
    assert!(rows[2].train_loss_epoch < rows[0].train_loss_epoch);
    // The homework's figure is the running mean over all batches so far.
    let expected = (rows[0].train_loss_epoch + rows[1].train_loss_epoch) / 2.0;
    assert!((rows[1].train_loss_cumulative - expected).abs() < 1e-6);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
}

#[test]
fn a_generated_image_set_is_the_same_bytes_each_time() {
    // Its SHA-256 keys the trainings on it: written again, it must be the same data.
    let (a, b) = (tmp("same-a"), tmp("same-b"));
    vision::synthetic::write_quick_npz(&a, 3, [6, 3, 3]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100)); // past the zip clock's 2 s
    vision::synthetic::write_quick_npz(&b, 3, [6, 3, 3]).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}
