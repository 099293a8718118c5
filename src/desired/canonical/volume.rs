//! Short volume syntax (`source:target:options`) to the long mount form, with bind versus named volume detection.

use crate::desired::tree::{Map, Tree};

use super::paths::clean;

/// The fields a short volume spec can set.
#[derive(Debug, Default)]
struct Mount {
    kind: &'static str,
    source: String,
    target: String,
    read_only: bool,
    bind: Option<Bind>,
    volume: Option<VolumeOpts>,
}

#[derive(Debug, Default)]
struct Bind {
    selinux: String,
    propagation: String,
    create_host_path: bool,
}

#[derive(Debug, Default)]
struct VolumeOpts {
    nocopy: bool,
}

/// Parses a short volume spec into its long form (target cleaned like a path).
/// The error text describes what is wrong; the caller adds the key path.
pub(super) fn parse(spec: &str) -> Result<Tree, String> {
    let mut mount = parse_mount(spec)?;
    if !mount.target.is_empty() {
        mount.target = clean(&mount.target);
    }
    Ok(encode(mount))
}

/// The container path of a short volume spec as written (not cleaned), as compose-go's
/// `format.ParseVolume` reads it; merging uses it to match volumes by target.
pub(crate) fn short_target(spec: &str) -> Result<String, String> {
    parse_mount(spec).map(|m| m.target)
}

fn encode(m: Mount) -> Tree {
    let mut out = Map::new();
    out.insert("type".into(), Tree::from(m.kind));
    if !m.source.is_empty() {
        out.insert("source".into(), Tree::from(m.source));
    }
    if !m.target.is_empty() {
        out.insert("target".into(), Tree::from(m.target));
    }
    if m.read_only {
        out.insert("read_only".into(), Tree::Bool(true));
    }
    if let Some(b) = m.bind {
        let mut bind = Map::new();
        if !b.selinux.is_empty() {
            bind.insert("selinux".into(), Tree::from(b.selinux));
        }
        if !b.propagation.is_empty() {
            bind.insert("propagation".into(), Tree::from(b.propagation));
        }
        if b.create_host_path {
            bind.insert("create_host_path".into(), Tree::Bool(true));
        }
        out.insert("bind".into(), Tree::Object(bind));
    }
    if let Some(v) = m.volume {
        let mut volume = Map::new();
        if v.nocopy {
            volume.insert("nocopy".into(), Tree::Bool(true));
        }
        out.insert("volume".into(), Tree::Object(volume));
    }
    Tree::Object(out)
}

/// Marks the end of the spec while scanning; a NUL inside the spec acts the same, as in compose.
const END: char = '\0';

fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut mount = Mount::default();
    match spec.len() {
        0 => return Err("empty volume spec".into()),
        1 | 2 => {
            mount.target = spec.to_string();
            mount.kind = "volume";
            return Ok(mount);
        }
        _ => {}
    }

    let bytes = spec.as_bytes();
    let mut buffer: Vec<char> = Vec::new();
    // Nesting depth of `${...}`: colons inside are not separators.
    let mut depth = 0usize;
    let chars = spec
        .char_indices()
        .chain(std::iter::once((spec.len(), END)));
    for (i, ch) in chars {
        if ch == '$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            buffer.push(ch);
            continue;
        }
        if ch == '}' && depth > 0 {
            depth -= 1;
            buffer.push(ch);
            continue;
        }
        if is_windows_drive(&buffer, ch) {
            buffer.push(ch);
        } else if (ch == ':' || ch == END) && depth == 0 {
            populate(ch, &buffer, &mut mount)
                .map_err(|e| format!("invalid volume spec: {e}; write source:target[:mode]"))?;
            buffer.clear();
        } else {
            buffer.push(ch);
        }
    }
    if is_file_path(&mount.source) {
        mount.kind = "bind";
        mount
            .bind
            .get_or_insert_with(Bind::default)
            .create_host_path = true;
    } else {
        mount.kind = "volume";
        mount.volume.get_or_insert_with(VolumeOpts::default);
    }
    Ok(mount)
}

fn is_windows_drive(buffer: &[char], ch: char) -> bool {
    ch == ':' && matches!(buffer, [c] if c.is_alphabetic())
}

/// Stores one colon-separated section: source, then target, then the options.
fn populate(ch: char, buffer: &[char], mount: &mut Mount) -> Result<(), &'static str> {
    let text: String = buffer.iter().collect();
    if buffer.is_empty() {
        return Err("empty section between colons");
    }
    if mount.source.is_empty() && ch == END {
        mount.target = text;
        return Ok(());
    }
    if mount.source.is_empty() {
        mount.source = text;
        return Ok(());
    }
    if mount.target.is_empty() {
        mount.target = text;
        return Ok(());
    }
    if ch == ':' {
        return Err("too many colons");
    }
    for option in text.split(',') {
        match option {
            "ro" => mount.read_only = true,
            "rw" => mount.read_only = false,
            "nocopy" => mount.volume = Some(VolumeOpts { nocopy: true }),
            "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                mount.bind.get_or_insert_with(Bind::default).propagation = option.to_string();
            }
            "z" | "Z" => {
                mount.bind.get_or_insert_with(Bind::default).selinux = option.to_string();
            }
            _ => {}
        }
    }
    Ok(())
}

