//! Reading variables: where they come from, the error that names a bad one, and keeping
//! passwords in URLs out of every message.

use std::fmt::Display;
use std::str::FromStr;

/// A variable whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid environment variable {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// Looks a variable up by name.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where variables come from: the process environment, or a fixed list in tests. It
/// remembers which names were asked for, so `--check-config` can say what a service reads.
pub struct Vars {
    lookup: Lookup,
    read: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Vars {
    /// The process environment; a value that is not UTF-8 reads as the replacement text
    /// and then fails to parse, naming its variable.
    pub fn from_env() -> Self {
        Self {
            lookup: Box::new(|name| {
                std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
            }),
            read: Default::default(),
        }
    }

    /// A fixed set of variables, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |name| map.get(name).cloned()),
            read: Default::default(),
        }
    }

    /// Every name asked for so far, sorted.
    pub fn names_read(&self) -> Vec<String> {
        let read = self
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        read.iter().cloned().collect()
    }

    /// Reads `name`, or returns `default` when it is unset or empty.
    pub fn get_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// Reads `name` when it is set and not empty.
    pub fn get<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_owned());
        match (self.lookup)(name) {
            Some(value) if !value.trim().is_empty() => value
                .trim()
                .parse()
                .map(Some)
                .map_err(|error: T::Err| invalid(name, &value, error)),
            _ => Ok(None),
        }
    }
}

/// Reads a number that must be at least 1.
pub fn positive<T>(vars: &Vars, name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + From<u8> + Display + Copy,
    T::Err: Display,
{
    let value = vars.get_or(name, default)?;
    if value < T::from(1) {
        return Err(invalid(name, &value.to_string(), "must be at least 1"));
    }
    Ok(value)
}

/// Builds the error for a variable that parsed but is out of range. Passwords in URLs
/// (in the value or in a parser's message quoting it) are replaced by `***`.
pub fn invalid(name: &str, value: &str, reason: impl Display) -> ConfigError {
    let mut reason = redact_urls(&reason.to_string());
    for password in passwords(value) {
        reason = reason.replace(&password, "***");
    }
    ConfigError {
        name: name.to_owned(),
        value: redact_urls(value),
        reason,
    }
}

/// `text` with the password of every `scheme://user:password@host` in it replaced by
/// `***`, so a URL can be logged or shown in an error.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | ',' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***@{host}")),
                None => out.push_str(authority),
            },
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The passwords of the URLs in `text`, as written (and percent-decoded, as a parser
/// may quote either).
fn passwords(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for part in text.split("://").skip(1) {
        let end = part
            .find(|c: char| matches!(c, '/' | '?' | '#' | ',') || c.is_whitespace())
            .unwrap_or(part.len());
        if let Some((userinfo, _)) = part[..end].rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
            && !password.is_empty()
        {
            found.push(password.to_owned());
            if let Ok(decoded) = percent_decode(password)
                && decoded != password
            {
                found.push(decoded);
            }
        }
    }
    found
}

fn percent_decode(text: &str) -> Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}
