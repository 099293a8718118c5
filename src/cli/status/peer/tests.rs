//! Tests of the `/proc/net/tcp` reader and of who may hold spindle's API.

use super::*;
use proptest::prelude::*;

/// A real table (x86-64): a listener of uid 65534 on 127.0.0.1:37331, a client's end of uid 0,
/// and the server end, not yet accepted, carrying the listener's uid.
const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   1: 0100007F:91D3 00000000:0000 0A 00000000:00000001 00:00000000 00000000 65534        0 1622245 2 00000000713a3ef5 100 0 0 10 0
   2: 0100007F:B51E 0100007F:91D3 01 00000000:00000000 00:00000000 00000000     0        0 1622820 2 000000002b06b6b8 20 0 0 10 -1
   3: 0100007F:91D3 0100007F:B51E 01 00000000:00000000 00:00000000 00000000 65534        0 0 1 0000000099736bc2 20 0 0 10 -1
";

/// A dual-stack listener (`[::]:9477`) of uid 0 and the server end of an IPv4 client, v4-mapped.
const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2505 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2505 0000000000000000FFFF00000100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 00000000000000000000000001000000:2505 00000000000000000000000001000000:C351 03 00000000:00000000 00:00000000 00000000  1000        0 0 1 0 20 4 30 10 -1
";

fn v4(a: [u8; 4], port: u16) -> (IpAddr, u16) {
    (IpAddr::V4(Ipv4Addr::from(a)), port)
}

#[cfg(target_endian = "little")]
#[test]
fn rows_of_proc_net_tcp_parse_to_addresses_states_and_uids() {
    let rows = parse_table(TCP);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        Entry {
            local: v4([127, 0, 0, 1], 37331),
            remote: v4([0, 0, 0, 0], 0),
            state: 0x0A,
            uid: 65534
        }
    );
    assert_eq!(rows[2].local, v4([127, 0, 0, 1], 37331));
    assert_eq!(rows[2].remote, v4([127, 0, 0, 1], 46366));
    assert_eq!(rows[2].uid, 65534);
    let rows = parse_table(TCP6);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].local, (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 9477));
    // v4-mapped ends compare as the IPv4 addresses a client sees.
    assert_eq!(rows[1].local, v4([127, 0, 0, 1], 9477));
    assert_eq!(rows[1].remote, v4([127, 0, 0, 1], 50000));
    assert_eq!(rows[2].local, (IpAddr::V6(Ipv6Addr::LOCALHOST), 9477));
    assert_eq!((rows[2].state, rows[2].uid), (3, 1000));
}

#[test]
fn malformed_endpoints_and_rows_are_skipped_not_misread() {
    for bad in [
        "",
        ":",
        "0100007F",
        "0100007F:",
        "0100007F:1F9",
        "0100007F:1F955",
        "0100007G:1F95",
        "+100007F:1F95",
        "0100007F:+F95",
        "0100007F0:1F95",
        "00000000000000000000000001000000:zzzz",
        "0000000000000000000000000100000:2505",
        "ééééééééééééééééééééééééééééééé:2505",
    ] {
        assert_eq!(parse_endpoint(bad), None, "{bad:?}");
    }
    let table =
        "header\n   1: 0100007F:91D3 00000000:0000 0A 0:0 0:0 0 notanuid\n   2: 0100007F:91D3\n\n";
    assert!(parse_table(table).is_empty());
}

#[test]
fn the_state_dir_owner_alone_may_hold_the_api_and_without_a_state_dir_root_or_the_caller() {
    let owner = Expected::StateDirOwner {
        uid: 1000,
        dir: "/srv/state".into(),
    };
    let none = Expected::RootOrCaller {
        euid: 1000,
        dir: "/var/lib/spindle".into(),
    };
    for (expected, uid, allowed) in [
        (&owner, 1000, true),
        (&owner, 0, false),
        (&owner, 65534, false),
        (&none, 0, true),
        (&none, 1000, true),
        (&none, 65534, false),
    ] {
        assert_eq!(expected.allows(uid), allowed, "{expected:?} {uid}");
    }
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(
        Expected::for_state_dir(tmp.path()),
        Expected::StateDirOwner {
            uid: spindle::statedir::euid(),
            dir: tmp.path().into()
        }
    );
    assert!(matches!(
        Expected::for_state_dir(&tmp.path().join("missing")),
        Expected::RootOrCaller { .. }
    ));
}

#[test]
fn the_server_end_of_a_loopback_connection_is_found_with_the_listeners_uid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let stream = TcpStream::connect(server).unwrap();
    let client = stream.local_addr().unwrap();
    assert_eq!(
        server_end_uid(server, client).unwrap(),
        Some(spindle::statedir::euid())
    );
    let me = Expected::RootOrCaller {
        euid: spindle::statedir::euid(),
        dir: "/nonexistent".into(),
    };
    check(&stream, server, &me).unwrap();
    let other = Expected::StateDirOwner {
        uid: spindle::statedir::euid() + 1,
        dir: "/srv/state".into(),
    };
    let e = check(&stream, server, &other).unwrap_err().to_string();
    assert!(e.contains(&format!("port {}", server.port())), "{e}");
    assert!(e.contains("not spindle's"), "{e}");
    // Nothing listens there any more: nothing answered, nothing refused.
    drop((stream, listener));
    assert!(matches!(
        connect(&server.to_string(), &me),
        Ok(Reach::Nothing(_))
    ));
}

proptest! {
    #[test]
    fn any_text_parses_without_a_panic(text in "\\PC{0,400}") {
        let _ = parse_table(&text);
        for word in text.split_whitespace() {
            let _ = parse_endpoint(word);
        }
    }

    #[test]
    fn printed_ipv4_endpoints_parse_back(a: [u8; 4], port: u16) {
        let printed = format!("{:08X}:{port:04X}", u32::from_ne_bytes(a));
        prop_assert_eq!(parse_endpoint(&printed), Some(v4(a, port)));
    }
}

#[test]
fn a_loopback_port_whose_socket_is_not_in_this_namespace_is_refused_and_another_hosts_is_not_checked()
 {
    let expected = Expected::RootOrCaller {
        euid: 0,
        dir: "/var/lib/spindle".into(),
    };
    let loopback: SocketAddr = "127.0.0.1:9477".parse().unwrap();
    let mut lookups = 0;
    let e = decide(loopback, &expected, || {
        lookups += 1;
        Ok(None)
    })
    .unwrap_err();
    assert!(matches!(e, PeerError::Unknown { .. }), "{e}");
    assert_eq!(lookups, LOOKUPS, "looked up again before giving up");
    let e = e.to_string();
    assert!(e.contains("127.0.0.1:9477") && e.contains("--api"), "{e}");
    assert!(e.contains("sent it nothing"), "{e}");
    for addr in ["[::1]:9477", "0.0.0.0:9477"] {
        let addr: SocketAddr = addr.parse().unwrap();
        assert!(decide(addr, &expected, || Ok(None)).is_err(), "{addr}");
    }
    // Found late (the server end not yet in the table): accepted.
    let mut answers = vec![Ok(Some(0)), Ok(None)];
    decide(loopback, &expected, || answers.pop().unwrap()).unwrap();
    // Another host's address: no socket of this host to check.
    let remote: SocketAddr = "192.0.2.10:9477".parse().unwrap();
    decide(remote, &expected, || Ok(None)).unwrap();
    // …but a local interface's address that this host holds is checked like loopback.
    let e = decide(remote, &expected, || Ok(Some(65534))).unwrap_err();
    assert!(
        matches!(e, PeerError::ForeignHolder { holder: 65534, .. }),
        "{e}"
    );
}