/// A source that looks like a host path (`.`, `/`, `~`, `\\`, or a drive letter) makes a bind mount.
pub(super) fn is_file_path(source: &str) -> bool {
    if matches!(source.as_bytes().first(), Some(b'.' | b'/' | b'~')) || source.starts_with(r"\\") {
        return true;
    }
    let mut chars = source.chars();
    match chars.next() {
        Some(first) => {
            first.is_alphabetic() && source.as_bytes().get(first.len_utf8()) == Some(&b':')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    /// Rows checked against `docker-compose config` (v5.6.1), before path resolution.
    fn short_volume_specs_expand_to_the_long_mount_form() {
        let rows: &[(&str, Tree)] = &[
            (
                "./src:/dst:ro,z",
                json!({"type":"bind","source":"./src","target":"/dst","read_only":true,
                       "bind":{"selinux":"z","create_host_path":true}}),
            ),
            (
                "data:/data:nocopy",
                json!({"type":"volume","source":"data","target":"/data","volume":{"nocopy":true}}),
            ),
            (
                "data:/data",
                json!({"type":"volume","source":"data","target":"/data","volume":{}}),
            ),
            (
                "/data",
                json!({"type":"volume","target":"/data","volume":{}}),
            ),
            ("ab", json!({"type":"volume","target":"ab"})),
            ("/a", json!({"type":"volume","target":"/a"})),
            (
                "/a:/b//c/../d:rw,rslave,Z",
                json!({"type":"bind","source":"/a","target":"/b/d",
                       "bind":{"selinux":"Z","propagation":"rslave","create_host_path":true}}),
            ),
            (
                "~/x:/x",
                json!({"type":"bind","source":"~/x","target":"/x","bind":{"create_host_path":true}}),
            ),
            (
                "../up:/up:ro",
                json!({"type":"bind","source":"../up","target":"/up","read_only":true,
                       "bind":{"create_host_path":true}}),
            ),
            (
                "c:/foo:/bar",
                json!({"type":"bind","source":"c:/foo","target":"/bar","bind":{"create_host_path":true}}),
            ),
            (
                r"C:\foo:/bar",
                json!({"type":"bind","source":r"C:\foo","target":"/bar","bind":{"create_host_path":true}}),
            ),
            (
                r"\\server\share:/mnt",
                json!({"type":"bind","source":r"\\server\share","target":"/mnt","bind":{"create_host_path":true}}),
            ),
            (
                "./b:/nc:nocopy",
                json!({"type":"bind","source":"./b","target":"/nc",
                       "bind":{"create_host_path":true},"volume":{"nocopy":true}}),
            ),
            (
                "data:/data:z",
                json!({"type":"volume","source":"data","target":"/data",
                       "bind":{"selinux":"z"},"volume":{}}),
            ),
            (
                "data:/data:ro,rw",
                json!({"type":"volume","source":"data","target":"/data","volume":{}}),
            ),
            (
                "data:/data:unknown,ro",
                json!({"type":"volume","source":"data","target":"/data","read_only":true,"volume":{}}),
            ),
            (
                "a::b",
                json!({"type":"bind","source":"a:","target":"b","bind":{"create_host_path":true}}),
            ),
            ("é:/b", json!({"type":"volume","target":"é:/b","volume":{}})),
            (
                ".:/x",
                json!({"type":"bind","source":".","target":"/x","bind":{"create_host_path":true}}),
            ),
            (
                "~:/h",
                json!({"type":"bind","source":"~","target":"/h","bind":{"create_host_path":true}}),
            ),
            (
                "./a:/b:nocopy,ro,rshared",
                json!({"type":"bind","source":"./a","target":"/b","read_only":true,
                       "bind":{"propagation":"rshared","create_host_path":true},"volume":{"nocopy":true}}),
            ),
            (
                "./a:rel",
                json!({"type":"bind","source":"./a","target":"rel","bind":{"create_host_path":true}}),
            ),
            ("a:b", json!({"type":"volume","target":"a:b","volume":{}})),
            (
                "${SRC:-./x}:/x",
                json!({"type":"volume","source":"${SRC:-./x}","target":"/x","volume":{}}),
            ),
            (
                "./x:/data/",
                json!({"type":"bind","source":"./x","target":"/data","bind":{"create_host_path":true}}),
            ),
            (
                "vol:rel/../t",
                json!({"type":"volume","source":"vol","target":"t","volume":{}}),
            ),
        ];
        for (spec, want) in rows {
            let got = parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(&got, want, "{spec}");
        }
    }

    #[test]
    fn malformed_volume_specs_are_rejected() {
        for spec in [
            "",
            "::b",
            ":/data",
            "./a:/b:ro:x",
            "./a:/b:ro:",
            "data:/d::",
        ] {
            assert!(parse(spec).is_err(), "{spec:?} should be rejected");
        }
    }
}
