//! MNIST-C's 15 corruptions: for each, determinism keyed by (seed, index), shape and range, a
//! real change to a digit-like image, and a hand-checked case of the reference's definition.

use predify::corruptions::{apply, apply_batch, example_grid, Corruption, GRID_GAP, GRID_GAP_LEVEL};

const H: usize = 28;
const W: usize = 28;
const SEED: u64 = 2019;

/// Distance from point `p` to the segment `a`–`b` (all `(row, col)`).
fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// A thick, anti-aliased "7", quantised to k/255 like MNIST.
fn digit() -> Vec<f32> {
    let mut img = vec![0.0f32; H * W];
    for r in 0..H {
        for c in 0..W {
            let p = (r as f64, c as f64);
            let d = seg_dist(p, (6.0, 6.0), (6.0, 21.0)).min(seg_dist(p, (6.0, 21.0), (23.0, 12.0)));
            let v = (2.0 - d).clamp(0.0, 1.0);
            img[r * W + c] = ((v * 255.0).round() / 255.0) as f32;
        }
    }
    img
}

fn constant(v: f32) -> Vec<f32> {
    vec![v; H * W]
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

// ---------------------------------------------------------------- every corruption

#[test]
fn every_corruption_keeps_shape_and_range_changes_the_digit_and_is_deterministic() {
    let x = digit();
    for c in Corruption::ALL {
        let a = apply(c, &x, H, W, SEED, 5);
        assert_eq!(a.len(), H * W, "{c}");
        assert!(a.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "{c}: out of [0, 1] or not finite");
        assert!(max_abs_diff(&a, &x) > 0.2, "{c}: the digit is (almost) unchanged");
        let again = apply(c, &x, H, W, SEED, 5);
        assert_eq!(a, again, "{c}: not deterministic");
        // Other indices / seeds: a different draw for the random ones (two-way choices such as
        // shear's sign may coincide for one pair, so some index among 1..=8 must differ), the
        // same image for the deterministic ones.
        let others: Vec<Vec<f32>> = (0..=8).filter(|&i| i != 5).map(|i| apply(c, &x, H, W, SEED, i)).collect();
        let other_seed = apply(c, &x, H, W, SEED + 1, 5);
        if c.is_random() {
            assert!(others.iter().any(|o| *o != a), "{c}: the index does not change the draw");
            assert!((0..8).any(|i| apply(c, &x, H, W, SEED + 1, i) != apply(c, &x, H, W, SEED, i)), "{c}: the seed does not matter");
        } else {
            assert!(others.iter().all(|o| *o == a) && other_seed == a, "{c}: a deterministic corruption depends on the index");
        }
    }
}

#[test]
fn continuous_draws_differ_between_neighbouring_indices() {
    let x = digit();
    let continuous = [
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::GlassBlur,
        Corruption::MotionBlur,
        Corruption::Fog,
        Corruption::Spatter,
    ];
    for c in continuous {
        assert_ne!(apply(c, &x, H, W, SEED, 0), apply(c, &x, H, W, SEED, 1), "{c}");
    }
}

#[test]
fn batch_equals_single_images_whatever_the_split() {
    let x = digit();
    let shifted: Vec<f32> = x.iter().rev().copied().collect();
    let batch: Vec<f32> = [x.clone(), shifted.clone(), x.clone()].concat();
    for c in Corruption::ALL {
        let all = apply_batch(c, &batch, H, W, SEED, 10);
        let tail = apply_batch(c, &batch[H * W..], H, W, SEED, 11);
        assert_eq!(&all[H * W..], &tail[..], "{c}: depends on the batch split");
        assert_eq!(&all[..H * W], &apply(c, &x, H, W, SEED, 10)[..], "{c}");
        assert_eq!(&all[2 * H * W..], &apply(c, &x, H, W, SEED, 12)[..], "{c}");
    }
}

#[test]
fn names_round_trip() {
    for c in Corruption::ALL {
        assert_eq!(c.name().parse::<Corruption>().unwrap(), c);
        assert_eq!(c.to_string(), c.name());
    }
    assert_eq!("Motion-Blur".parse::<Corruption>().unwrap(), Corruption::MotionBlur);
    let err = "gaussian_noise".parse::<Corruption>().unwrap_err();
    assert!(err.to_string().contains("canny_edges"), "{err}");
    let mut names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 15);
}

