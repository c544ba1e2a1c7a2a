//! A JSON-schema validator of the tests' own, for the subsets the crate's
//! copies of Marketo's Swagger 2.0 files (`spec/rest-campaigns.json`,
//! `spec/rest-answers.json`) and of Journey Optimizer's OpenAPI 3.0 file
//! (`spec/ajo-messaging.json`) use: `$ref`, `type`, `required`,
//! `properties`, `additionalProperties`, `items`, `oneOf` (with a
//! discriminator: the mapping decides), `minItems`, `maxItems`, `enum`,
//! `format: int32 | int64 | date-time`.
//!
//! Two readings:
//! - [`validate`], for what this crate sends: strict, an object holds
//!   nothing its schema does not list (unless `additionalProperties`).
//! - [`validate_answer`], for what a server answers, as Swagger 2.0 reads a
//!   schema: an object may hold properties its schema does not list (a
//!   Marketo `Lead` carries any lead field), and an object schema with no
//!   properties at all (`{"type": "object"}`) is how Marketo's generator
//!   wrote Java's `Object`, any JSON value (`Attribute.value`, which
//!   Marketo's own examples fill with strings and numbers).

use serde_json::{json, Value};

/// Strict: for what this crate sends.
pub(crate) fn validate(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
) -> Result<(), String> {
    check(spec, schema, value, path, true)
}

/// As Swagger 2.0 reads a schema: for what a server answers.
pub(crate) fn validate_answer(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
) -> Result<(), String> {
    check(spec, schema, value, path, false)
}

fn check(
    spec: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    strict: bool,
) -> Result<(), String> {
    let validate = |spec: &Value, schema: &Value, value: &Value, path: &str| {
        check(spec, schema, value, path, strict)
    };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        // `#/definitions/X` (Swagger 2.0) or `#/components/schemas/X`
        // (OpenAPI 3.0): a JSON pointer into the spec.
        let target = reference
            .strip_prefix('#')
            .and_then(|pointer| spec.pointer(pointer))
            .ok_or(format!("{path}: unknown $ref {reference}"))?;
        return validate(spec, target, value, path);
    }
    if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
        if let Some(mapping) = schema["discriminator"]["mapping"].as_object() {
            let property = schema["discriminator"]["propertyName"].as_str().unwrap();
            let tag = value[property]
                .as_str()
                .ok_or(format!("{path}: no {property}"))?;
            let target = mapping
                .get(tag)
                .ok_or(format!("{path}: {property} {tag:?} is not mapped"))?;
            return validate(spec, &json!({ "$ref": target }), value, path);
        }
        let passing = choices
            .iter()
            .filter(|c| validate(spec, c, value, path).is_ok())
            .count();
        return if passing == 1 {
            Ok(())
        } else {
            Err(format!("{path}: {passing} oneOf schemas match"))
        };
    }
    // A schema with properties but no type (errorResponse's
    // additionalContext) is an object's.
    let implied = (schema.get("properties").is_some()
        || schema.get("additionalProperties").is_some())
    .then_some("object");
    match schema["type"].as_str().or(implied) {
        Some("object") if !strict && schema.as_object().is_some_and(|s| s.len() == 1) => {
            // `{"type": "object"}` alone: Java's `Object`, any value.
            Ok(())
        }
        Some("object") => {
            let object = value.as_object().ok_or(format!("{path}: not an object"))?;
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                if !object.contains_key(name) {
                    return Err(format!("{path}: missing required {name}"));
                }
            }
            for (name, item) in object {
                let sub = format!("{path}.{name}");
                if let Some(property) = schema["properties"].get(name) {
                    validate(spec, property, item, &sub)?;
                } else if schema["additionalProperties"].is_object() {
                    validate(spec, &schema["additionalProperties"], item, &sub)?;
                } else if strict || schema["additionalProperties"] == false {
                    return Err(format!("{path}: {name} is not in the schema"));
                }
            }
            Ok(())
        }
        Some("array") => {
            let items = value.as_array().ok_or(format!("{path}: not an array"))?;
            let n = items.len() as u64;
            if schema["minItems"].as_u64().is_some_and(|min| n < min) {
                return Err(format!("{path}: {n} items, fewer than minItems"));
            }
            if schema["maxItems"].as_u64().is_some_and(|max| n > max) {
                return Err(format!("{path}: {n} items, more than maxItems"));
            }
            for (i, item) in items.iter().enumerate() {
                validate(spec, &schema["items"], item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Some("string") => {
            let text = value.as_str().ok_or(format!("{path}: not a string"))?;
            if let Some(allowed) = schema["enum"].as_array() {
                if !allowed.iter().any(|a| a == text) {
                    return Err(format!("{path}: {text:?} is not one of {allowed:?}"));
                }
            }
            if schema["format"] == "date-time"
                && chrono::DateTime::parse_from_rfc3339(text).is_err()
            {
                return Err(format!("{path}: not a date-time"));
            }
            Ok(())
        }
        Some("integer") => {
            let n = value.as_i64().ok_or(format!("{path}: not an integer"))?;
            if schema["format"] == "int32" && i32::try_from(n).is_err() {
                return Err(format!("{path}: not an int32"));
            }
            Ok(())
        }
        Some("boolean") => value
            .as_bool()
            .map(|_| ())
            .ok_or(format!("{path}: not a boolean")),
        Some("number") => value
            .as_f64()
            .map(|_| ())
            .ok_or(format!("{path}: not a number")),
        other => Err(format!("{path}: unsupported type {other:?}")),
    }
}
