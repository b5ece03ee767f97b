//! 24 tests, each running the workspace's helper through `cargo run`, as CLI
//! tests that run an example or a sibling binary do: under many test
//! threads, the cargo processes queue on cargo's own locks (the package
//! cache, the build directory), holding their memory, while the helpers
//! that got through hold MEMCRATE_MIB each for MEMCRATE_MILLIS.
//!
//! Ignored by a plain `cargo test` (the other scenarios run that); the
//! real-kernel lock scenario runs `cargo test --test lock -- --ignored`.
use std::process::Command;

fn run_helper() {
    // cargo sets CARGO for the tests it runs: the same cargo, toolchain
    // and target directory.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mib = std::env::var("MEMCRATE_MIB").unwrap_or_else(|_| "24".into());
    let millis = std::env::var("MEMCRATE_MILLIS").unwrap_or_else(|_| "500".into());
    let out = Command::new(cargo)
        .args(["run", "-q", "--offline", "-p", "helper", "--", &mib, &millis])
        .output()
        .expect("spawning cargo run");
    assert!(
        out.status.success(),
        "cargo run -p helper failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

macro_rules! lock_tests {
    ($($name:ident),*) => { $(
        #[test]
        #[ignore = "run by the real-kernel lock scenario (--ignored)"]
        fn $name() { run_helper(); }
    )* };
}

lock_tests!(
    l01, l02, l03, l04, l05, l06, l07, l08, l09, l10, l11, l12,
    l13, l14, l15, l16, l17, l18, l19, l20, l21, l22, l23, l24
);
