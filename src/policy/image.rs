//! Splits an image reference into name, tag and digest, and says whether it is pinned.

/// The parts of an image reference (`[registry[:port]/]path[:tag][@digest]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest (`localhost:5000/app`).
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Splits a reference; a colon before the last `/` belongs to a registry port, not a tag.
    pub fn parse(reference: &'a str) -> Self {
        let reference = reference.trim();
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        Self { name, tag, digest }
    }
}

/// Whether a reference names one image for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    Pinned,
    /// Why it floats: `no tag`, `tag latest`, `empty reference`.
    Floating(&'static str),
}

/// Pinned when the reference has a digest (`@sha256:…`) or a tag other than `latest`.
pub fn classify(reference: &str) -> Pinning {
    let r = ImageRef::parse(reference);
    if r.digest
        .is_some_and(|d| d.contains(':') && !d.ends_with(':'))
    {
        return Pinning::Pinned;
    }
    if r.name.is_empty() && r.tag.is_none() {
        return Pinning::Floating("empty reference");
    }
    match r.tag {
        None | Some("") => Pinning::Floating("no tag, which means latest"),
        Some("latest") => Pinning::Floating("tag latest"),
        Some(_) => Pinning::Pinned,
    }
}
