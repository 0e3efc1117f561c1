//! A StatusNotifierWatcher for the tray-menu test: what a desktop's panel
//! runs, reduced to taking registrations (the panel's host is "registered"
//! from the start). The test then reads the registered item's menu over
//! dbusmenu and clicks its items, as a panel does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::message::Header;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

/// Items registered so far: (bus name, object path).
type Items = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Items,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str, #[zbus(header)] hdr: Header<'_>) {
        let sender = hdr.sender().map(|s| s.to_string()).unwrap_or_default();
        // Ayatana registers its object path; others their bus name.
        let item = if service.starts_with('/') {
            (sender, service.to_string())
        } else {
            (service.to_string(), "/StatusNotifierItem".to_string())
        };
        self.items.lock().unwrap().push(item);
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(b, p)| format!("{b}{p}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// The watcher on a bus, and a connection to read items with.
pub struct Panel {
    conn: Connection,
    items: Items,
}

/// A dbusmenu node: id, properties, children (each a variant of a node).
type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

/// One menu entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
}

impl Panel {
    pub fn start(bus: &str) -> Panel {
        let items = Items::default();
        let conn = zbus::blocking::connection::Builder::address(bus)
            .and_then(|b| b.name("org.kde.StatusNotifierWatcher"))
            .and_then(|b| {
                b.serve_at(
                    "/StatusNotifierWatcher",
                    Watcher {
                        items: items.clone(),
                    },
                )
            })
            .and_then(|b| b.build())
            .expect("the watcher on the private bus");
        Panel { conn, items }
    }

    /// The first item to register, waiting at most `limit`.
    pub fn item(&self, limit: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(i) = self.items.lock().unwrap().first() {
                return Some(i.clone());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn property(&self, item: &(String, String), name: &str) -> zbus::Result<OwnedValue> {
        let reply = self.conn.call_method(
            Some(item.0.as_str()),
            item.1.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.kde.StatusNotifierItem", name),
        )?;
        reply.body().deserialize::<OwnedValue>()
    }

    /// A string property of the item (`IconName`, `Status`, `Title`).
    pub fn string(&self, item: &(String, String), name: &str) -> String {
        self.property(item, name)
            .ok()
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default()
    }

    fn menu_path(&self, item: &(String, String)) -> zbus::Result<OwnedObjectPath> {
        let v = self.property(item, "Menu")?;
        OwnedObjectPath::try_from(v).map_err(zbus::Error::from)
    }

    /// The item's menu, flattened (separators left out).
    pub fn menu(&self, item: &(String, String)) -> zbus::Result<Vec<Entry>> {
        let path = self.menu_path(item)?;
        let reply = self.conn.call_method(
            Some(item.0.as_str()),
            path.as_str(),
            Some("com.canonical.dbusmenu"),
            "GetLayout",
            &(0i32, -1i32, Vec::<&str>::new()),
        )?;
        let (_revision, layout): (u32, Node) = reply.body().deserialize()?;
        let mut out = Vec::new();
        for child in &layout.2 {
            walk(child, &mut out);
        }
        Ok(out)
    }

    /// Clicks the entry labelled `label`.
    pub fn click(&self, item: &(String, String), label: &str) -> zbus::Result<()> {
        let entry = self
            .menu(item)?
            .into_iter()
            .find(|e| e.label == label)
            .ok_or_else(|| zbus::Error::Failure(format!("no menu entry {label:?}")))?;
        let path = self.menu_path(item)?;
        self.conn.call_method(
            Some(item.0.as_str()),
            path.as_str(),
            Some("com.canonical.dbusmenu"),
            "Event",
            &(entry.id, "clicked", Value::from(0i32), 0u32),
        )?;
        Ok(())
    }
}

/// Collects a dbusmenu node `(ia{sv}av)` and its children.
fn walk(node: &Value<'_>, out: &mut Vec<Entry>) {
    let node = match node {
        Value::Value(inner) => inner.as_ref(),
        other => other,
    };
    let Value::Structure(s) = node else {
        return;
    };
    let fields = s.fields();
    let (Some(Value::I32(id)), Some(Value::Dict(props))) = (fields.first(), fields.get(1)) else {
        return;
    };
    let get = |key: &str| -> Option<Value<'_>> {
        props
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s.as_str() == key))
            .and_then(|(_, v)| v.try_clone().ok())
            .map(|v| match v {
                Value::Value(inner) => *inner,
                other => other,
            })
    };
    let kind = get("type").and_then(|v| String::try_from(v).ok());
    if kind.as_deref() != Some("separator") {
        out.push(Entry {
            id: *id,
            label: get("label")
                .and_then(|v| String::try_from(v).ok())
                .unwrap_or_default()
                .replace('_', ""),
            enabled: get("enabled")
                .and_then(|v| bool::try_from(v).ok())
                .unwrap_or(true),
        });
    }
    if let Some(Value::Array(children)) = fields.get(2) {
        for c in children.iter() {
            walk(c, out);
        }
    }
}
