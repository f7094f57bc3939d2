//! Advertised listeners (Pulsar's `advertisedListeners`, `internalListenerName`): named sets of
//! addresses a broker is reachable at, e.g. one inside a private network and one outside it. A
//! client naming a listener in its lookup gets that listener's address; the internal listener
//! is the broker's own service URL (what other brokers and clients naming none are given).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One listener's addresses (Pulsar's `AdvertisedListener`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertisedListener {
    /// `pulsar://host:port`
    #[serde(
        rename = "brokerServiceUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub broker_url: Option<String>,
    /// `pulsar+ssl://host:port`
    #[serde(
        rename = "brokerServiceUrlTls",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub broker_url_tls: Option<String>,
}

/// A broker's listeners by name.
pub type AdvertisedListeners = BTreeMap<String, AdvertisedListener>;

/// The listeners of a broker's configuration, and which of them is its internal one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerSettings {
    pub listeners: AdvertisedListeners,
    /// Names an entry of `listeners` (`None` only when there are no listeners).
    pub internal: Option<String>,
}

impl ListenerSettings {
    /// The internal listener, if listeners are configured.
    pub fn internal(&self) -> Option<&AdvertisedListener> {
        self.listeners.get(self.internal.as_deref()?)
    }

    /// The host of the internal listener (the broker's advertised address when listeners are
    /// configured).
    pub fn internal_host(&self) -> Option<String> {
        let l = self.internal()?;
        let url = l.broker_url.as_deref().or(l.broker_url_tls.as_deref())?;
        url::Url::parse(url).ok()?.host_str().map(str::to_string)
    }
}

/// Why an `advertisedListeners` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenerError {
    #[error("{entry:?} has no listener name (expected name:pulsar://host:port)")]
    NoName { entry: String },
    #[error("{value:?} is not a pulsar:// or pulsar+ssl:// address with a host and a port")]
    BadAddress { value: String },
    #[error("listener {name} has more than one {scheme}:// address")]
    Redundant { name: String, scheme: String },
    #[error("{address} is given to two listeners, {first} and {second}")]
    SharedAddress {
        address: String,
        first: String,
        second: String,
    },
    #[error("listener {name} has no {scheme}:// address, and the broker's {port} is on")]
    Missing {
        name: String,
        scheme: String,
        port: &'static str,
    },
    #[error("listener {name} has a {scheme}:// address, but the broker's {port} is off")]
    Unused {
        name: String,
        scheme: String,
        port: &'static str,
    },
    #[error("internalListenerName {name:?} is not one of the advertisedListeners")]
    UnknownInternal { name: String },
}

