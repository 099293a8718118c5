//! The `switching:` block of `spindle.yaml`: how and when spindle switches to a low-CPU profile, and its validation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ProfileError;

/// The name `pin` takes for "no switchable profile, only the base files".
pub const DEFAULT_PROFILE: &str = "default";

/// Whether spindle switches by itself.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Measured load switches the profile on and off; a pin overrides it.
    #[default]
    Auto,
    /// Only a pin switches (`spindle profile pin`, `POST /profile`).
    Manual,
}

/// Where the load readings come from.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// PSI where the kernel has it, else `/proc/stat`.
    #[default]
    Auto,
    /// `/proc/pressure/cpu`: the share of time some task waited for a CPU.
    Psi,
    /// `/proc/stat`: the share of time the CPUs were busy.
    Stat,
}

/// `switching.enter`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnterConfig {
    /// Percent (0-100) the load must exceed ...
    pub above: f64,
    /// ... for this long (a duration: `30s`, `2m`).
    #[serde(rename = "for")]
    pub window: String,
}

/// `switching.leave`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeaveConfig {
    /// Percent (0-100) the load must stay under ...
    pub below: f64,
    /// ... for this long; longer than the enter window.
    #[serde(rename = "for")]
    pub window: String,
}

/// `switching:` as written in `spindle.yaml`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SwitchingConfig {
    #[serde(default)]
    pub mode: Mode,
    /// The spindle.yaml profile switched on under load.
    pub profile: String,
    #[serde(default)]
    pub source: SourceKind,
    pub enter: EnterConfig,
    pub leave: LeaveConfig,
    /// No automatic switch within this long after any switch. Default `15m`.
    pub min_dwell: Option<String>,
    /// How often the load is read. Default `5s`.
    pub sample_every: Option<String>,
}

/// The checked `switching:` block, thresholds in per mille.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switching {
    pub mode: Mode,
    pub profile: String,
    pub source: SourceKind,
    /// Switch when the load is above this (‰) for `enter_for`.
    pub enter_above: u32,
    pub enter_for: Duration,
    /// Switch back when the load is below this (‰) for `leave_for`.
    pub leave_below: u32,
    pub leave_for: Duration,
    pub min_dwell: Duration,
    pub sample_every: Duration,
    /// Every profile `spindle.yaml` declares (the names a pin may take, beside `default`).
    pub declared: Vec<String>,
}

fn duration(key: &str, text: &str) -> Result<Duration, ProfileError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| ProfileError::Config {
        key: key.to_string(),
        message: format!("{text:?} is not a duration ({e}); write it like 30s, 2m or 1h"),
    })?;
    if d.is_zero() {
        return Err(ProfileError::Config {
            key: key.to_string(),
            message: "must be longer than zero".into(),
        });
    }
    Ok(d)
}

fn percent(key: &str, v: f64) -> Result<u32, ProfileError> {
    if !v.is_finite() || !(0.0..=100.0).contains(&v) {
        return Err(ProfileError::Config {
            key: key.to_string(),
            message: format!("{v} is not a percentage; write a number from 0 to 100"),
        });
    }
    Ok((v * 10.0).round() as u32)
}

impl SwitchingConfig {
    /// Checks the block against the declared profiles; errors name the key path under `switching`.
    pub fn validate<V>(&self, profiles: &BTreeMap<String, V>) -> Result<Switching, ProfileError> {
        let declared: Vec<String> = profiles.keys().cloned().collect();
        if self.profile == DEFAULT_PROFILE {
            return Err(ProfileError::Config {
                key: "switching.profile".into(),
                message: format!(
                    "{DEFAULT_PROFILE:?} is reserved for the base files; name a profile declared under `profiles`"
                ),
            });
        }
        if !profiles.contains_key(&self.profile) {
            return Err(ProfileError::Config {
                key: "switching.profile".into(),
                message: format!(
                    "{:?} is not declared under `profiles` (declared: {})",
                    self.profile,
                    names(&declared)
                ),
            });
        }
        let enter_above = percent("switching.enter.above", self.enter.above)?;
        let leave_below = percent("switching.leave.below", self.leave.below)?;
        if leave_below >= enter_above {
            return Err(ProfileError::Config {
                key: "switching.leave.below".into(),
                message: format!(
                    "{} must be lower than switching.enter.above ({}), or the profile would flap",
                    self.leave.below, self.enter.above
                ),
            });
        }
        let enter_for = duration("switching.enter.for", &self.enter.window)?;
        let leave_for = duration("switching.leave.for", &self.leave.window)?;
        if leave_for <= enter_for {
            return Err(ProfileError::Config {
                key: "switching.leave.for".into(),
                message: format!(
                    "{} must be longer than switching.enter.for ({}): leave the low-CPU profile more reluctantly than it is entered",
                    self.leave.window, self.enter.window
                ),
            });
        }
        let min_dwell = match &self.min_dwell {
            Some(t) => duration("switching.min_dwell", t)?,
            None => Duration::from_secs(15 * 60),
        };
        let sample_every = match &self.sample_every {
            Some(t) => duration("switching.sample_every", t)?,
            None => Duration::from_secs(5),
        };
        if sample_every > enter_for {
            return Err(ProfileError::Config {
                key: "switching.sample_every".into(),
                message: format!(
                    "{} is longer than switching.enter.for ({}); sample at least once per window",
                    humantime::format_duration(sample_every),
                    self.enter.window
                ),
            });
        }
        Ok(Switching {
            mode: self.mode,
            profile: self.profile.clone(),
            source: self.source,
            enter_above,
            enter_for,
            leave_below,
            leave_for,
            min_dwell,
            sample_every,
            declared,
        })
    }
}

