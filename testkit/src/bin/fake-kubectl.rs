//! `fake-kubectl`: a stand-in for kubectl in rhizome's tests (point
//! `RHIZOME_KUBECTL` at it). See `rhizome_testkit::fake_kubectl` for the
//! commands it understands and the `FAKE_KUBECTL_*` variables that drive it.

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rhizome_testkit::fake_kubectl::main(&args))
}
