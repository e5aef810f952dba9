//! Which vector instructions the kernels use, decided at run time.
//!
//! Machines differ (AVX-512 on some, AVX2 + FMA only on others, neither on non-x86 CPUs), so
//! the kernels with hand-written vector paths ask [`active`] per call instead of being compiled
//! for one machine. `PREDIFY_ISA=portable|avx2|avx512` caps the level (never raises it above
//! what the CPU has), so that every lower path can be run and tested on a machine that has a
//! higher one; the tests also call each path directly for every level in [`available`].

use std::sync::OnceLock;

/// A level of vector instructions, ordered from none to the widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust loops (auto-vectorised for the compile target only).
    Portable,
    /// x86-64 AVX2 with FMA: 8 f32 lanes.
    Avx2Fma,
    /// x86-64 AVX-512 F: 16 f32 lanes.
    Avx512,
}

impl Isa {
    /// The name `PREDIFY_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The level a name stands for (`portable`, `avx2`, `avx512`).
    pub fn from_name(name: &str) -> Option<Self> {
        [Isa::Portable, Isa::Avx2Fma, Isa::Avx512].into_iter().find(|l| l.name() == name.trim())
    }
}

/// The highest level this CPU supports.
pub fn detected() -> Isa {
    static LEVEL: OnceLock<Isa> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    // The AVX-512 kernels use FMA on zmm registers: AVX-512 F is enough (it implies FMA).
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Isa::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Isa::Avx2Fma
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Portable
}

/// Every level this CPU can run, lowest first.
pub fn available() -> Vec<Isa> {
    [Isa::Portable, Isa::Avx2Fma, Isa::Avx512].into_iter().filter(|&l| l <= detected()).collect()
}

/// The level the kernels use: [`detected`], capped by `PREDIFY_ISA` when it names a level (an
/// unknown name is reported once on stderr and ignored).
pub fn active() -> Isa {
    static LEVEL: OnceLock<Isa> = OnceLock::new();
    *LEVEL.get_or_init(|| match std::env::var("PREDIFY_ISA") {
        Ok(name) => match Isa::from_name(&name) {
            Some(cap) => cap.min(detected()),
            None => {
                eprintln!("predify: PREDIFY_ISA={name:?} is not one of portable, avx2, avx512; using {}", detected().name());
                detected()
            }
        },
        Err(_) => detected(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_named() {
        assert!(Isa::Portable < Isa::Avx2Fma && Isa::Avx2Fma < Isa::Avx512);
        for l in [Isa::Portable, Isa::Avx2Fma, Isa::Avx512] {
            assert_eq!(Isa::from_name(l.name()), Some(l));
        }
        assert_eq!(Isa::from_name("sse9"), None);
        let a = available();
        assert_eq!(a.first(), Some(&Isa::Portable));
        assert_eq!(a.last(), Some(&detected()));
        assert!(active() <= detected());
        eprintln!("isa: detected {}, active {}", detected().name(), active().name());
    }
}
