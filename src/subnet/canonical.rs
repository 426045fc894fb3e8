//! Canonical JSON as the subnet template writes it for hashing and
//! signing: Python's `json.dumps(v, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=True, allow_nan=False)`. Byte-exact, or nothing verifies:
//! keys sorted by code point, non-ASCII escaped as `\uXXXX` (lower-case
//! hex, surrogate pairs), floats in Python's shortest `repr`.

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("a number that is neither an integer nor a finite float")]
    BadNumber,
}

/// The canonical bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value)?;
    Ok(out)
}

fn write(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                let f = n.as_f64().ok_or(CanonicalError::BadNumber)?;
                out.extend_from_slice(python_float_repr(f)?.as_bytes());
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Code point order is UTF-8 byte order: `str`'s `Ord`.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write(out, &map[key])?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            // Python escapes everything outside printable ASCII (DEL too).
            c if !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
            c => out.push(c as u8),
        }
    }
    out.push(b'"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed
/// notation for decimal exponents -4..16, else `d.ddde±XX`.
pub fn python_float_repr(f: f64) -> Result<String, CanonicalError> {
    if !f.is_finite() {
        return Err(CanonicalError::BadNumber);
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "1.2345e3", "-5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').ok_or(CanonicalError::BadNumber)?;
    let exp: i32 = exp.parse().map_err(|_| CanonicalError::BadNumber)?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let repr = if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    };
    Ok(format!("{sign}{repr}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_repr_does() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1795832393.5621, "1795832393.5621"),
            (1e16, "1e+16"),
            (1.5e20, "1.5e+20"),
            (123456789012345.6, "123456789012345.6"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5e-7, "-2.5e-07"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(python_float_repr(f).unwrap(), want, "{f}");
        }
        assert!(python_float_repr(f64::NAN).is_err());
    }

    proptest::proptest! {
        // A float that Python printed must come back as the same text, or
        // signatures over timestamps fail now and then (serde_json's default
        // float parsing is off by one ulp for some inputs: float_roundtrip).
        #[test]
        fn python_float_text_round_trips(bits in proptest::num::u64::ANY) {
            let f = f64::from_bits(bits);
            if f.is_finite() {
                let text = python_float_repr(f).unwrap();
                let parsed: Value = serde_json::from_str(&text).unwrap();
                proptest::prop_assert_eq!(String::from_utf8(to_vec(&parsed).unwrap()).unwrap(), text);
            }
        }
    }

    #[test]
    fn keys_sort_and_text_escapes_as_python_does() {
        let v = json!({"b": 1, "a": [true, null, "é\u{1F600}\n\"\\\u{1}\u{7f}"], "A": {"z": 2.0, "y": -3}});
        // What Python 3.11 printed for the same value.
        assert_eq!(
            String::from_utf8(to_vec(&v).unwrap()).unwrap(),
            r#"{"A":{"y":-3,"z":2.0},"a":[true,null,"\u00e9\ud83d\ude00\n\"\\\u0001\u007f"],"b":1}"#
        );
    }
}