#[test]
fn example_grid_tiles_clean_then_all_fifteen() {
    let x = digit();
    let (grid, gh, gw) = example_grid(&x, H, W, SEED);
    assert_eq!((gh, gw), (4 * H + 3 * GRID_GAP, 4 * W + 3 * GRID_GAP));
    assert_eq!(grid.len(), gh * gw);
    let tile = |t: usize, r: usize, c: usize| grid[((t / 4) * (H + GRID_GAP) + r) * gw + (t % 4) * (W + GRID_GAP) + c];
    for t in 0..16 {
        let expected = if t == 0 { x.clone() } else { apply(Corruption::ALL[t - 1], &x, H, W, SEED, 0) };
        for r in 0..H {
            for c in 0..W {
                assert_eq!(tile(t, r, c), (expected[r * W + c] * 255.0).round() as u8, "tile {t} ({r}, {c})");
            }
        }
    }
    // The gaps: column W..W+GAP and row H..H+GAP.
    assert!((0..gh).all(|r| grid[r * gw + W] == GRID_GAP_LEVEL && grid[r * gw + W + 1] == GRID_GAP_LEVEL));
    assert!((0..gw).all(|c| grid[H * gw + c] == GRID_GAP_LEVEL));
}

// ---------------------------------------------------------------- noise

#[test]
fn shot_noise_is_poisson_with_three_photons() {
    // Values are k/3 (clipped at 1) and the mean on a constant image is E[min(K, 3)] / 3,
    // K ~ Poisson(3 · 0.3).
    let lambda: f64 = 0.9;
    let p = |k: i32| (-lambda).exp() * lambda.powi(k) / (1..=k).map(f64::from).product::<f64>();
    let expected = (p(1) + 2.0 * p(2) + 3.0 * (1.0 - p(0) - p(1) - p(2))) / 3.0;
    let x = constant(0.3);
    let mut sum = 0.0;
    let mut n = 0.0;
    for i in 0..20 {
        for v in apply(Corruption::ShotNoise, &x, H, W, SEED, i) {
            let k = v as f64 * 3.0;
            assert!((k - k.round()).abs() < 1e-5, "{v} is not a multiple of 1/3");
            sum += v as f64;
            n += 1.0;
        }
    }
    let mean = sum / n;
    assert!((mean - expected).abs() < 0.01, "mean {mean}, expected {expected}");
    // No photons, no light.
    assert!(apply(Corruption::ShotNoise, &constant(0.0), H, W, SEED, 0).iter().all(|&v| v == 0.0));
}

#[test]
fn impulse_noise_replaces_seventeen_percent_half_salt_half_pepper() {
    let x = constant(0.5);
    let (mut salt, mut pepper, mut n) = (0usize, 0usize, 0usize);
    for i in 0..20 {
        for v in apply(Corruption::ImpulseNoise, &x, H, W, SEED, i) {
            match v {
                1.0 => salt += 1,
                0.0 => pepper += 1,
                0.5 => {}
                other => panic!("impulse noise wrote {other}"),
            }
            n += 1;
        }
    }
    let (fs, fp) = (salt as f64 / n as f64, pepper as f64 / n as f64);
    assert!((fs + fp - 0.17).abs() < 0.01, "changed fraction {}", fs + fp);
    assert!((fs - 0.085).abs() < 0.01 && (fp - 0.085).abs() < 0.01, "salt {fs}, pepper {fp}");
}

// ---------------------------------------------------------------- blurs