/// `a, b` or `none`, for error messages.
pub fn names(declared: &[String]) -> String {
    if declared.is_empty() {
        "none".into()
    } else {
        declared.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> BTreeMap<String, ()> {
        [("low-cpu".to_string(), ())].into_iter().collect()
    }

    fn parse(text: &str) -> Result<SwitchingConfig, String> {
        yaml_serde::from_str(text).map_err(|e| e.to_string())
    }

    const GOOD: &str =
        "profile: low-cpu\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\n";

    #[test]
    fn a_complete_block_is_read_with_defaults_for_the_optional_keys() {
        let s = parse(GOOD).unwrap().validate(&profiles()).unwrap();
        assert_eq!(s.mode, Mode::Auto);
        assert_eq!(s.source, SourceKind::Auto);
        assert_eq!(s.enter_above, 800);
        assert_eq!(s.leave_below, 400);
        assert_eq!(s.enter_for, Duration::from_secs(120));
        assert_eq!(s.leave_for, Duration::from_secs(600));
        assert_eq!(s.min_dwell, Duration::from_secs(900));
        assert_eq!(s.sample_every, Duration::from_secs(5));
        assert_eq!(s.declared, vec!["low-cpu".to_string()]);
    }

    #[test]
    fn invalid_blocks_are_refused_with_their_key_path() {
        let cases: &[(&str, &str)] = &[
            (
                "profile: nope\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\n",
                "switching.profile",
            ),
            (
                "profile: default\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\n",
                "switching.profile",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: 2m}\nleave: {below: 80, for: 10m}\n",
                "switching.leave.below",
            ),
            (
                "profile: low-cpu\nenter: {above: 180, for: 2m}\nleave: {below: 40, for: 10m}\n",
                "switching.enter.above",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: 2m}\nleave: {below: -1, for: 10m}\n",
                "switching.leave.below",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: 10m}\nleave: {below: 40, for: 10m}\n",
                "switching.leave.for",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: soon}\nleave: {below: 40, for: 10m}\n",
                "switching.enter.for",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: 0s}\nleave: {below: 40, for: 10m}\n",
                "switching.enter.for",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\nmin_dwell: x\n",
                "switching.min_dwell",
            ),
            (
                "profile: low-cpu\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\nsample_every: 5m\n",
                "switching.sample_every",
            ),
        ];
        for (text, key) in cases {
            match parse(text).unwrap().validate(&profiles()) {
                Err(ProfileError::Config { key: k, .. }) => assert_eq!(&k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_undeclared_profile_error_lists_the_declared_ones() {
        let text = "profile: nope\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\n";
        let e = parse(text).unwrap().validate(&profiles()).unwrap_err();
        assert!(e.to_string().contains("low-cpu"), "{e}");
    }

    #[test]
    fn unknown_keys_and_modes_are_refused_by_the_parser() {
        for text in [
            "profile: low-cpu\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\nflap: true\n",
            "profile: low-cpu\nenter: {abve: 80, for: 2m}\nleave: {below: 40, for: 10m}\n",
            "profile: low-cpu\nmode: sometimes\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\n",
            "profile: low-cpu\nsource: vibes\nenter: {above: 80, for: 2m}\nleave: {below: 40, for: 10m}\n",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
