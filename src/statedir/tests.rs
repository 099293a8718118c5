//! Tests of the state-dir gate: modes, owners, links.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

fn is_root() -> bool {
    euid() == 0
}

#[test]
fn a_new_state_dir_is_made_0700_and_its_files_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state/deeper");
    let sd = StateDir::open(&root).unwrap();
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&tmp.path().join("state")), 0o700);
    let ev = sd.subdir("evidence").unwrap();
    assert_eq!(mode(ev.path()), 0o700);
    ev.open_file(".lock", Access::Lock).unwrap();
    assert_eq!(mode(&ev.path().join(".lock")), 0o600);
    sd.write_atomic("pause.json", b"{}").unwrap();
    assert_eq!(mode(&root.join("pause.json")), 0o600);
    assert_eq!(sd.read("pause.json").unwrap().unwrap(), b"{}");
    assert_eq!(sd.read("missing.json").unwrap(), None);
    let names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary left: {names:?}");
}

#[test]
fn a_0755_state_dir_we_own_is_tightened_to_0700_and_a_0644_file_to_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("pause.json"), "{}").unwrap();
    std::fs::set_permissions(
        root.join("pause.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let sd = StateDir::open(&root).unwrap();
    assert_eq!(mode(&root), 0o700);
    sd.read("pause.json").unwrap();
    assert_eq!(mode(&root.join("pause.json")), 0o600);
}

#[test]
fn a_group_or_world_writable_state_dir_or_file_is_refused_with_the_chmod_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = StateDir::open(&root).unwrap_err().to_string();
    assert!(e.contains(&root.display().to_string()), "{e}");
    assert!(e.contains("chmod 700"), "{e}");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(root.join("api-tokens.json"), "[]").unwrap();
    std::fs::set_permissions(
        root.join("api-tokens.json"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let e = StateDir::open(&root)
        .unwrap()
        .read("api-tokens.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("chmod 600"), "{e}");
}

#[test]
fn a_state_dir_or_file_another_user_owns_is_refused_naming_the_owner_and_the_chown() {
    if !is_root() {
        eprintln!("skipped: needs root to give a file to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    chown(&root, 65534);
    let e = StateDir::open(&root).unwrap_err().to_string();
    assert!(e.contains("owned by uid 65534"), "{e}");
    assert!(e.contains("chown -R 0"), "{e}");
    assert!(e.contains(&root.display().to_string()), "{e}");
    chown(&root, 0);
    std::fs::write(root.join("profile.json"), "{}").unwrap();
    chown(&root.join("profile.json"), 65534);
    let e = StateDir::open(&root)
        .unwrap()
        .read("profile.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("owned by uid 65534"), "{e}");
    let sub = root.join("evidence");
    std::fs::create_dir(&sub).unwrap();
    chown(&sub, 65534);
    let e = StateDir::open(&root)
        .unwrap()
        .subdir("evidence")
        .unwrap_err()
        .to_string();
    assert!(e.contains("owned by uid 65534"), "{e}");
}

#[test]
fn a_symlink_planted_at_a_state_file_is_refused_and_its_target_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = StateDir::open(&tmp.path().join("state")).unwrap();
    let target = tmp.path().join("victim");
    for (name, access) in [
        ("a.lock", Access::Lock),
        ("seg.jsonl", Access::Append),
        ("r.json", Access::Read),
    ] {
        std::os::unix::fs::symlink(&target, sd.path().join(name)).unwrap();
        let e = sd.open_file(name, access).unwrap_err();
        assert!(matches!(e, StateDirError::Symlink { .. }), "{name}: {e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!target.exists(), "{name}: the link was followed");
    }
    // An atomic write replaces the link itself, never the file it points to.
    std::fs::write(&target, "theirs").unwrap();
    std::os::unix::fs::symlink(&target, sd.path().join("pause.json")).unwrap();
    sd.write_atomic("pause.json", b"ours").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
    assert!(
        !std::fs::symlink_metadata(sd.path().join("pause.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_state_dir_or_subfolder_that_is_a_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("state");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = StateDir::open(&link).unwrap_err();
    assert!(matches!(e, StateDirError::Symlink { .. }), "{e}");
    let sd = StateDir::open(&real).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, real.join("locks")).unwrap();
    let e = sd.subdir("locks").unwrap_err();
    assert!(matches!(e, StateDirError::Symlink { .. }), "{e}");
}

/// A folder with `mode` at `path`.
fn mkdir_mode(path: &Path, mode: u32) {
    std::fs::create_dir(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_world_writable_folder_on_the_way_to_the_state_dir_is_refused_naming_it_and_nothing_is_created()
{
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("open");
    mkdir_mode(&open, 0o777);
    let state = open.join("state");
    let e = StateDir::open(&state).unwrap_err();
    assert!(matches!(e, StateDirError::UnsafeAncestor { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains(&open.display().to_string()), "{e}");
    assert!(e.contains("mode 777"), "{e}");
    assert!(e.contains("not sticky"), "{e}");
    assert!(e.contains("chmod go-w"), "{e}");
    assert!(!state.exists(), "the state dir was created");
    // An existing state dir below it is refused as well, and so is a missing one deeper down.
    mkdir_mode(&state, 0o700);
    let e = StateDir::existing(&state).unwrap_err();
    assert!(matches!(e, StateDirError::UnsafeAncestor { .. }), "{e}");
    let e = StateDir::open(&state.join("a/b")).unwrap_err();
    assert!(matches!(e, StateDirError::UnsafeAncestor { .. }), "{e}");
    // Group-writable is no better.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o770)).unwrap();
    assert!(StateDir::open(&state).is_err());
}

#[test]
fn a_sticky_world_writable_ancestor_like_tmp_is_accepted_and_missing_ones_are_made_0700() {
    let tmp = tempfile::tempdir().unwrap();
    let sticky = tmp.path().join("sticky");
    mkdir_mode(&sticky, 0o1777);
    let state = sticky.join("a/b/state");
    StateDir::open(&state).unwrap();
    assert_eq!(mode(&sticky.join("a")), 0o700);
    assert!(StateDir::existing(&state).unwrap().is_some());
}

#[test]
fn a_link_on_the_way_is_followed_and_both_the_folder_holding_it_and_its_target_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    mkdir_mode(&real, 0o755);
    // /var/run -> /run: a link in a safe folder to a safe folder is fine, relative or absolute.
    let safe = tmp.path().join("safe");
    mkdir_mode(&safe, 0o755);
    std::os::unix::fs::symlink("../real", safe.join("run")).unwrap();
    std::os::unix::fs::symlink(&real, safe.join("abs")).unwrap();
    StateDir::open(&safe.join("run/state")).unwrap();
    StateDir::open(&safe.join("abs/state2")).unwrap();
    // The same link in a world-writable folder: whoever can write there can point it elsewhere.
    let open = tmp.path().join("open");
    mkdir_mode(&open, 0o777);
    std::os::unix::fs::symlink(&real, open.join("run")).unwrap();
    let e = StateDir::open(&open.join("run/state"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&open.display().to_string()), "{e}");
    // A safe link to a world-writable folder: the target is checked.
    std::os::unix::fs::symlink(&open, safe.join("to-open")).unwrap();
    let e = StateDir::open(&safe.join("to-open/state"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&open.display().to_string()), "{e}");
    // A loop of links ends in an error, not a hang.
    std::os::unix::fs::symlink(safe.join("loop"), safe.join("loop")).unwrap();
    assert!(StateDir::open(&safe.join("loop/state")).is_err());
}

#[test]
fn an_ancestor_another_user_owns_is_refused_naming_its_owner_and_mode() {
    if !is_root() {
        eprintln!("skipped: needs root to give a folder to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    mkdir_mode(&shared, 0o755);
    let state = shared.join("state");
    mkdir_mode(&state, 0o700);
    chown(&shared, 65534);
    let e = StateDir::open(&state).unwrap_err();
    assert!(matches!(e, StateDirError::UnsafeAncestor { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains(&shared.display().to_string()), "{e}");
    assert!(e.contains("owned by uid 65534 with mode 755"), "{e}");
    assert!(e.contains("another user owns it"), "{e}");
    assert!(e.contains("chown root"), "{e}");
    chown(&shared, 0);
    StateDir::open(&state).unwrap();
}
