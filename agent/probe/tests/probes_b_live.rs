//! The service, listening and firewall probes against the running system
//! (read only: nothing on the host is changed).

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use hardend_facts::Live;
use hardend_facts::listening::Proto;
use hardend_probe::{RootFs, firewall, listening, service};

#[test]
fn listening_probe_sees_our_own_sockets_with_our_pid() {
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let udp_port = udp.local_addr().unwrap().port();

    let fact = listening::probe(&RootFs::new("/")).unwrap();
    let Live::Value(fact) = fact else {
        panic!("the running system is live: {fact:?}");
    };
    let me = std::process::id();
    for (proto, port) in [(Proto::Tcp, tcp_port), (Proto::Udp, udp_port)] {
        let socket = fact
            .sockets
            .iter()
            .find(|s| s.proto == proto && s.port == port)
            .unwrap_or_else(|| panic!("{proto:?} port {port} not found in {:?}", fact.sockets));
        assert!(socket.is_loopback());
        let (pid, comm) = socket.process.clone().expect("our own fds are readable");
        assert_eq!(pid, me);
        assert!(!comm.is_empty());
    }

    // A closed listener disappears from the next probe.
    drop(tcp);
    let Live::Value(after) = listening::probe(&RootFs::new("/")).unwrap() else {
        panic!("not live");
    };
    assert!(
        !after
            .sockets
            .iter()
            .any(|s| s.proto == Proto::Tcp && s.port == tcp_port)
    );
}

#[test]
fn service_activity_on_the_running_system_depends_on_systemd() {
    let fs = RootFs::new("/");
    // A unit that exists nowhere is inactive, with or without systemd.
    let missing = service::probe(&fs, "hardend-test-no-such-unit.service").unwrap();
    assert_eq!(missing.unit_file, None);
    assert!(!missing.enabled());
    assert_eq!(missing.active, Live::Value(Ok(false)));

    if !std::path::Path::new("/run/systemd/system").is_dir() {
        // Without a running systemd, an existing unit's activity is an error.
        let dir = "/usr/lib/systemd/system";
        let Some(unit) = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .find(|n| n.ends_with(".service") && !n.contains('@'))
        }) else {
            return;
        };
        let fact = service::probe(&fs, &unit).unwrap();
        assert!(fact.unit_file.is_some(), "{fact:?}");
        match fact.active {
            Live::Value(Err(e)) => assert!(e.message.contains("systemd is not running"), "{e}"),
            other => panic!("{unit}: expected an error, got {other:?}"),
        }
    }
}

#[test]
fn firewall_probe_on_the_running_system_answers_or_explains() {
    match firewall::probe(&RootFs::new("/")) {
        Ok(Live::Value(fact)) => assert!(!fact.sources.is_empty()),
        Ok(Live::NotApplicable(why)) => panic!("the running system is live: {why}"),
        // Without the tools or the privilege, the reason must be given.
        Err(e) => assert!(e.message.contains("cannot read the firewall"), "{e}"),
    }
}
