//! systemd unit names and the parts of a unit file that enablement needs
//! (`Alias=` in `[Install]`).

/// The unit types systemd knows, by suffix.
pub const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "timer",
    "path",
    "mount",
    "automount",
    "swap",
    "slice",
    "scope",
    "device",
];

/// systemd refuses unit names longer than this.
const MAX_UNIT_NAME_BYTES: usize = 255;

/// Errors of unit names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitNameError {
    #[error("invalid unit name {name:?}: {why}")]
    Invalid { name: String, why: &'static str },
}

/// A valid unit name, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitName {
    /// The whole name (`getty@tty1.service`).
    pub name: String,
    /// The part before `@`, or the whole stem (`getty`).
    pub prefix: String,
    /// The instance of a template instance (`tty1`); `Some("")` for the
    /// template itself (`getty@.service`), `None` for a plain unit.
    pub instance: Option<String>,
    /// The unit type (`service`).
    pub suffix: String,
}

impl UnitName {
    /// The template that backs an instance (`getty@.service`).
    pub fn template(&self) -> Option<String> {
        match &self.instance {
            Some(instance) if !instance.is_empty() => {
                Some(format!("{}@.{}", self.prefix, self.suffix))
            }
            _ => None,
        }
    }
}

/// Checks a unit name against systemd's rules: letters, digits and
/// `:-_.\@`, a known type suffix, at most one `@`, and nothing that could
/// name a path (`/`, `..`).
pub fn parse_unit_name(name: &str) -> Result<UnitName, UnitNameError> {
    let invalid = |why| UnitNameError::Invalid {
        name: name.to_string(),
        why,
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name.len() > MAX_UNIT_NAME_BYTES {
        return Err(invalid("longer than 255 bytes"));
    }
    if name.contains('/') {
        return Err(invalid("contains '/'"));
    }
    if name.contains("..") {
        return Err(invalid("contains '..'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    {
        return Err(invalid("only letters, digits and :-_.\\@ are allowed"));
    }
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Err(invalid("has no type suffix such as .service"));
    };
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(invalid("unknown unit type suffix"));
    }
    if stem.is_empty() {
        return Err(invalid("has no name before the suffix"));
    }
    let (prefix, instance) = match stem.split_once('@') {
        None => (stem, None),
        Some((prefix, instance)) => {
            if instance.contains('@') {
                return Err(invalid("more than one '@'"));
            }
            (prefix, Some(instance.to_string()))
        }
    };
    if prefix.is_empty() {
        return Err(invalid("nothing before '@'"));
    }
    Ok(UnitName {
        name: name.to_string(),
        prefix: prefix.to_string(),
        instance,
        suffix: suffix.to_string(),
    })
}

/// The names listed by `Alias=` in the `[Install]` section, in order. An
/// empty `Alias=` clears the list, as systemd does; continuation lines
/// (ending in `\`) are joined; comments start with `#` or `;`.
pub fn install_aliases(text: &str) -> Vec<String> {
    let mut aliases = Vec::new();
    let mut in_install = false;
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if logical.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            logical.push_str(continued);
            logical.push(' ');
            continue;
        }
        logical.push_str(line);
        let full = std::mem::take(&mut logical);
        let full = full.trim();
        if full.starts_with('[') {
            in_install = full == "[Install]";
            continue;
        }
        if !in_install {
            continue;
        }
        let Some((key, value)) = full.split_once('=') else {
            continue;
        };
        if key.trim() != "Alias" {
            continue;
        }
        let value = value.trim();
        if value.is_empty() {
            aliases.clear();
        } else {
            aliases.extend(value.split_whitespace().map(str::to_string));
        }
    }
    aliases
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_names_are_split() {
        let n = parse_unit_name("getty@tty1.service").unwrap();
        assert_eq!(n.prefix, "getty");
        assert_eq!(n.instance.as_deref(), Some("tty1"));
        assert_eq!(n.template().as_deref(), Some("getty@.service"));
        let t = parse_unit_name("getty@.service").unwrap();
        assert_eq!(t.instance.as_deref(), Some(""));
        assert_eq!(t.template(), None);
        let s = parse_unit_name("telnet.socket").unwrap();
        assert_eq!((s.prefix.as_str(), s.suffix.as_str()), ("telnet", "socket"));
        assert!(parse_unit_name("dev-disk-by\\x2duuid-1.device").is_ok());
        assert!(parse_unit_name("systemd-fsck@dev-sda1.service").is_ok());
    }

    #[test]
    fn path_like_and_odd_names_are_refused() {
        for bad in [
            "",
            "ssh",
            "../ssh.service",
            "a/b.service",
            "ssh..service",
            "ssh.exe",
            ".service",
            "@x.service",
            "a@b@c.service",
            "ssh service.service",
            "ssh.service\n",
            "sshé.service",
        ] {
            assert!(parse_unit_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_unit_name(&format!("{}.service", "a".repeat(250))).is_err());
    }

    #[test]
    fn aliases_come_from_install_only() {
        let text = "\
[Unit]
Description=OpenBSD Secure Shell server
Alias=not-this.service

[Service]
ExecStart=/usr/sbin/sshd -D

[Install]
WantedBy=multi-user.target
# Alias=commented.service
Alias=sshd.service \\
  ssh2.service
";
        assert_eq!(install_aliases(text), vec!["sshd.service", "ssh2.service"]);
        assert_eq!(
            install_aliases("[Install]\nAlias=a.service\nAlias=\nAlias=b.service\n"),
            vec!["b.service"]
        );
        assert!(install_aliases("[Service]\nAlias=x.service\n").is_empty());
    }

    proptest! {
        #[test]
        fn name_parser_never_panics(name in ".{0,300}") {
            let _ = parse_unit_name(&name);
        }

        #[test]
        fn alias_parser_never_panics(text in "(\\[Install\\]|Alias=[a-z@. ]{0,20}\\\\?|[#;].{0,10}|.{0,40})(\n(\\[Install\\]|Alias=[a-z@. ]{0,20}\\\\?|.{0,40})){0,10}") {
            let _ = install_aliases(&text);
        }
    }
}
