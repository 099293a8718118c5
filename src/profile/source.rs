//! Load readings: the `LoadSource` trait, the PSI and `/proc/stat` sources with their pure parsers, and a synthetic source for tests.
//!
//! PSI is read from the `total` counter of the `some` line (microseconds some task waited for a
//! CPU), not from `avg10`: the share over exactly the last sample interval is
//! `Δtotal / Δwall`. `avg10` is a 10 s exponentially decaying average the kernel updates every
//! 2 s, so it would lag and smooth on a time scale unrelated to `sample_every`, and the
//! switcher's enter and leave windows already do the smoothing, explicitly.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use super::ProfileError;
use super::config::SourceKind;

/// One reading: the load over the last interval, in per mille (0-1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    pub permille: u32,
}

/// Something that reports the host's CPU load.
pub trait LoadSource: Send {
    /// `psi`, `stat` or `synthetic`, for the state and the evidence.
    fn name(&self) -> &'static str;
    /// The load since the previous call; `None` on the first call (no interval yet).
    fn sample(&mut self) -> Result<Option<Reading>, ProfileError>;
}

/// The `total=` counter of the `some` line of `/proc/pressure/cpu` (µs).
pub fn parse_psi_some_total(text: &str) -> Result<u64, ProfileError> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("some"))
        .ok_or_else(|| ProfileError::Parse("no `some` line in the PSI file".into()))?;
    line.split_whitespace()
        .filter_map(|f| f.strip_prefix("total="))
        .next()
        .ok_or_else(|| ProfileError::Parse("no `total=` field on the PSI `some` line".into()))?
        .parse::<u64>()
        .map_err(|e| ProfileError::Parse(format!("the PSI `total=` field is not a number ({e})")))
}

/// The share (‰) of `elapsed_us` covered by the stall counter's growth, clamped to 0-1000.
/// A counter that went backwards or no elapsed time give no reading.
pub fn psi_share(prev_total: u64, total: u64, elapsed_us: u64) -> Option<u32> {
    if elapsed_us == 0 || total < prev_total {
        return None;
    }
    let share = (total - prev_total).saturating_mul(1000) / elapsed_us;
    Some(share.min(1000) as u32)
}

/// The aggregate `cpu` line of `/proc/stat`: `(busy, total)` jiffies, where idle and iowait are
/// not busy and guest time (already inside user and nice) is not counted twice.
pub fn parse_stat_cpu(text: &str) -> Result<(u64, u64), ProfileError> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .ok_or_else(|| ProfileError::Parse("no aggregate `cpu` line in /proc/stat".into()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            ProfileError::Parse(format!("a /proc/stat cpu field is not a number ({e})"))
        })?;
    if fields.len() < 4 {
        return Err(ProfileError::Parse(format!(
            "the /proc/stat cpu line has {} fields, at least 4 expected",
            fields.len()
        )));
    }
    // user nice system idle iowait irq softirq steal guest guest_nice
    let total = fields
        .iter()
        .take(8)
        .fold(0u64, |a, b| a.saturating_add(*b));
    let idle = fields[3].saturating_add(fields.get(4).copied().unwrap_or(0));
    Ok((total.saturating_sub(idle), total))
}

/// The busy share (‰) between two `(busy, total)` readings; none when no time passed or a counter went back.
pub fn stat_share(prev: (u64, u64), now: (u64, u64)) -> Option<u32> {
    let (pb, pt) = prev;
    let (b, t) = now;
    if t <= pt || b < pb {
        return None;
    }
    let share = (b - pb).saturating_mul(1000) / (t - pt);
    Some(share.min(1000) as u32)
}

fn read(path: &PathBuf) -> Result<String, ProfileError> {
    std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.clone(),
        source,
    })
}

/// `/proc/pressure/cpu`, `some` stall share over each interval.
pub struct PsiSource {
    path: PathBuf,
    prev: Option<(u64, Instant)>,
}

impl PsiSource {
    pub const PATH: &str = "/proc/pressure/cpu";

