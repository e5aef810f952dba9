//! Robustness evaluation: noise models, accuracy bookkeeping (timestep 0 equals the plain
//! network), determinism, and the table / CSV / JSON / PNG outputs.

mod train_common;

use predify::eval::{self, EvalConfig, Noise, Report};
use predify::common::Rng;
use train_common::{synthetic_set, temp_dir, tiny_net};

#[test]
fn noise_models_have_the_stated_statistics() {
    let x = candle_core::Tensor::full(0.5f32, (4, 1, 28, 28), &candle_core::Device::Cpu).unwrap();
    let n = x.elem_count() as f64;
    let g = Noise::Gaussian(0.8).apply(&x, &mut Rng::new(1), (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mean = g.iter().map(|&v| v as f64).sum::<f64>() / n;
    let sd = (g.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean - 0.5).abs() < 0.05 && (sd - 0.8).abs() < 0.04, "mean {mean}, sd {sd}");
    let sp = Noise::SaltPepper(0.3).apply(&x, &mut Rng::new(2), (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let salt = sp.iter().filter(|&&v| v == 1.0).count() as f64 / n;
    let pepper = sp.iter().filter(|&&v| v == 0.0).count() as f64 / n;
    assert!((salt - 0.15).abs() < 0.02 && (pepper - 0.15).abs() < 0.02, "salt {salt}, pepper {pepper}");
    assert!(sp.iter().all(|&v| v == 0.0 || v == 0.5 || v == 1.0));
    assert_eq!(Noise::Clean.apply(&x, &mut Rng::new(3), (0.0, 1.0)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), x.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    // parsing
    assert_eq!(Noise::parse("gauss:0.5").unwrap(), Noise::Gaussian(0.5));
    assert_eq!(Noise::parse("sp:0.1").unwrap(), Noise::SaltPepper(0.1));
    assert_eq!(Noise::parse("clean").unwrap(), Noise::Clean);
    for bad in ["gauss", "sp:1.5", "gauss:-1", "blur:2"] {
        assert!(Noise::parse(bad).is_err(), "{bad} accepted");
    }
}

fn config() -> EvalConfig {
    EvalConfig {
        timesteps: 3,
        batch_size: 16,
        seed: 5,
        noises: vec![Noise::Clean, Noise::Gaussian(0.5), Noise::SaltPepper(0.2)],
        limit: None,
        pixel_range: (0.0, 1.0),
        progress: false,
    }
}

#[test]
fn evaluation_counts_every_image_at_every_timestep() {
    let net = tiny_net("PTiny", "", 1);
    let data = synthetic_set(50, 7);
    let r = eval::evaluate(&net, &data, &config()).unwrap();
    assert_eq!((r.images, r.timesteps, r.results.len()), (50, 3, 3));
    for c in &r.results {
        assert_eq!(c.timesteps.len(), 4);
        // timestep 0 is the feedforward pass
        assert_eq!(c.timesteps[0], c.feedforward, "{:?}", c.noise);
        for v in c.timesteps.iter().chain([&c.feedforward]) {
            let k = v * 50.0;
            assert!((k - k.round()).abs() < 1e-9 && (0.0..=1.0).contains(v), "{v} is not a count of 50");
        }
    }
    assert_eq!(r.hyperparameters.len(), 2);
    // Deterministic: the same noise for the same seed, whatever the thread schedule.
    let again = eval::evaluate(&net, &data, &config()).unwrap();
    assert_eq!(again.results, r.results);
    // A limit evaluates the first n images.
    let cut = eval::evaluate(&net, &data, &EvalConfig { limit: Some(20), ..config() }).unwrap();
    assert_eq!(cut.images, 20);
    assert!(eval::evaluate(&net, &data, &EvalConfig { limit: Some(0), ..config() }).is_err());
}

#[test]
fn report_files_table_csv_json_png() {
    let net = tiny_net("PTiny", "", 2);
    let data = synthetic_set(30, 8);
    let r = eval::evaluate(&net, &data, &config()).unwrap();
    let table = r.table();
    println!("{table}");
    assert!(table.contains("t0") && table.contains("t3") && table.contains("gauss 0.50") && table.contains("s&p 0.20") && table.contains("ff"));
    let dir = temp_dir("eval-files");
    let files = r.write_files(&dir, "robustness").unwrap();
    assert_eq!(files.len(), 3);
    let csv = std::fs::read_to_string(dir.join("robustness.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "noise,level,images,feedforward,t0,t1,t2,t3");
    assert_eq!(lines.len(), 4);
    assert!(lines[2].starts_with("gaussian,0.5,30,"), "{}", lines[2]);
    let back: Report = serde_json::from_str(&std::fs::read_to_string(dir.join("robustness.json")).unwrap()).unwrap();
    assert_eq!(back.results, r.results);
    let png = std::fs::read(dir.join("robustness.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((w, h), (960, 40 + 320 * 2)); // 3 conditions: a 2×2 grid of panels
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "temporary files left: {names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
