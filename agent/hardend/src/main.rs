//! The `hardend` command: one-shot checks and policy validation.

fn main() {
    eprintln!("hardend: not built yet");
    std::process::exit(2);
}
