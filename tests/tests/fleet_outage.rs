//! The collector outage: with the collector stopped, three agents see
//! hundreds of drift events (a watched file flipped back and forth), one of
//! them is `kill -9`ed and restarted in the middle; when the collector comes
//! back on the same database, every event each agent logged arrives, once,
//! and in order.

mod fleet_support;

use std::time::Duration;

use fleet_support::{Agent, Collector, Pki, hardenctl_json, wait_for};
use hardend_collector::store::Store;
use hardend_tests::{is_root, require};

const AGENTS: [&str; 3] = ["app-1", "app-2", "app-3"];
/// Flips of each agent's banner while the collector is down.
const FLIPS: usize = 120;
/// Long enough for each flip to be its own debounced batch.
const FLIP_PAUSE: Duration = Duration::from_millis(130);

fn host_last_seq(hosts: &serde_json::Value, name: &str) -> Option<u64> {
    hosts.as_array()?.iter().find(|h| h["host"] == name)?["last_seq"].as_u64()
}

#[test]
fn every_event_queued_during_an_outage_arrives_once_and_in_order() {
    if !require("root (the agents' sockets and state)", is_root()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path(), &AGENTS);
    let mut collector = Collector::start(dir.path(), &pki);
    let mut agents: Vec<Agent> = AGENTS
        .iter()
        .map(|name| Agent::start(name, &pki, &collector.url(), 0o640))
        .collect();
    wait_for("three connected hosts", Duration::from_secs(30), || {
        let hosts = hardenctl_json(&collector, &pki, &["hosts"]);
        let list = hosts.as_array()?;
        (list.len() == 3 && list.iter().all(|h| h["connected"] == true)).then_some(())
    });

    collector.stop();
    for i in 0..FLIPS {
        let present = i % 2 == 1;
        for agent in &agents {
            agent.set_banner(present);
        }
        std::thread::sleep(FLIP_PAUSE);
        if i == FLIPS / 2 {
            // A crash in the middle of the outage.
            agents[1].kill9();
            agents[1].restart();
        }
    }
    // The last flip restored the banner; let the agents settle.
    std::thread::sleep(Duration::from_millis(500));
    let logged: Vec<Vec<u64>> = agents.iter().map(Agent::logged_drift_seqs).collect();
    for (agent, seqs) in agents.iter().zip(&logged) {
        assert!(
            seqs.len() >= FLIPS / 2,
            "{} logged only {} drift events:\n{}",
            agent.name,
            seqs.len(),
            agent.log()
        );
    }

    collector.restart();
    let last: Vec<u64> = logged
        .iter()
        .map(|s| s.iter().copied().max().unwrap_or(0))
        .collect();
    wait_for(
        "every agent's events on the collector",
        Duration::from_secs(60),
        || {
            let hosts = hardenctl_json(&collector, &pki, &["hosts"]);
            AGENTS
                .iter()
                .zip(&last)
                .all(|(name, want)| host_last_seq(&hosts, name).is_some_and(|s| s >= *want))
                .then_some(())
        },
    );
    for agent in &mut agents {
        agent.stop();
    }
    collector.stop();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = runtime
        .block_on(Store::open(
            &format!("sqlite://{}", collector.db.display()),
            Default::default(),
        ))
        .expect("open the collector's database");
    let mut total = 0;
    for ((name, seqs), agent) in AGENTS.iter().zip(&logged).zip(&agents) {
        let history = runtime
            .block_on(store.drift_history(name, 0, 1_000_000))
            .expect("drift history");
        let stored: Vec<u64> = history.iter().map(|e| e.seq).collect();
        // Once each, in increasing order.
        assert!(
            stored.windows(2).all(|w| w[0] < w[1]),
            "{name}: not strictly increasing: {stored:?}"
        );
        // Every event the agent logged arrived. An event queued in the
        // instant before the kill may be stored without its log line.
        let missing: Vec<u64> = seqs
            .iter()
            .filter(|s| !stored.contains(s))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "{name}: lost {missing:?}\n{}",
            agent.log()
        );
        let extra: Vec<u64> = stored
            .iter()
            .filter(|s| !seqs.contains(s))
            .copied()
            .collect();
        let allowed = if *name == "app-2" { 2 } else { 0 };
        assert!(
            extra.len() <= allowed,
            "{name}: stored events the agent never logged: {extra:?}"
        );
        // In sequence order the banner rule alternates failing and passing.
        let banner: Vec<&str> = history
            .iter()
            .filter(|e| e.result.as_ref().is_some_and(|r| r.rule == "motd-banner"))
            .map(|e| {
                if e.result
                    .as_ref()
                    .is_some_and(|r| r.status == hardend_proto::Status::Fail as i32)
                {
                    "fail"
                } else {
                    "pass"
                }
            })
            .collect();
        // A kill between queueing an event and saving the state repeats
        // that one alert after the restart (never loses it).
        let repeats = banner.windows(2).filter(|w| w[0] == w[1]).count();
        assert!(
            repeats <= allowed.min(1),
            "{name}: the banner rule does not alternate: {banner:?}"
        );
        total += stored.len();
    }
    eprintln!("{total} drift events arrived after the outage");
    assert!(total >= 300, "hundreds of events: {total}");
}
