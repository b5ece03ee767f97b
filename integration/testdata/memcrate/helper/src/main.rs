//! helper MIB MILLIS: hold MIB mebibytes, every page touched, for MILLIS
//! milliseconds, then exit 0 (memcrate's own binary, as a second package).
use std::{env, thread, time::Duration};

fn main() {
    let args: Vec<String> = env::args().collect();
    let mib: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(16);
    let millis: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(500);
    let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for _ in 0..mib {
        let mut b = vec![0u8; 1 << 20];
        for i in (0..b.len()).step_by(4096) {
            b[i] = 1;
        }
        bufs.push(b);
    }
    thread::sleep(Duration::from_millis(millis));
    println!("held {} MiB", bufs.len());
}