/// Parses `advertisedListeners` (`name:url,name:url,…`; each name with at most one `pulsar://`
/// and one `pulsar+ssl://` address, one each for the ports that are on, no address shared by
/// two names) and picks the internal listener (`internal_name`, else the first listed).
pub fn parse_listeners(
    value: &str,
    internal_name: Option<&str>,
    plain_port_on: bool,
    tls_port_on: bool,
) -> Result<ListenerSettings, ListenerError> {
    let mut listeners = AdvertisedListeners::new();
    let mut first_name: Option<String> = None;
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, address) = match entry.split_once(':') {
            Some((n, a)) if !n.trim().is_empty() => (n.trim().to_string(), a.trim()),
            _ => {
                return Err(ListenerError::NoName {
                    entry: entry.to_string(),
                });
            }
        };
        let bad = || ListenerError::BadAddress {
            value: address.to_string(),
        };
        let url = url::Url::parse(address).map_err(|_| bad())?;
        let (Some(host), Some(port)) = (url.host_str(), url.port()) else {
            return Err(bad());
        };
        let host_port = format!("{host}:{port}");
        if let Some(first) = owners.get(&host_port)
            && *first != name
        {
            return Err(ListenerError::SharedAddress {
                address: host_port,
                first: first.clone(),
                second: name,
            });
        }
        owners.insert(host_port, name.clone());
        first_name.get_or_insert_with(|| name.clone());
        let listener = listeners.entry(name.clone()).or_default();
        let slot = match url.scheme() {
            "pulsar" => &mut listener.broker_url,
            "pulsar+ssl" => &mut listener.broker_url_tls,
            _ => return Err(bad()),
        };
        if slot.is_some() {
            return Err(ListenerError::Redundant {
                name,
                scheme: url.scheme().to_string(),
            });
        }
        *slot = Some(format!("{}://{host}:{port}", url.scheme()));
    }
    for (name, l) in &listeners {
        let check = |url: &Option<String>, scheme: &str, port: &'static str, on: bool| match (
            url.is_some(),
            on,
        ) {
            (false, true) => Err(ListenerError::Missing {
                name: name.clone(),
                scheme: scheme.into(),
                port,
            }),
            (true, false) => Err(ListenerError::Unused {
                name: name.clone(),
                scheme: scheme.into(),
                port,
            }),
            _ => Ok(()),
        };
        check(&l.broker_url, "pulsar", "brokerServicePort", plain_port_on)?;
        check(
            &l.broker_url_tls,
            "pulsar+ssl",
            "brokerServicePortTls",
            tls_port_on,
        )?;
    }
    let internal = match (internal_name.filter(|n| !n.is_empty()), first_name) {
        (Some(n), _) if listeners.contains_key(n) => Some(n.to_string()),
        (Some(n), _) if !listeners.is_empty() => {
            return Err(ListenerError::UnknownInternal {
                name: n.to_string(),
            });
        }
        (_, first) => first,
    };
    Ok(ListenerSettings {
        listeners,
        internal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_the_internal_listener() {
        let s = parse_listeners(
            " internal:pulsar://10.0.0.5:6650, internal:pulsar+ssl://10.0.0.5:6651,\
             external:pulsar://broker.example.com:16650,external:pulsar+ssl://broker.example.com:16651",
            None,
            true,
            true,
        )
        .unwrap();
        assert_eq!(s.internal.as_deref(), Some("internal"));
        let e = &s.listeners["external"];
        assert_eq!(
            e.broker_url.as_deref(),
            Some("pulsar://broker.example.com:16650")
        );
        assert_eq!(
            e.broker_url_tls.as_deref(),
            Some("pulsar+ssl://broker.example.com:16651")
        );
        let s = parse_listeners("a:pulsar://h:1,b:pulsar://h:2", Some("b"), true, false).unwrap();
        assert_eq!(
            s.internal().unwrap().broker_url.as_deref(),
            Some("pulsar://h:2")
        );
        assert_eq!(
            parse_listeners("", None, true, false).unwrap(),
            ListenerSettings::default()
        );
    }

    #[test]
    fn what_pulsar_refuses_is_refused_with_the_reason() {
        let err = |v: &str, internal: Option<&str>, tls: bool| {
            parse_listeners(v, internal, true, tls).unwrap_err()
        };
        assert!(matches!(
            err(":pulsar://h:1", None, false),
            ListenerError::NoName { .. }
        ));
        assert!(matches!(
            err("a:http://h:1", None, false),
            ListenerError::BadAddress { .. }
        ));
        assert!(matches!(
            err("a:pulsar://h", None, false),
            ListenerError::BadAddress { .. }
        ));
        assert!(matches!(
            err("a:pulsar://h:1,a:pulsar://g:1", None, false),
            ListenerError::Redundant { .. }
        ));
        assert!(matches!(
            err("a:pulsar://h:1,b:pulsar://h:1", None, false),
            ListenerError::SharedAddress { .. }
        ));
        assert!(matches!(
            err("a:pulsar://h:1", None, true),
            ListenerError::Missing { .. }
        ));
        assert!(matches!(
            err("a:pulsar://h:1,a:pulsar+ssl://h:2", None, false),
            ListenerError::Unused { .. }
        ));
        assert!(matches!(
            err("a:pulsar://h:1", Some("b"), false),
            ListenerError::UnknownInternal { .. }
        ));
    }
}
