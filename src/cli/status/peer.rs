//! Who holds the API address `spindle status` talks to: the uid of the socket that accepted its connection (`/proc/net/tcp`, `/proc/net/tcp6`), checked before a byte, and so before the token, is sent.
//!
//! Any local user can listen on a free loopback port and answer like spindle. The kernel records
//! who created each socket; a connection's server end carries the uid of the listening socket
//! that accepted it. `spindle status` connects, finds that server end in this network
//! namespace's tables, and goes on only when its uid is spindle's: the owner of the state dir,
//! or (no state dir here) root or the caller.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long connecting to one address of the API may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The kernel's tables of TCP sockets of this network namespace.
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];
/// How often the server end is looked for before a local address counts as unknown.
const LOOKUPS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "port {port} of {ip} is held by uid {holder}, which is not spindle's ({expected}): it is not spindle's API, so `spindle status` sent it nothing; \
         find what listens there (`ss -ltnp 'sport = :{port}'`), or pass --api with the address of this project's `spindle run --listen`"
    )]
    ForeignHolder {
        ip: IpAddr,
        port: u16,
        holder: u32,
        expected: String,
    },
    #[error(
        "something answers at {addr}, but no socket of this network namespace accepted the connection (a forwarded port or another namespace), \
         so `spindle status` cannot tell whether it is spindle's and sent it nothing; run `spindle status` where `spindle run` runs, \
         or pass --api with the address `spindle run --listen` binds"
    )]
    Unknown { addr: SocketAddr },
    #[error("cannot read {path} to tell who holds the API address")]
    Table {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the addresses of the connection to {addr}")]
    Socket {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The uids that may hold spindle's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// The owner of the state dir (spindle runs as the user that owns it).
    StateDirOwner { uid: u32, dir: PathBuf },
    /// No state dir here: root, or the caller's effective uid.
    RootOrCaller { euid: u32, dir: PathBuf },
}

impl Expected {
    pub fn for_state_dir(dir: &Path) -> Self {
        match std::fs::metadata(dir) {
            Ok(m) => Expected::StateDirOwner {
                uid: m.uid(),
                dir: dir.to_path_buf(),
            },
            Err(_) => Expected::RootOrCaller {
                euid: spindle::statedir::euid(),
                dir: dir.to_path_buf(),
            },
        }
    }

    fn allows(&self, uid: u32) -> bool {
        match self {
            Expected::StateDirOwner { uid: owner, .. } => uid == *owner,
            Expected::RootOrCaller { euid, .. } => uid == 0 || uid == *euid,
        }
    }

    fn describe(&self) -> String {
        match self {
            Expected::StateDirOwner { uid, dir } => {
                format!(
                    "spindle runs as uid {uid}, the owner of state dir {}",
                    dir.display()
                )
            }
            Expected::RootOrCaller { euid, dir } => format!(
                "state dir {} does not exist here, so spindle runs as root or as uid {euid}",
                dir.display()
            ),
        }
    }
}

/// What [`connect`] found at the API address.
#[derive(Debug)]
pub enum Reach {
    /// Connected to a socket spindle's uid holds (or to another host); nothing sent yet.
    Checked(TcpStream),
    /// Nothing answered; the reason, for the "computed offline" header.
    Nothing(String),
}

/// Connects to `addr` and checks who accepted, before anything is sent.
pub fn connect(addr: &str, expected: &Expected) -> Result<Reach, PeerError> {
    let addrs: Vec<SocketAddr> = match addr.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return Ok(Reach::Nothing(format!("no spindle API at {addr}: {e}"))),
    };
    let mut last = None;
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, CONNECT_TIMEOUT) {
            Ok(stream) => {
                check(&stream, sa, expected)?;
                return Ok(Reach::Checked(stream));
            }
            Err(e) => last = Some(e),
        }
    }
    let why = last.map_or("no address".to_string(), |e| e.to_string());
    Ok(Reach::Nothing(format!(
        "no spindle API answered at {addr}: {why}"
    )))
}

/// `Ok` when the server end of `stream` (connected to `server`) is held by an expected uid, or is
/// on another host.
fn check(stream: &TcpStream, server: SocketAddr, expected: &Expected) -> Result<(), PeerError> {
    let client = stream.local_addr().map_err(|source| PeerError::Socket {
        addr: server,
        source,
    })?;
    decide(server, expected, || server_end_uid(server, client))
}

/// The decision of [`check`], with the look-up of the server end's uid given.
fn decide(
    server: SocketAddr,
    expected: &Expected,
    mut lookup: impl FnMut() -> Result<Option<u32>, PeerError>,
) -> Result<(), PeerError> {
    let ip = server.ip().to_canonical();
    let local = ip.is_loopback() || ip.is_unspecified();
    for attempt in 0..LOOKUPS {
        if let Some(holder) = lookup()? {
            if expected.allows(holder) {
                return Ok(());
            }
            return Err(PeerError::ForeignHolder {
                ip,
                port: server.port(),
                holder,
                expected: expected.describe(),
            });
        }
        if !local {
            // Another host's address (or this host's seen through a forward): nothing to check here.
            return Ok(());
        }
        if attempt + 1 < LOOKUPS {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(PeerError::Unknown { addr: server })
}

/// The uid of the socket whose local end is `server` and remote end `client`, in this namespace.
fn server_end_uid(server: SocketAddr, client: SocketAddr) -> Result<Option<u32>, PeerError> {
    let (server, client) = (endpoint(server), endpoint(client));
    for path in TABLES {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            // No IPv6 in this kernel: no tcp6 table.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(PeerError::Table {
                    path: path.into(),
                    source,
                });
            }
        };
        if let Some(e) = parse_table(&text)
            .into_iter()
            .find(|e| e.local == server && e.remote == client)
        {
            return Ok(Some(e.uid));
        }
    }
    Ok(None)
}

fn endpoint(a: SocketAddr) -> (IpAddr, u16) {
    (a.ip().to_canonical(), a.port())
}

/// One row of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    /// The TCP state (`0A` listening, `01` established, `03` not yet accepted).
    pub state: u8,
    pub uid: u32,
}

/// The rows of a table; the header and rows that do not parse are skipped.
pub(crate) fn parse_table(text: &str) -> Vec<Entry> {
    text.lines().skip(1).filter_map(parse_row).collect()
}

/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...`
fn parse_row(line: &str) -> Option<Entry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let state = f.get(3).filter(|s| is_hex(s, 2))?;
    Some(Entry {
        local: parse_endpoint(f.get(1)?)?,
        remote: parse_endpoint(f.get(2)?)?,
        state: u8::from_str_radix(state, 16).ok()?,
        uid: f.get(7)?.parse().ok()?,
    })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `0100007F:1F95` (IPv4) or 32 hex digits and a port (IPv6): the kernel prints each 32-bit word
/// of the address as it lies in memory, so its bytes are in this machine's order.
pub(crate) fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    if !is_hex(port, 4) {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = if is_hex(ip, 8) {
        IpAddr::V4(Ipv4Addr::from(word(0)?))
    } else if is_hex(ip, 32) {
        let mut b = [0u8; 16];
        for i in 0..4 {
            b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
        }
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        return None;
    };
    Some((ip.to_canonical(), port))
}

#[cfg(test)]
mod tests;