    /// Opens the source; fails when the kernel has no PSI (file missing or `psi=0`).
    pub fn open() -> Result<Self, ProfileError> {
        let path = PathBuf::from(Self::PATH);
        parse_psi_some_total(&read(&path)?)?;
        Ok(Self { path, prev: None })
    }
}

impl LoadSource for PsiSource {
    fn name(&self) -> &'static str {
        "psi"
    }
    fn sample(&mut self) -> Result<Option<Reading>, ProfileError> {
        let total = parse_psi_some_total(&read(&self.path)?)?;
        let now = Instant::now();
        let reading = self.prev.and_then(|(prev, at)| {
            let us = u64::try_from(now.duration_since(at).as_micros()).unwrap_or(u64::MAX);
            psi_share(prev, total, us)
        });
        self.prev = Some((total, now));
        Ok(reading.map(|permille| Reading { permille }))
    }
}

/// `/proc/stat`, busy share of all CPUs over each interval.
pub struct StatSource {
    path: PathBuf,
    prev: Option<(u64, u64)>,
}

impl StatSource {
    pub const PATH: &str = "/proc/stat";

    pub fn open() -> Result<Self, ProfileError> {
        let path = PathBuf::from(Self::PATH);
        parse_stat_cpu(&read(&path)?)?;
        Ok(Self { path, prev: None })
    }
}

impl LoadSource for StatSource {
    fn name(&self) -> &'static str {
        "stat"
    }
    fn sample(&mut self) -> Result<Option<Reading>, ProfileError> {
        let now = parse_stat_cpu(&read(&self.path)?)?;
        let reading = self.prev.and_then(|prev| stat_share(prev, now));
        self.prev = Some(now);
        Ok(reading.map(|permille| Reading { permille }))
    }
}

/// Readings given in advance, for tests; repeats the last one when it runs out.
#[derive(Debug, Default)]
pub struct SyntheticSource {
    queue: VecDeque<u32>,
    last: Option<u32>,
}

impl SyntheticSource {
    pub fn new(readings: impl IntoIterator<Item = u32>) -> Self {
        Self {
            queue: readings.into_iter().collect(),
            last: None,
        }
    }
}

impl LoadSource for SyntheticSource {
    fn name(&self) -> &'static str {
        "synthetic"
    }
    fn sample(&mut self) -> Result<Option<Reading>, ProfileError> {
        if let Some(v) = self.queue.pop_front() {
            self.last = Some(v);
        }
        Ok(self.last.map(|v| Reading {
            permille: v.min(1000),
        }))
    }
}

