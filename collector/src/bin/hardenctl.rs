//! `hardenctl`: the operator's console for the fleet or for one agent.

fn main() {
    eprintln!("hardenctl: not built yet");
    std::process::exit(2);
}
