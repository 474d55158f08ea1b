//! A small subset of Go's text/template, enough for the `--format` strings scripts use with
//! Docker: `{{.Field.Sub}}`, `{{json .X}}`, `{{index .Map "key"}}`, `{{.X | json}}`,
//! `{{upper .X}}`, `{{lower .X}}`, `{{join .List ","}}`, `{{println .X}}`, and `\t`/`\n` escapes
//! outside actions. Applied to the JSON value of what is printed.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Action(String),
}

fn parse(t: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        if i > 0 {
            out.push(Piece::Text(unescape(&rest[..i])));
        }
        let after = &rest[i + 2..];
        let j = after.find("}}").ok_or_else(|| format!("template: unclosed action in {t:?}"))?;
        out.push(Piece::Action(
            after[..j].trim().trim_start_matches('-').trim_end_matches('-').trim().to_string(),
        ));
        rest = &after[j + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(unescape(rest)));
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// Splits an action into words, keeping quoted strings whole.
fn words(a: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in a.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' | '\t' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn lookup<'a>(v: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            Value::Object(m) => m.get(part).ok_or_else(|| format!("template: can't evaluate field {part}"))?,
            Value::Null => return Ok(&Value::Null),
            _ => return Err(format!("template: can't evaluate field {part}")),
        };
    }
    Ok(cur)
}

fn arg(v: &Value, w: &str) -> Result<Value, String> {
    if let Some(s) = w.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Ok(Value::String(s.to_string()));
    }
    if w.starts_with('.') {
        return lookup(v, w).cloned();
    }
    if let Ok(n) = w.parse::<i64>() {
        return Ok(Value::from(n));
    }
    Err(format!("template: unexpected {w:?}"))
}

/// How Go prints a value with `{{.X}}`.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_string).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!("map[{}]", m.iter().map(|(k, v)| format!("{k}:{}", go_string(v))).collect::<Vec<_>>().join(" ")),
    }
}

fn call(f: &str, args: &[Value]) -> Result<Value, String> {
    match (f, args) {
        ("json", [x]) => Ok(Value::String(serde_json::to_string(x).unwrap_or_default())),
        ("upper", [x]) => Ok(Value::String(go_string(x).to_uppercase())),
        ("lower", [x]) => Ok(Value::String(go_string(x).to_lowercase())),
        ("println", xs) => Ok(Value::String(xs.iter().map(go_string).collect::<Vec<_>>().join(" ") + "\n")),
        ("len", [Value::Array(a)]) => Ok(Value::from(a.len())),
        ("len", [Value::Object(m)]) => Ok(Value::from(m.len())),
        ("len", [Value::String(s)]) => Ok(Value::from(s.len())),
        ("join", [Value::Array(a), Value::String(sep)]) => Ok(Value::String(a.iter().map(go_string).collect::<Vec<_>>().join(sep))),
        ("index", [Value::Object(m), Value::String(k)]) => Ok(m.get(k).cloned().unwrap_or(Value::Null)),
        ("index", [Value::Array(a), Value::Number(n)]) => Ok(n.as_u64().and_then(|i| a.get(i as usize)).cloned().unwrap_or(Value::Null)),
        ("index", [Value::Null, _]) => Ok(Value::Null),
        _ => Err(format!("template: function {f:?} not defined or bad arguments")),
    }
}

fn eval(v: &Value, action: &str) -> Result<Value, String> {
    let mut acc: Option<Value> = None;
    for stage in action.split('|') {
        let w = words(stage.trim());
        let Some(first) = w.first() else {
            return Err("template: empty action".into());
        };
        let is_fn = !first.starts_with('.') && !first.starts_with('"');
        let val = if is_fn {
            let mut args: Vec<Value> = w[1..].iter().map(|a| arg(v, a)).collect::<Result<_, _>>()?;
            if let Some(prev) = acc.take() {
                args.push(prev);
            }
            call(first, &args)?
        } else {
            if w.len() > 1 {
                return Err(format!("template: unexpected words in {stage:?}"));
            }
            arg(v, first)?
        };
        acc = Some(val);
    }
    acc.ok_or_else(|| "template: empty action".into())
}

/// A parsed template.
pub struct Template(Vec<Piece>);

impl Template {
    pub fn new(t: &str) -> Result<Template, String> {
        parse(t).map(Template)
    }

    pub fn render(&self, v: &Value) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Action(a) => out.push_str(&go_string(&eval(v, a)?)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_docker_style_formats() {
        let v = json!({"State": {"ExitCode": 3, "Running": false}, "Config": {"Labels": {"a.b": "x"}, "Env": ["A=1", "B=2"]}, "Name": "/web"});
        let r = |t: &str| Template::new(t).unwrap().render(&v).unwrap();
        assert_eq!(r("{{.State.ExitCode}}"), "3");
        assert_eq!(r("{{.State.Running}} {{.Name}}"), "false /web");
        assert_eq!(r("{{index .Config.Labels \"a.b\"}}"), "x");
        assert_eq!(r("{{json .Config.Env}}"), "[\"A=1\",\"B=2\"]");
        assert_eq!(r("{{.Config.Env | json}}"), "[\"A=1\",\"B=2\"]");
        assert_eq!(r("{{join .Config.Env \",\"}}"), "A=1,B=2");
        // As on Docker's structs, an unknown field is an error; a missing map key is not.
        assert!(Template::new("{{.Missing}}").unwrap().render(&v).is_err());
        assert_eq!(r("{{index .Config.Labels \"nope\"}}"), "<no value>");
        assert_eq!(r("a\\tb"), "a\tb");
        assert!(Template::new("{{.X").is_err());
        assert!(Template::new("{{bogus .X}}").unwrap().render(&v).is_err());
    }
}
