//! Just enough of the Kubernetes protobuf encoding to accept the built-in objects kubectl's typed
//! clients send that way (`kubectl create namespace|secret|configmap`): Namespace, ConfigMap and
//! Secret, decoded into their JSON form. Responses are always JSON, which those clients accept.

use base64::Engine;
use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn next(&mut self) -> Option<Option<(u64, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let end = self.pos.checked_add(len)?;
                let bytes = self.buf.get(self.pos..end)?;
                self.pos = end;
                Field::Bytes(bytes)
            }
            5 => {
                self.pos += 4;
                Field::Fixed
            }
            _ => return None,
        };
        Some(Some((key >> 3, field)))
    }
}

fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut r = Reader::new(buf);
    let mut out = vec![];
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Some(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

/// A map entry message (key = 1, value = 2); `binary` values become base64.
fn map_entry(b: &[u8], binary: bool, into: &mut Map<String, Value>) -> Option<()> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = String::from_utf8_lossy(x).into_owned(),
            (2, Field::Bytes(x)) if binary => {
                v = json!(base64::engine::general_purpose::STANDARD.encode(x))
            }
            (2, Field::Bytes(x)) => v = text(x),
            _ => {}
        }
    }
    into.insert(k, v);
    Some(())
}

fn owner_reference(b: &[u8]) -> Option<Value> {
    let mut o = Map::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => o.insert("kind".into(), text(x)),
            (3, Field::Bytes(x)) => o.insert("name".into(), text(x)),
            (4, Field::Bytes(x)) => o.insert("uid".into(), text(x)),
            (5, Field::Bytes(x)) => o.insert("apiVersion".into(), text(x)),
            (6, Field::Varint(x)) => o.insert("controller".into(), json!(x != 0)),
            (7, Field::Varint(x)) => o.insert("blockOwnerDeletion".into(), json!(x != 0)),
            _ => None,
        };
    }
    Some(Value::Object(o))
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut m = Map::new();
    let (mut labels, mut annotations) = (Map::new(), Map::new());
    let (mut finalizers, mut owners) = (vec![], vec![]);
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("name".into(), text(x));
            }
            (2, Field::Bytes(x)) => {
                m.insert("generateName".into(), text(x));
            }
            (3, Field::Bytes(x)) => {
                m.insert("namespace".into(), text(x));
            }
            (6, Field::Bytes(x)) => {
                m.insert("resourceVersion".into(), text(x));
            }
            (11, Field::Bytes(x)) => map_entry(x, false, &mut labels)?,
            (12, Field::Bytes(x)) => map_entry(x, false, &mut annotations)?,
            (13, Field::Bytes(x)) => owners.push(owner_reference(x)?),
            (14, Field::Bytes(x)) => finalizers.push(text(x)),
            _ => {}
        }
    }
    for (k, v) in [("labels", labels), ("annotations", annotations)] {
        if !v.is_empty() {
            m.insert(k.into(), Value::Object(v));
        }
    }
    if !owners.is_empty() {
        m.insert("ownerReferences".into(), Value::Array(owners));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Some(Value::Object(m))
}

fn decode_object(kind: &str, raw: &[u8]) -> Option<Value> {
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!(kind));
    let (mut data, mut second, mut string_data) = (Map::new(), Map::new(), Map::new());
    for (n, f) in fields(raw)? {
        match (kind, n, f) {
            (_, 1, Field::Bytes(x)) => {
                obj.insert("metadata".into(), object_meta(x)?);
            }
            ("Namespace", 2, Field::Bytes(x)) => {
                let fins: Vec<Value> = fields(x)?
                    .into_iter()
                    .filter_map(|(n, f)| {
                        matches!((n, &f), (1, Field::Bytes(_))).then(|| bytes_text(&f))
                    })
                    .collect();
                obj.insert("spec".into(), json!({"finalizers": fins}));
            }
            ("ConfigMap", 2, Field::Bytes(x)) => map_entry(x, false, &mut data)?,
            ("ConfigMap", 3, Field::Bytes(x)) => map_entry(x, true, &mut second)?,
            ("ConfigMap", 4, Field::Varint(x)) | ("Secret", 5, Field::Varint(x)) => {
                obj.insert("immutable".into(), json!(x != 0));
            }
            ("Secret", 2, Field::Bytes(x)) => map_entry(x, true, &mut data)?,
            ("Secret", 3, Field::Bytes(x)) => {
                obj.insert("type".into(), text(x));
            }
            ("Secret", 4, Field::Bytes(x)) => map_entry(x, false, &mut string_data)?,
            _ => {}
        }
    }
    let second_name = if kind == "ConfigMap" {
        "binaryData"
    } else {
        "unused"
    };
    for (k, v) in [
        ("data", data),
        (second_name, second),
        ("stringData", string_data),
    ] {
        if !v.is_empty() {
            obj.insert(k.into(), Value::Object(v));
        }
    }
    Some(Value::Object(obj))
}

fn bytes_text(f: &Field<'_>) -> Value {
    match f {
        Field::Bytes(x) => text(x),
        _ => Value::Null,
    }
}

/// Decodes a protobuf request body into JSON, or explains what is not supported.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body lacks the k8s envelope")?;
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (n, f) in fields(rest).ok_or("malformed protobuf envelope")? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (n, f) in fields(tm).ok_or("malformed protobuf type meta")? {
                    if let (2, Field::Bytes(k)) = (n, f) {
                        kind = String::from_utf8_lossy(k).into_owned();
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    match kind.as_str() {
        "Namespace" | "ConfigMap" | "Secret" => {
            decode_object(&kind, raw).ok_or_else(|| format!("malformed protobuf {kind}"))
        }
        other => Err(format!(
            "devcluster accepts protobuf only for Namespace, ConfigMap and Secret, not {other:?}; send JSON"
        )),
    }
}