#[test]
fn glass_blur_blurs_vertically_only_and_shuffles_locally() {
    // skimage's gaussian(multichannel=True) on a 2-D array blurs axis 0 only: a horizontal bar
    // gets soft top and bottom edges, a vertical bar keeps hard sides apart from the swaps.
    let mut horizontal = constant(0.0);
    let mut vertical = constant(0.0);
    for a in 4..24 {
        for b in 12..17 {
            horizontal[b * W + a] = 1.0;
            vertical[a * W + b] = 1.0;
        }
    }
    let mut above = 0;
    let mut beside = 0;
    for i in 0..4 {
        let hb = apply(Corruption::GlassBlur, &horizontal, H, W, SEED, i);
        let vb = apply(Corruption::GlassBlur, &vertical, H, W, SEED, i);
        // Two rows above / below the horizontal bar, away from its ends.
        above += (8..20).filter(|&c| hb[10 * W + c] > 0.0 && hb[18 * W + c] > 0.0).count();
        // Three columns left / right of the vertical bar, away from its ends.
        beside += (8..20).filter(|&r| vb[r * W + 9] > 0.0 || vb[r * W + 19] > 0.0).count();
        // Mass: the blurs keep it (zero borders), swaps move it, the 8-bit truncation loses
        // less than 1/255 per pixel.
        for (orig, out) in [(&horizontal, &hb), (&vertical, &vb)] {
            let (a, b): (f32, f32) = (orig.iter().sum(), out.iter().sum());
            assert!(b <= a + 1e-3 && b >= a - (H * W) as f32 / 255.0, "mass {a} -> {b}");
        }
        // Blurred: the bar's middle row stays bright (swaps bring a few dark pixels in), its
        // edge rows are softened (one vertical Gaussian alone leaves ≈ 0.78 there).
        let mid: f32 = (8..20).map(|c| hb[14 * W + c]).sum::<f32>() / 12.0;
        let edge: f32 = (8..20).map(|c| hb[12 * W + c]).sum::<f32>() / 12.0;
        assert!(mid > 0.85 && edge < 0.8, "middle row {mid}, edge row {edge}");
    }
    assert_eq!(above, 4 * 12, "vertical blur must reach two rows past a horizontal edge");
    assert!(beside < 4 * 12 / 3, "{beside} of 48 rows lit three columns beside the vertical bar");
}

#[test]
fn motion_blur_streaks_one_pixel_with_imagemagicks_kernel() {
    let (r0, c0) = (14usize, 20usize);
    let mut x = constant(0.0);
    x[r0 * W + c0] = 1.0;
    // MotionBlurImage(radius=10, sigma=3): 21 weights exp(-i²/18), normalised; tap 0 is the
    // pixel itself, the others lie along the angle in [-45°, 45°), so the streak runs left.
    let norm: f64 = (0..21).map(|i| (-(i * i) as f64 / 18.0).exp()).sum();
    let centre = ((255.0 / norm).round() / 255.0) as f32;
    let mut shapes = Vec::new();
    for i in 0..6 {
        let y = apply(Corruption::MotionBlur, &x, H, W, SEED, i);
        assert_eq!(y[r0 * W + c0], centre, "index {i}");
        let mut reach = 0;
        for r in 0..H {
            for c in 0..W {
                let v = y[r * W + c];
                assert!((v * 255.0 - (v * 255.0).round()).abs() < 1e-3, "not 8-bit: {v}");
                if v > 0.0 {
                    assert!(c <= c0, "({r}, {c}) lit right of the source");
                    let dc = c0 - c;
                    assert!(r.abs_diff(r0) <= dc + 1, "({r}, {c}) outside the ±45° cone");
                    reach = reach.max(dc.max(r.abs_diff(r0)));
                }
            }
        }
        // Weight 9 is 0.66/255 of the source (rounds to 1), weight 10 rounds to 0.
        assert!((6..=9).contains(&reach), "streak reaches {reach} pixels");
        let total: f32 = y.iter().sum();
        assert!((total - 1.0).abs() < 21.0 * 0.5 / 255.0, "mass {total}");
        shapes.push(y);
    }
    assert!(shapes.windows(2).any(|p| p[0] != p[1]), "the angle is not drawn");
}

// ---------------------------------------------------------------- affine

