//! Feedback training: checkpoint round trip, exact resume, atomic writes, and the error paths
//! (missing/corrupt checkpoint, a checkpoint of another network, wrong names and shapes,
//! divergence).

mod train_common;

use predify::Predified;
use candle_core::{DType, Device, Tensor};
use predify::common::write_atomic;
use predify::train::{Checkpoint, Error, OptimizerConfig, TrainConfig, Trainer};
use std::io::Write;
use train_common::{synthetic_set, temp_dir, tiny_net, weights};

fn config(optimizer: OptimizerConfig, cosine: Option<(f64, f64, f64)>) -> TrainConfig {
    TrainConfig { epochs: 3, batch_size: 8, seed: 7, optimizer, cosine, progress: false, ..TrainConfig::default() }
}

#[test]
fn checkpoint_round_trip_keeps_everything() {
    let dir = temp_dir("ckpt-roundtrip");
    let net = tiny_net("PTiny", "", 1);
    let data = synthetic_set(40, 1);
    let mut tr = Trainer::new(&net, config(OptimizerConfig::Sgd { lr: 0.05, weight_decay: 5e-4, momentum: 0.9 }, None)).unwrap();
    tr.run(&data, Some(&data), Some(7)).unwrap(); // one epoch (5 steps) and 2 more
    assert_eq!(tr.history().len(), 1);
    let path = dir.join("ck.safetensors");
    tr.save(&path).unwrap();
    let a = tr.checkpoint().unwrap();
    let b = Checkpoint::load(&path).unwrap();
    assert_eq!(b.network, "PTiny");
    assert_eq!(b.position, a.position);
    assert_eq!((b.position.epoch, b.position.step_in_epoch, b.position.global_step), (1, 2, 7));
    assert_eq!(a.weights.keys().collect::<Vec<_>>(), b.weights.keys().collect::<Vec<_>>());
    for (k, t) in &a.weights {
        let (x, y) = (t.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.weights[k].flatten_all().unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(x, y, "{k}");
    }
    assert!(b.weights.keys().any(|k| k.starts_with("pcoder2.pmodule.")), "{:?}", b.weights.keys());
    let (oa, ob) = (a.optimizer.unwrap(), b.optimizer.unwrap());
    assert_eq!((oa.kind.as_str(), oa.steps), (ob.kind.as_str(), ob.steps));
    assert_eq!(oa.buffers.keys().collect::<Vec<_>>(), ob.buffers.keys().collect::<Vec<_>>());
    assert!(ob.buffers.keys().all(|k| k.ends_with(".momentum_buffer")));
    assert_eq!(b.extra.get("history"), a.extra.get("history"));
    // The file is also an ordinary Predify-named feedback file.
    let plain = predify::zoo::feedback::load_network_file(&path).unwrap();
    assert_eq!(plain.len(), net.pnet().feedback_vars().len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// N steps in one go == k steps, save, load into a network with other weights, N − k steps.
fn check_exact_resume(optimizer: OptimizerConfig, cosine: Option<(f64, f64, f64)>, n: u64, k: u64, tag: &str) {
    let dir = temp_dir(&format!("resume-{tag}"));
    let data = synthetic_set(40, 2);
    let path = dir.join("ck.safetensors");

    let a = tiny_net("PTiny", "", 3);
    let mut ta = Trainer::new(&a, config(optimizer, cosine)).unwrap();
    ta.run(&data, Some(&data), Some(n)).unwrap();
    assert_eq!(ta.position().global_step, n);

    let b = tiny_net("PTiny", "", 3);
    let mut tb = Trainer::new(&b, config(optimizer, cosine)).unwrap();
    tb.run(&data, Some(&data), Some(k)).unwrap();
    tb.save(&path).unwrap();
    drop(tb);

    let c = tiny_net("PTiny", "", 99); // other initial feedback weights: all must come from the file
    assert_ne!(weights(c.pnet()), weights(b.pnet()));
    let mut tc = Trainer::resume(&c, config(optimizer, cosine), &path).unwrap();
    assert_eq!(tc.position().global_step, k);
    tc.run(&data, Some(&data), Some(n - k)).unwrap();
    assert_eq!(tc.position(), ta.position());
    assert_eq!(weights(c.pnet()), weights(a.pnet()), "{tag}: resumed run differs from the uninterrupted one");
    let losses = |h: &[predify::train::EpochReport]| h.iter().map(|r| (r.epoch, r.train_loss.clone(), r.val_loss.clone())).collect::<Vec<_>>();
    assert_eq!(losses(tc.history()), losses(ta.history()), "{tag}: epoch reports differ");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_continues_exactly_sgd_momentum_cosine() {
    // 5 steps per epoch: stop mid-epoch 2, finish in epoch 3.
    check_exact_resume(OptimizerConfig::Sgd { lr: 0.05, weight_decay: 5e-4, momentum: 0.9 }, Some((1.0, 2.0, 0.001)), 12, 7, "sgd");
}

#[test]
fn resume_continues_exactly_rmsprop_and_adam() {
    let rms = OptimizerConfig::RmsProp { lr: 1e-3, alpha: 0.9, eps: 1e-8, weight_decay: 1e-4, momentum: 0.5 };
    check_exact_resume(rms, None, 9, 5, "rmsprop"); // stop exactly at an epoch boundary
    check_exact_resume(OptimizerConfig::Adam { lr: 1e-3, weight_decay: 0.0 }, None, 8, 3, "adam");
}

#[test]
fn training_lowers_the_reconstruction_loss() {
    let net = tiny_net("PTiny", "", 4);
    let data = synthetic_set(80, 4);
    let mut cfg = config(OptimizerConfig::Sgd { lr: 0.05, weight_decay: 0.0, momentum: 0.9 }, None);
    cfg.epochs = 2;
    let before = predify::train::reconstruction_loss(&net, &data, None, 16).unwrap();
    let mut tr = Trainer::new(&net, cfg).unwrap();
    let reports = tr.fit(&data, Some(&data)).unwrap();
    let after = &reports.last().unwrap().val_loss;
    for i in 0..2 {
        assert!(after[i] < before[i], "pcoder{}: held-out loss {} -> {}", i + 1, before[i], after[i]);
    }
}

#[test]
fn atomic_write_keeps_the_previous_file_on_failure() {
    let dir = temp_dir("atomic");
    let path = dir.join("file.bin");
    write_atomic(&path, |f| f.write_all(b"first version")).unwrap();
    // A writer that fails half-way: the target keeps its contents, no temporary file remains.
    let e = write_atomic(&path, |f| {
        f.write_all(b"partial garbage")?;
        Err(std::io::Error::other("disk full (simulated)"))
    })
    .unwrap_err();
    assert!(e.to_string().contains("file.bin") && e.to_string().contains("disk full"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"first version");
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["file.bin"], "left behind: {names:?}");

    // A crashed writer's temporary file (as a killed process leaves it) is never read, and the
    // next save replaces the target cleanly.
    let net = tiny_net("PTiny", "", 5);
    let ck = dir.join("ck.safetensors");
    Checkpoint::of(net.pnet(), None, Default::default()).unwrap().save(&ck).unwrap();
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(dir.join(".ck.safetensors.tmp-999999"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(Checkpoint::load(&ck).is_ok());
    Checkpoint::of(net.pnet(), None, Default::default()).unwrap().save(&ck).unwrap();
    assert_eq!(Checkpoint::load(&ck).unwrap().weights.len(), net.pnet().feedback_vars().len());
    // Saving into a directory that does not exist yet creates it.
    Checkpoint::of(net.pnet(), None, Default::default()).unwrap().save(dir.join("new/sub/ck.safetensors")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn expect_checkpoint_error(r: Result<(), Error>, needles: &[&str]) {
    let e = r.expect_err("expected an error").to_string();
    for n in needles {
        assert!(e.contains(n), "error `{e}` does not mention `{n}`");
    }
}

#[test]
fn checkpoint_errors_name_the_file_and_tensor() {
    let dir = temp_dir("ckpt-errors");
    let net = tiny_net("PTiny", "", 6);
    let good = dir.join("good.safetensors");
    Checkpoint::of(net.pnet(), None, Default::default()).unwrap().save(&good).unwrap();
    let apply = |ck: &Checkpoint, name: &str| ck.apply_to(net.pnet(), std::path::Path::new(name));

    // missing file
    let e = Checkpoint::load(dir.join("absent.safetensors")).unwrap_err().to_string();
    assert!(e.contains("absent.safetensors"), "{e}");
    // truncated file
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let e = Checkpoint::load(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.safetensors") && e.contains("corrupt"), "{e}");
    // garbage
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"\x05\x00\x00\x00\x00\x00\x00\x00hello world").unwrap();
    let e = Checkpoint::load(&junk).unwrap_err().to_string();
    assert!(e.contains("junk.safetensors"), "{e}");
    // a safetensors file that is not a training checkpoint
    let bare = dir.join("bare.safetensors");
    candle_core::safetensors::save(&std::collections::HashMap::from([("x".to_string(), Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap())]), &bare).unwrap();
    let e = Checkpoint::load(&bare).unwrap_err().to_string();
    assert!(e.contains("bare.safetensors") && e.contains("not a predify-rs training checkpoint"), "{e}");

    let ck = Checkpoint::load(&good).unwrap();
    // a checkpoint of another network
    let other = tiny_net("POther", "", 6);
    expect_checkpoint_error(ck.apply_to(other.pnet(), &good), &["good.safetensors", "PTiny", "POther"]);
    // a checkpoint of a network with the same name but other pcoders (wrong names)
    let mut renamed = ck.clone();
    let t = renamed.weights.remove("pcoder2.pmodule.1.weight").unwrap();
    renamed.weights.insert("pcoder3.pmodule.1.weight".into(), t);
    expect_checkpoint_error(apply(&renamed, "renamed.safetensors"), &["renamed.safetensors", "pcoder2.pmodule.1.weight", "missing"]);
    let mut extra = ck.clone();
    extra.weights.insert("pcoder3.pmodule.weight".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    expect_checkpoint_error(apply(&extra, "extra.safetensors"), &["extra.safetensors", "pcoder3.pmodule.weight", "not a parameter"]);
    // wrong shape
    let mut wrong = ck.clone();
    wrong.weights.insert("pcoder1.pmodule.weight".into(), Tensor::zeros((2, 1, 5, 5), DType::F32, &Device::Cpu).unwrap());
    expect_checkpoint_error(apply(&wrong, "wrong.safetensors"), &["wrong.safetensors", "pcoder1.pmodule.weight", "[2, 1, 5, 5]", "[2, 1, 3, 3]"]);
    // nothing was applied by the failed attempts
    let before = weights(net.pnet());
    assert!(apply(&wrong, "wrong.safetensors").is_err());
    assert_eq!(weights(net.pnet()), before);

    // resuming with another batch size or seed would not be the same run
    let data = synthetic_set(16, 1);
    let cfg = config(OptimizerConfig::Sgd { lr: 0.01, weight_decay: 0.0, momentum: 0.9 }, None);
    let mut tr = Trainer::new(&net, cfg.clone()).unwrap();
    tr.run(&data, None, Some(1)).unwrap();
    let path = dir.join("run.safetensors");
    tr.save(&path).unwrap();
    let e = Trainer::resume(&net, TrainConfig { batch_size: 4, ..cfg.clone() }, &path).err().unwrap().to_string();
    assert!(e.contains("run.safetensors") && e.contains("batch size 8"), "{e}");
    // resuming with another optimiser
    let e = Trainer::resume(&net, TrainConfig { optimizer: OptimizerConfig::Adam { lr: 0.1, weight_decay: 0.0 }, ..cfg }, &path).err().unwrap().to_string();
    assert!(e.contains("run.safetensors") && e.contains("sgd"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn divergence_is_an_error_naming_the_pcoder() {
    let data = synthetic_set(64, 3);
    // A learning rate that blows the weights up.
    let net = tiny_net("PTiny", "", 8);
    let cfg = TrainConfig { epochs: 1, batch_size: 8, optimizer: OptimizerConfig::Sgd { lr: 1e30, weight_decay: 0.0, momentum: 0.0 }, progress: false, ..TrainConfig::default() };
    let mut tr = Trainer::new(&net, cfg.clone()).unwrap();
    let e = tr.run(&data, None, None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Diverged { .. }), "{msg}");
    assert!(msg.contains("diverged") && msg.contains("pcoder"), "{msg}");
    // A non-finite input: the representation of pcoder 1 is the first to break.
    let net = tiny_net("PTiny", "", 8);
    let mut tr = Trainer::new(&net, cfg).unwrap();
    let x = Tensor::full(f32::NAN, (2, 1, 28, 28), &Device::Cpu).unwrap();
    let msg = tr.step_batch(&x).unwrap_err().to_string();
    assert!(msg.contains("diverged") && msg.contains("pcoder 1"), "{msg}");
}


#[test]
fn the_fast_timestep0_path_equals_the_runtime_reconstruction_grads() {
    let net = tiny_net("PTiny", "gradient_scaling = true", 10);
    let data = synthetic_set(12, 10);
    let x = predify::data::gather(&data, &(0..12).collect::<Vec<_>>(), &Device::Cpu).unwrap().0;
    let fast = predify::train::timestep0_grads(&net, &x).unwrap();
    let mut st = net.pnet().new_state(x.clone()).unwrap();
    net.step(&mut st).unwrap();
    let slow = net.pnet().reconstruction_grads(&st).unwrap();
    assert_eq!(fast.per_pcoder, slow.per_pcoder);
    assert_eq!(fast.grads.len(), slow.grads.len());
    for ((na, a), (nb, b)) in fast.grads.iter().zip(&slow.grads) {
        assert_eq!(na, nb);
        assert_eq!(a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap(), "{na}");
    }
}

#[test]
fn resume_validates_the_whole_checkpoint_before_applying_it() {
    let dir = temp_dir("ckpt-resume-validate");
    let data = synthetic_set(16, 1);
    let net = tiny_net("PTiny", "", 6);
    let cfg = config(OptimizerConfig::Sgd { lr: 0.01, weight_decay: 0.0, momentum: 0.9 }, None);
    let mut tr = Trainer::new(&net, cfg.clone()).unwrap();
    tr.run(&data, None, Some(1)).unwrap();
    let good = tr.checkpoint().unwrap();
    let before = weights(net.pnet());
    let buf_key = good.optimizer.as_ref().unwrap().buffers.keys().next().unwrap().clone();
    let w_key = good.weights.keys().next().unwrap().clone();
    type Edit = Box<dyn Fn(&mut Checkpoint)>;
    let cases: Vec<(&str, Edit, Vec<String>)> = vec![
        ("epoch-max", Box::new(|c| c.position.epoch = usize::MAX), vec!["epoch".into()]),
        ("epoch-past", Box::new(|c| c.position.epoch = 4), vec!["epoch".into()]),
        ("global-max", Box::new(|c| c.position.global_step = u64::MAX), vec!["global_step".into()]),
        ("running-max", Box::new(|c| { c.extra.insert("running".into(), format!("[[0.0,0.0],{}]", u64::MAX)); }), vec!["running".into()]),
        ("nan-buffer", Box::new({ let k = buf_key.clone(); move |c| { let b = c.optimizer.as_mut().unwrap().buffers.get_mut(&k).unwrap(); *b = b.affine(0.0, f64::NAN).unwrap(); } }), vec![buf_key.clone(), "not finite".into()]),
        ("nan-weight", Box::new({ let k = w_key.clone(); move |c| { let b = c.weights.get_mut(&k).unwrap(); *b = b.affine(0.0, f64::INFINITY).unwrap(); } }), vec![w_key.clone(), "not finite".into()]),
        ("shape-buffer", Box::new({ let k = buf_key.clone(); move |c| { c.optimizer.as_mut().unwrap().buffers.insert(k.clone(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap()); } }), vec![buf_key.clone()]),
        ("dtype-buffer", Box::new({ let k = buf_key.clone(); move |c| { let b = c.optimizer.as_mut().unwrap().buffers.get_mut(&k).unwrap(); *b = b.to_dtype(DType::F64).unwrap(); } }), vec![buf_key.clone()]),
    ];
    for (name, edit, needles) in &cases {
        let mut ck = good.clone();
        // modify the weights too, so that a partial application would show
        for t in ck.weights.values_mut() {
            *t = t.affine(1.0, 0.5).unwrap();
        }
        edit(&mut ck);
        let path = dir.join(format!("{name}.safetensors"));
        ck.save(&path).unwrap();
        let e = Trainer::resume(&net, cfg.clone(), &path).err().unwrap_or_else(|| panic!("{name} resumed")).to_string();
        assert!(e.contains(&format!("{name}.safetensors")), "{name}: {e}");
        for n in needles {
            assert!(e.contains(n.as_str()), "{name}: `{e}` does not mention `{n}`");
        }
        assert_eq!(weights(net.pnet()), before, "{name}: weights partly applied");
    }
    // step_in_epoch past the epoch's batches: an error naming the file, not a skipped epoch
    let mut ck = good.clone();
    ck.position.step_in_epoch = usize::MAX;
    ck.position.global_step = u64::MAX / 4;
    ck.extra.remove("running");
    let path = dir.join("step-max.safetensors");
    ck.save(&path).unwrap();
    let r = Trainer::resume(&net, cfg.clone(), &path).and_then(|mut t| t.run(&data, None, None));
    expect_checkpoint_error(r, &["step-max.safetensors"]);
    let mut ck = good.clone();
    ck.position.step_in_epoch = 2; // 16 images, batch 8: 2 batches per epoch
    ck.position.global_step = 2;
    ck.extra.remove("running");
    let path = dir.join("step-past.safetensors");
    ck.save(&path).unwrap();
    let r = Trainer::resume(&net, cfg.clone(), &path).and_then(|mut t| t.run(&data, None, None));
    expect_checkpoint_error(r, &["step-past.safetensors", "step 2"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn non_finite_weights_stop_training_before_a_checkpoint_is_written() {
    let dir = temp_dir("ckpt-nonfinite");
    let path = dir.join("ck.safetensors");
    let data = synthetic_set(16, 1);
    let net = tiny_net("PTiny", "", 6);
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        checkpoint: Some(path.clone()),
        checkpoint_every: 1,
        optimizer: OptimizerConfig::Sgd { lr: 1e300, weight_decay: 0.0, momentum: 0.0 },
        progress: false,
        ..TrainConfig::default()
    };
    let w0 = weights(net.pnet());
    let e = Trainer::new(&net, cfg.clone()).unwrap().run(&data, None, None).unwrap_err();
    assert!(matches!(e, Error::Diverged { .. }), "{e}");
    assert!(!path.exists(), "a checkpoint was written after a non-finite step");
    // The rejected update left nothing behind: weights bit for bit, no optimiser step.
    assert_eq!(weights(net.pnet()), w0, "non-finite weights were kept");
    let mut tr = Trainer::new(&net, TrainConfig { checkpoint: None, ..cfg }).unwrap();
    let x = predify::data::gather(&data, &[0, 1], &Device::Cpu).unwrap().0;
    assert!(tr.step_batch(&x).unwrap_err().to_string().contains("would not be finite"));
    assert_eq!((weights(net.pnet()), tr.optimizer().state().steps), (w0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}
