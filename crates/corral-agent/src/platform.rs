//! What the health ping says about the machine: OS, version, host name, address.
//!
//! All of it is best effort: a ping with a missing platform version is still a ping, so every
//! probe here returns `None` rather than failing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// The platform fields of `UpdateInstanceInformation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformInfo {
    /// `Linux`, `Windows` or `MacOS`, the values SSM knows.
    pub platform_type: &'static str,
    /// OS name (`/etc/os-release` NAME on Linux).
    pub platform_name: Option<String>,
    /// OS version (`/etc/os-release` VERSION_ID on Linux).
    pub platform_version: Option<String>,
    /// Host name.
    pub computer_name: Option<String>,
}

/// The platform type SSM expects for the OS this binary was built for.
pub fn platform_type() -> &'static str {
    if cfg!(windows) {
        "Windows"
    } else if cfg!(target_os = "macos") {
        "MacOS"
    } else {
        // SSM reports FreeBSD and the other Unixes as Linux too.
        "Linux"
    }
}

/// Probes the running machine.
pub fn detect() -> PlatformInfo {
    let (platform_name, platform_version) = os_name_and_version();
    PlatformInfo { platform_type: platform_type(), platform_name, platform_version, computer_name: host_name() }
}

/// NAME and VERSION_ID from the text of `/etc/os-release` (shell-style `KEY=value`, values
/// optionally quoted).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub fn parse_os_release(text: &str) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else { continue };
        let value = unquote(value.trim());
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "NAME" => name = Some(value),
            "VERSION_ID" => version = Some(value),
            _ => {}
        }
    }
    (name, version)
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn unquote(value: &str) -> String {
    let stripped = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    // os-release allows backslash escapes inside double quotes; only the common ones matter.
    stripped.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[cfg(target_os = "linux")]
fn os_name_and_version() -> (Option<String>, Option<String>) {
    // /usr/lib/os-release is the fallback the os-release spec names.
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(text) = std::fs::read_to_string(path) {
            let (name, version) = parse_os_release(&text);
            return (name.or_else(|| Some("Linux".into())), version.or_else(kernel_release));
        }
    }
    (Some("Linux".into()), kernel_release())
}

#[cfg(target_os = "linux")]
fn kernel_release() -> Option<String> {
    non_empty(std::fs::read_to_string("/proc/sys/kernel/osrelease").ok())
}

#[cfg(windows)]
fn os_name_and_version() -> (Option<String>, Option<String>) {
    // The registry's CurrentVersion key has the product name and build; `reg query` saves a
    // dependency on the Windows registry API for two strings.
    let query = |value: &str| -> Option<String> {
        let output = std::process::Command::new("reg")
            .args(["query", r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "/v", value])
            .output()
            .ok()?;
        parse_reg_query(&String::from_utf8_lossy(&output.stdout), value)
    };
    let name = query("ProductName").unwrap_or_else(|| "Microsoft Windows".into());
    let version =
        match (query("CurrentMajorVersionNumber"), query("CurrentMinorVersionNumber"), query("CurrentBuildNumber")) {
            (Some(major), Some(minor), Some(build)) => {
                Some(format!("{}.{}.{build}", hex_dword(&major), hex_dword(&minor)))
            }
            (_, _, Some(build)) => Some(build),
            _ => None,
        };
    (Some(name), version)
}

/// The value of `name` in `reg query` output (`    Name    REG_SZ    Value`).
#[cfg(any(windows, test))]
fn parse_reg_query(output: &str, name: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        if parts.next()? != name {
            return None;
        }
        let _kind = parts.next()?;
        non_empty(Some(parts.collect::<Vec<_>>().join(" ")))
    })
}