/// The source `kind` names: `auto` is PSI where the kernel has it, else `/proc/stat`.
pub fn open(kind: SourceKind) -> Result<Box<dyn LoadSource>, ProfileError> {
    Ok(match kind {
        SourceKind::Psi => Box::new(PsiSource::open()?),
        SourceKind::Stat => Box::new(StatSource::open()?),
        SourceKind::Auto => match PsiSource::open() {
            Ok(s) => Box::new(s),
            Err(_) => Box::new(StatSource::open()?),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_psi_some_total_is_read_from_kernel_shaped_text() {
        let cases: &[(&str, Option<u64>)] = &[
            (
                "some avg10=32.45 avg60=31.47 avg300=16.50 total=75971145\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                Some(75_971_145),
            ),
            ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", Some(0)),
            ("full avg10=0.00 total=5\nsome total=7 avg10=1.0\n", Some(7)),
            ("", None),
            ("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", None),
            ("some avg10=0.00 avg60=0.00 avg300=0.00\n", None),
            ("some avg10=0.00 total=-3\n", None),
            ("some total=12x\n", None),
            ("somewhere total=1\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_psi_some_total(text).ok(), *want, "{text:?}");
        }
    }

    #[test]
    fn the_psi_share_is_the_counter_growth_over_the_elapsed_time() {
        let cases: &[(u64, u64, u64, Option<u32>)] = &[
            (0, 0, 1_000_000, Some(0)),
            (0, 500_000, 1_000_000, Some(500)),
            (100, 1_000_100, 1_000_000, Some(1000)),
            // Rounding and scheduling jitter can push the growth past the wall time.
            (0, 1_200_000, 1_000_000, Some(1000)),
            (10, 5, 1_000_000, None),
            (0, 5, 0, None),
            (0, u64::MAX, 1, Some(1000)),
        ];
        for (prev, total, us, want) in cases {
            assert_eq!(psi_share(*prev, *total, *us), *want, "{prev} {total} {us}");
        }
    }

    #[test]
    fn proc_stat_cpu_lines_give_busy_and_total_jiffies() {
        let cases: &[(&str, Option<(u64, u64)>)] = &[
            (
                "cpu  72170 0 19213 22508 761 0 238 1624 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n",
                Some((
                    72170 + 19213 + 238 + 1624,
                    72170 + 19213 + 22508 + 761 + 238 + 1624,
                )),
            ),
            ("cpu 1 2 3 4\n", Some((6, 10))),
            ("intr 5\ncpu 0 0 0 100 0 0 0 0 0 0\n", Some((0, 100))),
            ("cpu0 1 2 3 4\n", None),
            ("cpu 1 2 3\n", None),
            ("cpu 1 2 x 4\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_stat_cpu(text).ok(), *want, "{text:?}");
        }
    }

    #[test]
    fn the_busy_share_comes_from_deltas() {
        type Case = ((u64, u64), (u64, u64), Option<u32>);
        let cases: &[Case] = &[
            ((0, 0), (50, 100), Some(500)),
            ((10, 100), (10, 200), Some(0)),
            ((10, 100), (110, 200), Some(1000)),
            ((10, 100), (20, 100), None),
            ((10, 100), (5, 200), None),
        ];
        for (prev, now, want) in cases {
            assert_eq!(stat_share(*prev, *now), *want, "{prev:?} {now:?}");
        }
    }

    #[test]
    fn the_synthetic_source_replays_then_repeats_its_last_reading() {
        let mut s = SyntheticSource::new([100, 2000]);
        assert_eq!(s.sample().unwrap(), Some(Reading { permille: 100 }));
        assert_eq!(s.sample().unwrap(), Some(Reading { permille: 1000 }));
        assert_eq!(s.sample().unwrap(), Some(Reading { permille: 1000 }));
        assert_eq!(SyntheticSource::new([]).sample().unwrap(), None);
    }

    #[test]
    fn the_sources_of_this_host_read_without_error() {
        if let Ok(mut s) = open(SourceKind::Auto) {
            assert!(s.sample().is_ok());
            std::thread::sleep(std::time::Duration::from_millis(20));
            if let Ok(Some(r)) = s.sample() {
                assert!(r.permille <= 1000);
            }
        }
    }

    proptest! {
        #[test]
        fn no_text_makes_the_parsers_panic(text in "\\PC*") {
            let _ = parse_psi_some_total(&text);
            let _ = parse_stat_cpu(&text);
        }

        #[test]
        fn kernel_shaped_text_with_any_numbers_parses_without_panic(
            a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), d in any::<u64>(), e in any::<u64>()
        ) {
            let psi = format!("some avg10=1.00 avg60=2.00 avg300=3.00 total={a}\nfull total={b}\n");
            prop_assert_eq!(parse_psi_some_total(&psi).ok(), Some(a));
            let stat = format!("cpu {a} {b} {c} {d} {e} 0 0 0 0 0\n");
            prop_assert!(parse_stat_cpu(&stat).is_ok());
        }

        #[test]
        fn shares_stay_within_per_mille(a in any::<u64>(), b in any::<u64>(), c in any::<u64>(), d in any::<u64>()) {
            if let Some(s) = psi_share(a, b, c) { prop_assert!(s <= 1000); }
            if let Some(s) = stat_share((a, b), (c, d)) { prop_assert!(s <= 1000); }
        }
    }
}