/// A linear ramp: bilinear interpolation reproduces it exactly wherever it samples inside.
fn ramp() -> Vec<f32> {
    (0..H * W).map(|k| ((k / W) as f32 + 2.0 * (k % W) as f32) / 81.0).collect()
}

/// Checks `out` against the ramp sampled at `m · (col, row) + t` (the reference's inverse map)
/// at every pixel whose sample lies inside the image; returns whether all matched.
fn matches_inverse_map(out: &[f32], m: [[f64; 2]; 2], t: [f64; 2]) -> bool {
    let mut checked = 0;
    for r in 0..H {
        for c in 0..W {
            let (cf, rf) = (c as f64, r as f64);
            let sx = m[0][0] * cf + m[0][1] * rf + t[0];
            let sy = m[1][0] * cf + m[1][1] * rf + t[1];
            if (0.0..=27.0).contains(&sx) && (0.0..=27.0).contains(&sy) {
                checked += 1;
                if (out[r * W + c] as f64 - (sy + 2.0 * sx) / 81.0).abs() > 1e-5 {
                    return false;
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} pixels checked");
    true
}

/// The reference's centring: `a3 = 13.5 (1 − a1 − a2)`, `b3 = 13.5 (1 − b1 − b2)`.
fn centred(m: [[f64; 2]; 2]) -> [f64; 2] {
    [13.5 * (1.0 - m[0][0] - m[0][1]), 13.5 * (1.0 - m[1][0] - m[1][1])]
}

#[test]
fn shear_is_skimages_affine_shear_of_plus_or_minus_0_4() {
    let x = ramp();
    let mut seen = [false; 2];
    for i in 0..16 {
        let y = apply(Corruption::Shear, &x, H, W, SEED, i);
        let hits: Vec<bool> = [-0.4f64, 0.4]
            .iter()
            .map(|&s| {
                let m = [[1.0, -s.sin()], [0.0, s.cos()]];
                matches_inverse_map(&y, m, centred(m))
            })
            .collect();
        assert!(hits[0] ^ hits[1], "index {i}: matches neither (or both) shear signs");
        seen[hits[1] as usize] = true;
    }
    assert_eq!(seen, [true, true], "both directions occur");
}

#[test]
fn rotate_is_plus_or_minus_0_4_radians_about_the_centre() {
    let x = ramp();
    let mut seen = [false; 2];
    for i in 0..16 {
        let y = apply(Corruption::Rotate, &x, H, W, SEED, i);
        let hits: Vec<bool> = [-0.4f64, 0.4]
            .iter()
            .map(|&t| {
                let m = [[t.cos(), -t.sin()], [t.sin(), t.cos()]];
                matches_inverse_map(&y, m, centred(m))
            })
            .collect();
        assert!(hits[0] ^ hits[1], "index {i}");
        seen[hits[1] as usize] = true;
    }
    assert_eq!(seen, [true, true]);
    // A known pixel: the rotation is about (13.5, 13.5), so the 2×2 block around it stays there.
    let mut dot = constant(0.0);
    for r in 13..15 {
        for c in 13..15 {
            dot[r * W + c] = 1.0;
        }
    }
    let y = apply(Corruption::Rotate, &dot, H, W, SEED, 0);
    let mass: f32 = (12..16).flat_map(|r| (12..16).map(move |c| (r, c))).map(|(r, c)| y[r * W + c]).sum();
    let total: f32 = y.iter().sum();
    assert!(total > 2.0 && (mass - total).abs() < 1e-6, "the centre block moved");
}

#[test]
fn scale_shrinks_to_0_7_about_the_centre() {
    let s = 1.0 / 0.7;
    let m = [[s, 0.0], [0.0, s]];
    assert!(matches_inverse_map(&apply(Corruption::Scale, &ramp(), H, W, SEED, 0), m, centred(m)));
    // A known pixel: input (row 13.5 − 7, col 13.5 + 7) → 13.5 ± 7·0.7 = (8.6, 18.4); a
    // bright 2×2 block at rows 6..8, cols 20..22 ends up around rows 8–9, cols 18–19.
    let mut block = constant(0.0);
    for r in 6..8 {
        for c in 20..22 {
            block[r * W + c] = 1.0;
        }
    }
    let y = apply(Corruption::Scale, &block, H, W, SEED, 0);
    let (mut rs, mut cs, mut sum) = (0.0, 0.0, 0.0);
    for r in 0..H {
        for c in 0..W {
            let v = y[r * W + c] as f64;
            rs += v * r as f64;
            cs += v * c as f64;
            sum += v;
        }
    }
    // Centroid of the block: (6.5, 20.5) → 13.5 + 0.7·(−7, 7) = (8.6, 18.4).
    assert!((rs / sum - 8.6).abs() < 0.25 && (cs / sum - 18.4).abs() < 0.25, "centroid ({}, {})", rs / sum, cs / sum);
    assert!(sum > 4.0 * 0.49 * 0.7 && sum < 4.0 * 0.49 * 1.3, "area should shrink by 0.49: {sum}");
}

#[test]
fn translate_moves_by_three_pixels_in_each_direction() {
    let x = digit();
    let mut seen = std::collections::HashSet::new();
    for i in 0..32 {
        let y = apply(Corruption::Translate, &x, H, W, SEED, i);
        let mut found = None;
        for dx in [-3i64, 3] {
            for dy in [-3i64, 3] {
                let ok = (0..H as i64).all(|r| {
                    (0..W as i64).all(|c| {
                        let (sr, sc) = (r + dy, c + dx);
                        let src = if (0..H as i64).contains(&sr) && (0..W as i64).contains(&sc) { x[(sr * W as i64 + sc) as usize] } else { 0.0 };
                        y[(r * W as i64 + c) as usize] == src
                    })
                });
                if ok {
                    assert!(found.is_none());
                    found = Some((dx, dy));
                }
            }
        }
        seen.insert(found.unwrap_or_else(|| panic!("index {i}: not a (±3, ±3) shift")));
    }
    assert_eq!(seen.len(), 4, "all four directions occur: {seen:?}");
}

// ---------------------------------------------------------------- intensity

#[test]
fn brightness_adds_half_to_hsv_value() {
    let mut x = constant(0.0);
    x[0] = 0.2;
    x[1] = 0.6;
    x[2] = 1.0;
    let y = apply(Corruption::Brightness, &x, H, W, SEED, 0);
    // gray → HSV: V = x, S = 0; V + 0.5 clipped; back to gray with weights summing to 1.
    for (k, want) in [(0, 0.7f32), (1, 1.0), (2, 1.0), (3, 0.5)] {
        assert!((y[k] - want).abs() < 1e-6, "pixel {k}: {} not {want}", y[k]);
    }
}

#[test]
fn stripe_inverts_the_outer_seven_columns() {
    let x = digit();
    let y = apply(Corruption::Stripe, &x, H, W, SEED, 0);
    for r in 0..H {
        for c in 0..W {
            let k = r * W + c;
            let want = if !(7..21).contains(&c) { 1.0 - x[k] } else { x[k] };
            assert_eq!(y[k], want, "({r}, {c})");
        }
    }
}

// ---------------------------------------------------------------- fog, spatter

#[test]
fn fog_adds_one_shared_plasma_layer_scaled_by_the_image_maximum() {
    let x = digit();
    let mut square = constant(0.0);
    for r in 10..18 {
        for c in 10..18 {
            square[r * W + c] = 1.0;
        }
    }
    for i in 0..4 {
        let a = apply(Corruption::Fog, &x, H, W, SEED, i);
        let b = apply(Corruption::Fog, &square, H, W, SEED, i);
        // max(x) = 1 for both: out = (x + 3p)/4 with the same fractal p for the same key.
        let mut layer = Vec::new();
        for k in 0..H * W {
            assert!(((a[k] - b[k]) - (x[k] - square[k]) / 4.0).abs() < 1e-5, "pixel {k}");
            let p = (a[k] - x[k] / 4.0) * 4.0 / 3.0;
            assert!((-1e-5..=1.0 + 1e-5).contains(&p), "fractal value {p}");
            layer.push(p);
        }
        // A fractal, not white noise: neighbours close, the crop not constant.
        let range = layer.iter().fold(f32::MIN, |m, &v| m.max(v)) - layer.iter().fold(f32::MAX, |m, &v| m.min(v));
        let step: f32 = (0..H).flat_map(|r| (1..W).map(move |c| (r, c))).map(|(r, c)| (layer[r * W + c] - layer[r * W + c - 1]).abs()).sum::<f32>()
            / (H * (W - 1)) as f32;
        assert!(range > 0.05 && step < range / 8.0, "index {i}: range {range}, mean neighbour step {step}");
    }
    // max(x) = 0: the fog is scaled away.
    assert!(apply(Corruption::Fog, &constant(0.0), H, W, SEED, 0).iter().all(|&v| v == 0.0));
}

#[test]
fn spatter_mixes_in_mud_through_a_thresholded_mask() {
    const MUD: f32 = 63.0 / 255.0;
    let mut spattered = 0;
    for i in 0..8 {
        let zero = apply(Corruption::Spatter, &constant(0.0), H, W, SEED, i);
        let one = apply(Corruption::Spatter, &constant(1.0), H, W, SEED, i);
        for k in 0..H * W {
            // x(1 − m) + MUD·m with m = 0 or m in [0.8, 1].
            let m = zero[k] / MUD;
            assert!(m == 0.0 || (0.8 - 1e-5..=1.0 + 1e-5).contains(&m), "mask value {m}");
            assert!((one[k] - (1.0 - m + MUD * m)).abs() < 1e-5, "same mask on both images");
            spattered += (m > 0.0) as usize;
        }
    }
    let fraction = spattered as f64 / (8 * H * W) as f64;
    assert!(fraction > 0.01 && fraction < 0.5, "spattered fraction {fraction}");
}

// ---------------------------------------------------------------- lines

/// MNIST-C's `line_from_points` on 28×28, written out from its definition.
fn reference_line(c0: f64, r0: f64, c1: f64, r1: f64) -> Vec<f32> {
    let m = (r1 - r0) / (c1 - c0);
    let mut out = vec![0.0f32; H * W];
    for r in 0..H {
        for c in (c0.floor() as usize)..(c1.ceil() as usize).min(W) {
            let d = (r as f64 - (m * (c as f64 - c0) + r0)).abs().min(2.3 - 1e-10);
            out[r * W + c] = ((1.0 - d / 2.3).ln() + 1.0).clamp(0.0, 1.0) as f32;
        }
    }
    out
}

#[test]
fn dotted_line_is_the_reference_line_in_two_column_dashes() {
    let x = digit();
    for i in 0..6 {
        let on_black = apply(Corruption::DottedLine, &constant(0.0), H, W, SEED, i);
        let mut matched = None;
        for r0 in 0..27 {
            for r1 in 0..27 {
                let mut line = reference_line(0.0, r0 as f64, 27.0, r1 as f64);
                for r in 0..H {
                    for c in (0..W).filter(|c| c % 4 < 2) {
                        line[r * W + c] = 0.0;
                    }
                }
                if max_abs_diff(&line, &on_black) < 1e-6 {
                    matched = Some(line);
                }
            }
        }
        let line = matched.unwrap_or_else(|| panic!("index {i}: not a dotted reference line"));
        // Lit pixels: dashes in columns 2,3, 6,7, …, 26 (27 is cut by ceil(c1)).
        assert!((0..H).all(|r| on_black[r * W + 27] == 0.0));
        for c in (0..27).filter(|c| c % 4 >= 2) {
            assert!((0..H).any(|r| on_black[r * W + c] > 0.7), "column {c} has no line pixel");
        }
        // On the digit, the same draw, added and clipped.
        let y = apply(Corruption::DottedLine, &x, H, W, SEED, i);
        for k in 0..H * W {
            assert!((y[k] - (x[k] + line[k]).min(1.0)).abs() < 1e-6);
        }
    }
}

/// MNIST-C's `zigzag` corruption layer for a given draw `(r0, r1)`, written out from its
/// definition (28×28: from column 2 to 25, zigs of length and width 2).
fn reference_zigzag(r0: f64, r1: f64) -> Vec<f32> {
    let (a, b, c0, c1) = (2.0f64, 2.0f64, 2.0f64, 25.0f64);
    let theta = ((r1 - r0) / (c1 - c0)).atan();
    let d = (c1 - c0) / theta.cos();
    let mut pts = vec![(0.0, 0.0)];
    let mut r_i = 0.0;
    for i in 0..(((d - a) / (2.0 * a)).floor() as i64 + 1) {
        r_i = if i % 2 == 0 { b } else { -b };
        pts.push(((2 * i + 1) as f64 * a, r_i));
    }
    let max_c = 2.0 * a * (d / (2.0 * a)).floor();
    if d != max_c {
        pts.push((d, r_i / (2.0 * (d - max_c))));
    }
    let (sin, cos) = theta.sin_cos();
    let rotated: Vec<(f64, f64)> = pts.iter().map(|&(c, r)| (cos * c - sin * r + c0, sin * c + cos * r + r0)).collect();
    let mut out = vec![0.0f32; H * W];
    for p in rotated.windows(2) {
        let line = reference_line(p[0].0, p[0].1, p[1].0, p[1].1);
        for k in 0..H * W {
            out[k] = (out[k] + line[k]).min(1.0);
        }
    }
    out
}

#[test]
fn zigzag_is_the_reference_zigzag_from_column_2_to_25() {
    let x = digit();
    let mut checked_shape = 0;
    for i in 0..8 {
        let z = apply(Corruption::Zigzag, &constant(0.0), H, W, SEED, i);
        // The draw: r0 from randint(0, 27), r1 = r0 + randint(-5, 5).
        let draw = (0..27i64)
            .flat_map(|r0| (-5..5).map(move |dr| (r0, r0 + dr)))
            .find(|&(r0, r1)| max_abs_diff(&reference_zigzag(r0 as f64, r1 as f64), &z) < 1e-5);
        let (r0, _) = draw.unwrap_or_else(|| panic!("index {i}: not a reference zigzag"));
        // Hand-checkable parts: lit columns are 2..=25 (the end vertex may fall a hair right
        // of 25); the first vertex (col 2, row r0) is on the line, so that pixel is exactly 1.
        for r in 0..H {
            for c in (0..2).chain(26..W) {
                assert_eq!(z[r * W + c], 0.0, "index {i}: ({r}, {c}) lit outside columns 2..=25");
            }
        }
        assert_eq!(z[r0 as usize * W + 2], 1.0, "index {i}: no vertex at (row {r0}, col 2)");
        if (4..=20).contains(&r0) {
            // Away from the top and bottom, every column crosses it and its brightest rows go
            // up and down.
            checked_shape += 1;
            let peaks: Vec<usize> = (2..25)
                .map(|c| {
                    let col: Vec<f32> = (0..H).map(|r| z[r * W + c]).collect();
                    assert!(col.iter().any(|&v| v > 0.5), "index {i}: column {c} not crossed");
                    (0..H).max_by(|&a, &b| col[a].total_cmp(&col[b])).unwrap()
                })
                .collect();
            let turns = peaks.windows(2).map(|w| (w[1] as i64 - w[0] as i64).signum()).filter(|&s| s != 0).collect::<Vec<_>>();
            let changes = turns.windows(2).filter(|w| w[0] != w[1]).count();
            assert!(changes >= 3, "index {i}: peaks {peaks:?} do not zigzag");
        }
        // On the digit: the same draw, added and clipped.
        let y = apply(Corruption::Zigzag, &x, H, W, SEED, i);
        for k in 0..H * W {
            assert!((y[k] - (x[k] + z[k]).min(1.0)).abs() < 1e-5);
        }
    }
    assert!(checked_shape >= 2, "too few draws away from the border ({checked_shape})");
}

// ---------------------------------------------------------------- edges

#[test]
fn canny_marks_only_a_squares_border() {
    let mut sq = constant(0.0);
    for r in 8..20 {
        for c in 8..20 {
            sq[r * W + c] = 1.0;
        }
    }
    let e = apply(Corruption::CannyEdges, &sq, H, W, SEED, 0);
    let on = |r: usize, c: usize| e[r * W + c] == 1.0;
    assert!(e.iter().all(|&v| v == 0.0 || v == 1.0), "not binary");
    let band = |v: usize| (7..=8).contains(&v) || (19..=20).contains(&v);
    for r in 0..H {
        for c in 0..W {
            if on(r, c) {
                let inside = (7..=20).contains(&r) && (7..=20).contains(&c);
                assert!(inside && (band(r) || band(c)), "edge at ({r}, {c}) is not on the square's border");
            }
        }
    }
    // All four sides are traced along their straight parts.
    for t in 10..18 {
        assert!(on(t, 7) || on(t, 8), "left side, row {t}");
        assert!(on(t, 19) || on(t, 20), "right side, row {t}");
        assert!(on(7, t) || on(8, t), "top side, col {t}");
        assert!(on(19, t) || on(20, t), "bottom side, col {t}");
    }
    // A flat image has no edges.
    assert!(apply(Corruption::CannyEdges, &constant(0.6), H, W, SEED, 0).iter().all(|&v| v == 0.0));
}

#[test]
fn canny_thresholds_a_step_at_sigma_one() {
    // A vertical step of contrast c between columns 13 and 14: smoothed with σ = 1 (zero
    // padding, renormalised), its central difference next to the step is 0.6409·c, times the
    // Sobel's [1, 2, 1] = 4: magnitude 2.5637·c on columns 13 and 14 (computed by hand from the
    // 9-tap kernel), less elsewhere. Thresholds 0.1 / 0.2: c = 0.07 (0.179) has no strong point,
    // c = 0.09 (0.231) is an edge there on every row but the border ones (on both columns
    // where the two magnitudes tie exactly; rounding may break the tie near the border).
    let step = |contrast: f32| -> Vec<f32> { (0..H * W).map(|k| if k % W >= 14 { contrast } else { 0.0 }).collect() };
    let weak = apply(Corruption::CannyEdges, &step(0.07), H, W, SEED, 0);
    assert!(weak.iter().all(|&v| v == 0.0), "a step below the high threshold made edges");
    let strong = apply(Corruption::CannyEdges, &step(0.09), H, W, SEED, 0);
    for r in 0..H {
        for c in 0..W {
            if strong[r * W + c] == 1.0 {
                assert!((1..H - 1).contains(&r) && (c == 13 || c == 14), "edge at ({r}, {c})");
            }
        }
        if (1..H - 1).contains(&r) {
            assert!(strong[r * W + 13] == 1.0 || strong[r * W + 14] == 1.0, "row {r} has no edge");
        }
    }
    assert!((4..24).all(|r| strong[r * W + 13] == 1.0 && strong[r * W + 14] == 1.0), "the tie keeps both columns");
}

// ---------------------------------------------------------------- speed

/// Timing: `cargo test --test corruptions -- --ignored --nocapture speed` (dev profile).
#[test]
#[ignore]
fn speed_all_fifteen_on_ten_thousand_images() {
    let x = digit();
    let n = 10_000;
    let images: Vec<f32> = (0..n).flat_map(|_| x.iter().copied()).collect();
    let start = std::time::Instant::now();
    for c in Corruption::ALL {
        let t = std::time::Instant::now();
        let out = apply_batch(c, &images, H, W, SEED, 0);
        assert_eq!(out.len(), images.len());
        eprintln!("{:>14}: {:.2} s", c.name(), t.elapsed().as_secs_f64());
    }
    eprintln!("all 15 × {n}: {:.1} s on {} threads", start.elapsed().as_secs_f64(), rayon::current_num_threads());
}