/// A `REG_DWORD` value as `reg` prints it (`0xa`) in decimal.
#[cfg(any(windows, test))]
fn hex_dword(text: &str) -> String {
    text.strip_prefix("0x")
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .map(|v| v.to_string())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(target_os = "macos")]
fn os_name_and_version() -> (Option<String>, Option<String>) {
    let version = std::process::Command::new("sw_vers")
        .arg("-productVersion")
        .output()
        .ok()
        .and_then(|o| non_empty(Some(String::from_utf8_lossy(&o.stdout).into_owned())));
    (Some("macOS".into()), version)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn os_name_and_version() -> (Option<String>, Option<String>) {
    (Some(std::env::consts::OS.to_string()), None)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The host name, from the kernel on Linux, `COMPUTERNAME` on Windows, else `hostname`.
pub fn host_name() -> Option<String> {
    #[cfg(target_os = "linux")]
    if let Some(name) = non_empty(std::fs::read_to_string("/proc/sys/kernel/hostname").ok()) {
        return Some(name);
    }
    #[cfg(windows)]
    if let Some(name) = non_empty(std::env::var("COMPUTERNAME").ok()) {
        return Some(name);
    }
    let output = std::process::Command::new("hostname").output().ok()?;
    non_empty(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
}

/// The machine's main non-loopback IPv4 address. Connecting a UDP socket sends nothing; it only
/// asks the routing table which local address would be used. The control plane's own address is
/// tried first (the address it sees us from, on a private network), then a documentation
/// address (RFC 5737) that follows the default route.
pub fn ip_address(control_plane_host: &str) -> Option<String> {
    let mut targets = Vec::new();
    if let Some(ip) = literal_ipv4(control_plane_host) {
        targets.push(SocketAddr::new(IpAddr::V4(ip), 443));
    }
    targets.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 443));
    targets.into_iter().find_map(|target| {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
        socket.connect(target).ok()?;
        match socket.local_addr().ok()?.ip() {
            IpAddr::V4(ip) if usable(ip) => Some(ip.to_string()),
            _ => None,
        }
    })
}

fn usable(ip: Ipv4Addr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified() && !ip.is_link_local()
}

/// The IPv4 literal in `host[:port]`, if it is one.
fn literal_ipv4(host_port: &str) -> Option<Ipv4Addr> {
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    host.parse::<Ipv4Addr>().ok().filter(|ip| usable(*ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_parsing() {
        let debian =
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(parse_os_release(debian), (Some("Debian GNU/Linux".into()), Some("12".into())));
        let unquoted = "NAME=Fedora Linux\nVERSION_ID=41\n";
        assert_eq!(parse_os_release(unquoted), (Some("Fedora Linux".into()), Some("41".into())));
        let single = "NAME='Alpine Linux'\n# comment\nVERSION_ID=3.20.3\n";
        assert_eq!(parse_os_release(single), (Some("Alpine Linux".into()), Some("3.20.3".into())));
        assert_eq!(parse_os_release("NAME=\"\"\nVERSION_ID=\n"), (None, None));
        assert_eq!(parse_os_release("garbage\n===\n"), (None, None));
        assert_eq!(parse_os_release("NAME=\"say \\\"hi\\\"\"\n").0, Some("say \"hi\"".into()));
    }

    #[test]
    fn reg_query_parsing() {
        let output = "\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r\n    ProductName    REG_SZ    Windows Server 2022 Datacenter\r\n\r\n";
        assert_eq!(parse_reg_query(output, "ProductName"), Some("Windows Server 2022 Datacenter".into()));
        assert_eq!(parse_reg_query(output, "CurrentBuildNumber"), None);
        assert_eq!(hex_dword("0xa"), "10");
        assert_eq!(hex_dword("weird"), "weird");
    }

    #[test]
    fn this_machine() {
        let info = detect();
        assert_eq!(info.platform_type, if cfg!(windows) { "Windows" } else { "Linux" });
        assert!(info.platform_name.is_some());
        assert!(info.computer_name.as_deref().is_some_and(|n| !n.is_empty()));
        // No network is needed for this; a machine without any route still gets `None`, not a panic.
        if let Some(ip) = ip_address("127.0.0.1:8443") {
            let ip: Ipv4Addr = ip.parse().expect("an IPv4 address");
            assert!(usable(ip));
        }
    }

    #[test]
    fn ipv4_literals() {
        assert_eq!(literal_ipv4("10.1.2.3:8443"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(literal_ipv4("10.1.2.3"), Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(literal_ipv4("127.0.0.1:8443"), None);
        assert_eq!(literal_ipv4("corral.example:443"), None);
        assert_eq!(literal_ipv4("[::1]:443"), None);
    }
}
