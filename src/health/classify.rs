//! Gives a failed request an error class by walking its chain of sources.

use std::error::Error as StdError;

use super::ErrorClass;

/// The class of a reqwest error: timeouts, TLS verification, DNS and refused connections are told apart.
pub fn classify_error(err: &reqwest::Error) -> ErrorClass {
    if err.is_timeout() {
        return ErrorClass::Timeout;
    }
    classify_chain(err).unwrap_or(ErrorClass::Other)
}

/// Walks the source chain of any error, the most specific cause winning.
pub fn classify_chain(err: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    let mut found = None;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(class) = one(e) {
            found = Some(class);
        }
        cur = e.source();
    }
    found
}

fn one(e: &(dyn StdError + 'static)) -> Option<ErrorClass> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return match tls {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_) => Some(ErrorClass::TlsVerifyFailed),
            _ => None,
        };
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if let Some(inner) = io.get_ref()
            && let Some(class) = classify_chain(inner)
        {
            return Some(class);
        }
        if let Some(class) = classify_io(io) {
            return Some(class);
        }
    }
    if let Some(re) = e.downcast_ref::<reqwest::Error>()
        && re.is_timeout()
    {
        return Some(ErrorClass::Timeout);
    }
    // hyper-util's resolver error is private; it names itself "dns error", and getaddrinfo's text follows it.
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return Some(ErrorClass::DnsFailed);
    }
    if text.contains("invalid peer certificate") || text.contains("certificate verify") {
        return Some(ErrorClass::TlsVerifyFailed);
    }
    None
}

/// The class of a plain I/O error, where its kind says it.
pub fn classify_io(e: &std::io::Error) -> Option<ErrorClass> {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Some(ErrorClass::ConnectionRefused),
        std::io::ErrorKind::TimedOut => Some(ErrorClass::Timeout),
        _ => {
            let text = e.to_string().to_ascii_lowercase();
            if text.contains("failed to lookup address")
                || text.contains("name or service not known")
            {
                Some(ErrorClass::DnsFailed)
            } else {
                None
            }
        }
    }
}

/// The error and its sources joined by `: `, with repeated messages dropped.
pub fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}
