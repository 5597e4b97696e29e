//! The service, listening and firewall probes against the running system
//! (read only: nothing on the host is changed).

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};

use hardend_facts::Live;
use hardend_facts::listening::{Proto, Socket};
use hardend_probe::listening::SocketTables;
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
            .find(|s| s.proto == proto && s.port == port && s.address == Ipv4Addr::LOCALHOST)
            .unwrap_or_else(|| panic!("{proto:?} port {port} not found in {:?}", fact.sockets));
        assert!(socket.is_loopback());
        let (pid, comm) = socket.process.clone().expect("our own fds are readable");
        assert_eq!(pid, me);
        assert!(!comm.is_empty());
    }

    // A closed listener disappears from the next probe. It is told apart by
    // its inode: other tests in this process bind ephemeral ports too, and
    // one may get the same port number meanwhile.
    let closed_inode = fact
        .sockets
        .iter()
        .find(|s| s.proto == Proto::Tcp && s.port == tcp_port && s.address == Ipv4Addr::LOCALHOST)
        .map(|s| s.inode)
        .expect("found above");
    drop(tcp);
    // Another test of this process may be starting a program at this very
    // moment: the child then holds a copy of every descriptor until it
    // execs, and the listener lives on that long. So the probe is asked
    // again until the socket is gone, for two seconds at most.
    let gone = (0..200).any(|_| {
        let Live::Value(after) = listening::probe(&RootFs::new("/")).unwrap() else {
            panic!("not live");
        };
        let still = after
            .sockets
            .iter()
            .any(|s| s.proto == Proto::Tcp && s.port == tcp_port && s.inode == closed_inode);
        if still {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        !still
    });
    assert!(gone, "the closed listener is still listed after 2 s");
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

/// Reads the host's sockets through netlink and then through /proc/net,
/// until both give the same list (up to 50 tries), and returns that list.
/// Other programs, and other tests of this process, open and close sockets
/// meanwhile, so one try may see a socket come or go between the reads; a
/// difference between the two sources themselves shows on every try.
fn same_from_netlink_and_proc() -> Vec<Socket> {
    let fs = RootFs::new("/");
    let mut last = None;
    for _ in 0..50 {
        let netlink = listening::read_sockets(&fs, SocketTables::SockDiag)
            .expect("sock_diag netlink works on the test host");
        let proc = listening::read_sockets(&fs, SocketTables::ProcNet).expect("/proc/net");
        if netlink == proc {
            return netlink;
        }
        last = Some((netlink, proc));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let (netlink, proc) = last.expect("at least one try");
    panic!("netlink and /proc/net differ on every try:\n{netlink:#?}\n{proc:#?}");
}

#[test]
fn netlink_and_proc_net_give_the_same_sockets_on_the_host() {
    // Our own sockets of every kind make sure neither list is empty.
    let tcp4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let udp4 = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
        .ok()
        .zip(UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).ok());
    // A connected UDP socket and a TCP connection are not listening.
    let connected = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    connected.connect(udp4.local_addr().unwrap()).unwrap();
    let client = std::net::TcpStream::connect(tcp4.local_addr().unwrap()).unwrap();

    let mut ours = vec![
        (Proto::Tcp, tcp4.local_addr().unwrap().port()),
        (Proto::Udp, udp4.local_addr().unwrap().port()),
    ];
    if let Some((t6, u6)) = &v6 {
        ours.push((Proto::Tcp, t6.local_addr().unwrap().port()));
        ours.push((Proto::Udp, u6.local_addr().unwrap().port()));
    }
    let not_listening = [
        (Proto::Udp, connected.local_addr().unwrap().port()),
        (Proto::Tcp, client.local_addr().unwrap().port()),
    ];

    let netlink = same_from_netlink_and_proc();
    let me = std::process::id();
    for (proto, port) in ours {
        let socket = netlink
            .iter()
            .find(|s| s.proto == proto && s.port == port)
            .unwrap_or_else(|| panic!("{proto:?} port {port} missing: {netlink:#?}"));
        assert_eq!(socket.process.as_ref().map(|p| p.0), Some(me));
    }
    for (proto, port) in not_listening {
        assert!(
            !netlink.iter().any(|s| s.proto == proto && s.port == port),
            "{proto:?} port {port} is not listening"
        );
    }
    // The list is sorted, and the probe's fact is the netlink list.
    let mut sorted = netlink.clone();
    sorted.sort_by(|a, b| {
        (a.proto, a.address, a.port, a.inode).cmp(&(b.proto, b.address, b.port, b.inode))
    });
    assert_eq!(netlink, sorted);
}

/// `Probe::collect` reads the firewall, the sockets and the processes on
/// threads of their own on the running system, and in turn on an image;
/// either way every asked fact is stored.
#[test]
fn collect_stores_the_facts_read_on_threads() {
    use hardend_facts::FactKey;
    use std::collections::BTreeSet;

    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = tcp.local_addr().unwrap().port();
    let unit = "hardend-test-no-such-unit.service".to_string();
    let keys: BTreeSet<FactKey> = [
        FactKey::Firewall,
        FactKey::Listening,
        FactKey::Processes,
        FactKey::Service(unit.clone()),
    ]
    .into_iter()
    .collect();

    let facts = hardend_probe::Probe::new("/").collect(&keys);
    let Some(Ok(Live::Value(listening))) = &facts.listening else {
        panic!("live sockets: {:?}", facts.listening);
    };
    assert!(
        listening
            .sockets
            .iter()
            .any(|s| s.proto == Proto::Tcp && s.port == port),
        "our listener on {port} is missing"
    );
    assert!(
        matches!(&facts.firewall, Some(Ok(Live::Value(_))) | Some(Err(_))),
        "{:?}",
        facts.firewall
    );
    assert!(
        matches!(&facts.processes, Some(Ok(Live::Value(_)))),
        "{:?}",
        facts.processes
    );
    assert!(facts.services.contains_key(&unit));

    let image = tempfile::tempdir().unwrap();
    let offline = hardend_probe::Probe::new(image.path()).collect(&keys);
    assert!(matches!(
        offline.listening,
        Some(Ok(Live::NotApplicable(_)))
    ));
    assert!(matches!(offline.firewall, Some(Ok(Live::NotApplicable(_)))));
    assert!(offline.processes.is_some());
    assert!(offline.services.contains_key(&unit));
    drop(tcp);
}
