//! `hardend-collector`: runs the fleet collector, or manages its PKI.

fn main() {
    eprintln!("hardend-collector: not built yet");
    std::process::exit(2);
}
