//! 48 CLI tests, each spawning the binary once. MEMCRATE_MIB and
//! MEMCRATE_MILLIS size each spawn.
use std::process::Command;

fn spawn() {
    let mib = std::env::var("MEMCRATE_MIB").unwrap_or_else(|_| "24".into());
    let millis = std::env::var("MEMCRATE_MILLIS").unwrap_or_else(|_| "500".into());
    let out = Command::new(env!("CARGO_BIN_EXE_memcrate"))
        .args([&mib, &millis])
        .output()
        .expect("spawning memcrate");
    assert!(out.status.success(), "memcrate failed: {:?}", out.status);
}

macro_rules! cli_tests {
    ($($name:ident),*) => { $( #[test] fn $name() { spawn(); } )* };
}

cli_tests!(
    t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, t13, t14, t15, t16,
    t17, t18, t19, t20, t21, t22, t23, t24, t25, t26, t27, t28, t29, t30, t31, t32,
    t33, t34, t35, t36, t37, t38, t39, t40, t41, t42, t43, t44, t45, t46, t47, t48
);
