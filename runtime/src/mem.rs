//! Process memory figures from `/proc/self/status` (Linux), for benchmark reports.

/// Peak resident set size of this process in bytes (`VmHWM`), or `None` where `/proc` is absent.
pub fn peak_rss_bytes() -> Option<u64> {
    status_field("VmHWM:")
}

/// Current resident set size of this process in bytes (`VmRSS`), or `None` where `/proc` is
/// absent.
pub fn current_rss_bytes() -> Option<u64> {
    status_field("VmRSS:")
}

fn status_field(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_field(&text, key)
}

/// Finds a `Key:   1234 kB` line in a `/proc/<pid>/status` text and returns the value in bytes.
fn parse_status_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let mut parts = line[key.len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    let scale = match parts.next() {
        Some("kB") => 1024,
        Some("mB") | Some("MB") => 1024 * 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let text = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_status_field(text, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(parse_status_field(text, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(parse_status_field(text, "VmSwap:"), None);
        assert_eq!(parse_status_field("VmHWM: lots kB\n", "VmHWM:"), None);
    }

    #[test]
    fn reads_this_process() {
        if std::path::Path::new("/proc/self/status").exists() {
            // The high-water mark never decreases, so reading it second bounds the first read.
            let now = current_rss_bytes().expect("VmRSS");
            let peak = peak_rss_bytes().expect("VmHWM");
            assert!(peak > 0 && now > 0 && now <= peak, "peak {peak} now {now}");
        }
    }
}
