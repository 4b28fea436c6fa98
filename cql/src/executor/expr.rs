//! Terms resolved against the type that receives them, then evaluated with bound values.
//!
//! Like Cassandra's `Term.Raw.prepare(receiver)` then `Term.bind(options)`: resolution happens
//! once per statement (and at PREPARE, where it yields the bind variables' names and types);
//! constants are converted and checked then, so a bad literal fails at prepare time.

use bytes::Bytes;
use uuid::Uuid;

use crate::ast::{Literal, QualifiedName, Term, TypeExpr};
use crate::error::{Error, Result};
use crate::types::{self, CqlType, Value};

/// What receives a term: a column or a synthetic name (`[limit]`, `in(c)`, `key(m)`...).
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    /// Name reported in the bind variables' metadata.
    pub name: String,
    /// Type.
    pub ty: CqlType,
}

impl Receiver {
    /// A receiver called `name` of type `ty`.
    pub fn new(name: impl Into<String>, ty: CqlType) -> Receiver {
        Receiver { name: name.into(), ty }
    }
}

/// The bind variables of a statement, by marker index (filled as terms are resolved).
#[derive(Debug, Clone, Default)]
pub struct BindSpecs {
    /// Receiver of each marker.
    pub receivers: Vec<Option<Receiver>>,
    /// Names of the markers (`:name`), by index.
    pub names: Vec<Option<String>>,
}

impl BindSpecs {
    /// Specs for a statement with these marker names.
    #[must_use]
    pub fn new(names: Vec<Option<String>>) -> BindSpecs {
        BindSpecs { receivers: vec![None; names.len()], names }
    }

    fn record(&mut self, index: usize, receiver: &Receiver) -> Result<()> {
        let slot = self
            .receivers
            .get_mut(index)
            .ok_or_else(|| Error::Server(format!("bind marker {index} out of range")))?;
        *slot = Some(receiver.clone());
        Ok(())
    }
}

/// A value bound to a marker.
#[derive(Debug, Clone, PartialEq)]
pub enum BoundValue {
    /// null.
    Null,
    /// Not set: the column is left alone (protocol v4 "unset").
    Unset,
    /// Serialized bytes.
    Bytes(Bytes),
}

/// A term after resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant (`None` for null).
    Const(Option<Value>),
    /// A bind marker, decoded as `ty` at evaluation.
    Bind {
        /// Marker index.
        index: usize,
        /// Receiver.
        receiver: Receiver,
    },
    /// A collection or tuple literal with non-constant parts.
    Collection {
        /// Its type.
        ty: CqlType,
        /// Elements (pairs flattened as key, value for maps).
        items: Vec<Expr>,
    },
    /// A function of the current time (`now()`, `currentTimestamp()`, ...), evaluated per
    /// statement.
    Call {
        /// Which function.
        function: Function,
        /// Arguments.
        args: Vec<Expr>,
    },
}

/// The functions terms may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `now()`: a new timeuuid.
    Now,
    /// `uuid()`: a random v4 uuid.
    Uuid,
    /// `currentTimestamp()`.
    CurrentTimestamp,
    /// `currentDate()`.
    CurrentDate,
    /// `currentTime()`.
    CurrentTime,
    /// `minTimeuuid(ts)`.
    MinTimeuuid,
    /// `maxTimeuuid(ts)`.
    MaxTimeuuid,
    /// `toTimestamp(x)` of a timeuuid or date.
    ToTimestamp,
    /// `toDate(x)` of a timeuuid or timestamp.
    ToDate,
    /// `toUnixTimestamp(x)`.
    ToUnixTimestamp,
    /// `blobAsX(b)`.
    BlobAs,
    /// `xAsBlob(v)`.
    AsBlob,
}

/// Per-statement context of evaluation.
pub trait EvalContext {
    /// Bound values by marker index.
    fn bound(&self, index: usize) -> Option<&BoundValue>;
    /// Now, microseconds.
    fn now_micros(&self) -> i64;
    /// A new timeuuid.
    fn new_timeuuid(&self) -> Uuid;
}

/// The result of evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    /// null.
    Null,
    /// unset.
    Unset,
    /// A value.
    Value(Value),
}

impl Evaluated {
    /// The value, treating unset as an error (key columns, IN lists...).
    pub fn required(self, what: &str) -> Result<Value> {
        match self {
            Evaluated::Value(v) => Ok(v),
            Evaluated::Null => Err(Error::invalid(format!("Invalid null value for {what}"))),
            Evaluated::Unset => Err(Error::invalid(format!("Invalid unset value for {what}"))),
        }
    }
}

impl Expr {
    /// Evaluates the expression.
    pub fn eval(&self, ctx: &dyn EvalContext) -> Result<Evaluated> {
        match self {
            Expr::Const(None) => Ok(Evaluated::Null),
            Expr::Const(Some(v)) => Ok(Evaluated::Value(v.clone())),
            Expr::Bind { index, receiver } => match ctx.bound(*index) {
                None => Err(Error::invalid(format!(
                    "No value bound for bind marker {} ({})",
                    index, receiver.name
                ))),
                Some(BoundValue::Null) => Ok(Evaluated::Null),
                Some(BoundValue::Unset) => Ok(Evaluated::Unset),
                Some(BoundValue::Bytes(b)) => {
                    types::decode(&receiver.ty, b).map(Evaluated::Value).map_err(|e| {
                        Error::invalid(format!("Exception while binding column {}: {e}", receiver.name))
                    })
                }
            },
            Expr::Collection { ty, items } => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match item.eval(ctx)? {
                        Evaluated::Value(v) => values.push(Some(v)),
                        Evaluated::Null if matches!(ty, CqlType::Tuple(_)) => values.push(None),
                        Evaluated::Null => {
                            return Err(Error::invalid("null is not supported inside collections"))
                        }
                        Evaluated::Unset => {
                            return Err(Error::invalid("unset value is not supported inside collections"))
                        }
                    }
                }
                build_collection(ty, values).map(Evaluated::Value)
            }
            Expr::Call { function, args } => {
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(a.eval(ctx)?);
                }
                call(*function, &values, ctx)
            }
        }
    }
}

fn build_collection(ty: &CqlType, values: Vec<Option<Value>>) -> Result<Value> {
    let mut it = values.into_iter();
    Ok(match ty {
        CqlType::List { .. } => Value::List(it.flatten().collect()),
        CqlType::Set { element, .. } => {
            let mut items: Vec<Value> = it.flatten().collect();
            items.sort_by(|a, b| types::compare(element, a, b));
            items.dedup_by(|a, b| types::compare(element, a, b).is_eq());
            Value::Set(items)
        }
        CqlType::Map { key, .. } => {
            let mut entries = Vec::new();
            while let (Some(Some(k)), Some(Some(v))) = (it.next(), it.next()) {
                entries.push((k, v));
            }
            entries.sort_by(|a, b| types::compare(key, &a.0, &b.0));
            // The last value written for a key wins, as in Cassandra.
            entries.reverse();
            entries.dedup_by(|a, b| types::compare(key, &a.0, &b.0).is_eq());
            entries.reverse();
            entries.sort_by(|a, b| types::compare(key, &a.0, &b.0));
            Value::Map(entries)
        }
        CqlType::Tuple(_) => Value::Tuple(it.collect()),
        other => return Err(Error::Server(format!("collection literal for non-collection type {other}"))),
    })
}

/// Resolves `term` for `receiver`, recording the receivers of bind markers in `binds`.
pub fn resolve(term: &Term, receiver: &Receiver, binds: &mut BindSpecs) -> Result<Expr> {
    resolve_at(term, receiver, binds, 0)
}

const MAX_TERM_DEPTH: usize = 64;

fn resolve_at(term: &Term, receiver: &Receiver, binds: &mut BindSpecs, depth: usize) -> Result<Expr> {
    if depth > MAX_TERM_DEPTH {
        return Err(Error::invalid("term nested too deeply"));
    }
    let ty = &receiver.ty;
    let invalid_for =
        |what: &str| Error::invalid(format!("Invalid {what} for {} of type {}", receiver.name, ty));
    match term {
        Term::BindMarker(m) => {
            binds.record(m.index, receiver)?;
            Ok(Expr::Bind { index: m.index, receiver: receiver.clone() })
        }
        Term::Literal(Literal::Null) => Ok(Expr::Const(None)),
        Term::Literal(lit) => literal(lit, receiver).map(|v| Expr::Const(Some(v))),
        Term::Cast { ty: hint, term } => {
            let hinted = type_of(hint)?;
            if !is_value_compatible(&hinted, ty) {
                return Err(Error::invalid(format!(
                    "Type error: {} cannot be passed as argument 0 of type {ty}",
                    hinted
                )));
            }
            resolve_at(term, &Receiver::new(receiver.name.clone(), hinted), binds, depth + 1)
        }
        // The Python driver sends tuple parameters of simple statements as list literals.
        Term::List(items) if matches!(ty, CqlType::Tuple(_)) => {
            resolve_at(&Term::Tuple(items.clone()), receiver, binds, depth + 1)
        }
        Term::List(items) => {
            let CqlType::List { element, .. } = ty else { return Err(invalid_for("list literal")) };
            let r = Receiver::new(format!("value({})", receiver.name), (**element).clone());
            let exprs =
                items.iter().map(|t| resolve_at(t, &r, binds, depth + 1)).collect::<Result<Vec<_>>>()?;
            fold(ty, exprs)
        }
        Term::Set(items) => {
            let CqlType::Set { element, .. } = ty else { return Err(invalid_for("set literal")) };
            let r = Receiver::new(format!("value({})", receiver.name), (**element).clone());
            let exprs =
                items.iter().map(|t| resolve_at(t, &r, binds, depth + 1)).collect::<Result<Vec<_>>>()?;
            fold(ty, exprs)
        }
        Term::Map(entries) => {
            let CqlType::Map { key, value, .. } = ty else { return Err(invalid_for("map literal")) };
            let kr = Receiver::new(format!("key({})", receiver.name), (**key).clone());
            let vr = Receiver::new(format!("value({})", receiver.name), (**value).clone());
            let mut exprs = Vec::with_capacity(entries.len() * 2);
            for (k, v) in entries {
                exprs.push(resolve_at(k, &kr, binds, depth + 1)?);
                exprs.push(resolve_at(v, &vr, binds, depth + 1)?);
            }
            fold(ty, exprs)
        }
        Term::EmptyCollection => match ty {
            CqlType::Set { .. } => Ok(Expr::Const(Some(Value::Set(Vec::new())))),
            CqlType::Map { .. } => Ok(Expr::Const(Some(Value::Map(Vec::new())))),
            _ => Err(invalid_for("set literal")),
        },
        Term::Tuple(items) => {
            let CqlType::Tuple(fields) = ty else { return Err(invalid_for("tuple literal")) };
            if items.len() > fields.len() {
                return Err(Error::invalid(format!(
                    "Invalid tuple literal for {}: too many elements. Type {ty} expects {} but got {}",
                    receiver.name,
                    fields.len(),
                    items.len()
                )));
            }
            let mut exprs = Vec::with_capacity(items.len());
            for (i, (t, fty)) in items.iter().zip(fields).enumerate() {
                let r = Receiver::new(format!("{}[{i}]", receiver.name), fty.clone());
                exprs.push(resolve_at(t, &r, binds, depth + 1)?);
            }
            fold(ty, exprs)
        }
        Term::Udt(_) => Err(Error::invalid("User-defined types are not supported")),
        Term::FunctionCall { name, args } => resolve_call(name, args, receiver, binds, depth),
    }
}

/// A collection whose items are all constants becomes a constant.
fn fold(ty: &CqlType, exprs: Vec<Expr>) -> Result<Expr> {
    if exprs.iter().all(|e| matches!(e, Expr::Const(_))) {
        let values: Vec<Option<Value>> =
            exprs.into_iter().map(|e| if let Expr::Const(v) = e { v } else { None }).collect();
        if !matches!(ty, CqlType::Tuple(_)) && values.iter().any(Option::is_none) {
            return Err(Error::invalid("null is not supported inside collections"));
        }
        return build_collection(ty, values).map(|v| Expr::Const(Some(v)));
    }
    Ok(Expr::Collection { ty: ty.clone(), items: exprs })
}

/// Whether a value of type `from` may be given where `to` is expected (type hints, function
/// results).
fn is_value_compatible(from: &CqlType, to: &CqlType) -> bool {
    from == to || matches!((from, to), (CqlType::Ascii, CqlType::Text) | (CqlType::Timeuuid, CqlType::Uuid))
}

/// The type named by a type expression (user-defined types are refused).
pub fn type_of(t: &TypeExpr) -> Result<CqlType> {
    CqlType::parse(&t.to_string()).map_err(|e| Error::invalid(e.to_string()))
}

fn resolve_call(
    name: &QualifiedName,
    args: &[Term],
    receiver: &Receiver,
    binds: &mut BindSpecs,
    depth: usize,
) -> Result<Expr> {
    if name.keyspace.as_deref().is_some_and(|k| k != "system") {
        return Err(Error::invalid(format!("Unknown function {name}")));
    }
    let lower = name.name.to_ascii_lowercase();
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "Invalid number of arguments in call to function {lower}: {n} required but {} provided",
                args.len()
            )))
        }
    };
    let returns = |t: CqlType| {
        if is_value_compatible(&t, &receiver.ty) {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "Type error: cannot assign result of function system.{lower} (type {t}) to {} (type {})",
                receiver.name, receiver.ty
            )))
        }
    };
    let arg = |t: &Term, ty: CqlType, binds: &mut BindSpecs| {
        resolve_at(t, &Receiver::new(format!("arg0({lower})"), ty), binds, depth + 1)
    };
    let (function, exprs) = match lower.as_str() {
        "now" | "currenttimeuuid" => {
            arity(0)?;
            returns(CqlType::Timeuuid)?;
            (Function::Now, Vec::new())
        }
        "uuid" => {
            arity(0)?;
            returns(CqlType::Uuid)?;
            (Function::Uuid, Vec::new())
        }
        "currenttimestamp" => {
            arity(0)?;
            returns(CqlType::Timestamp)?;
            (Function::CurrentTimestamp, Vec::new())
        }
        "currentdate" => {
            arity(0)?;
            returns(CqlType::Date)?;
            (Function::CurrentDate, Vec::new())
        }
        "currenttime" => {
            arity(0)?;
            returns(CqlType::Time)?;
            (Function::CurrentTime, Vec::new())
        }
        "mintimeuuid" | "maxtimeuuid" => {
            arity(1)?;
            returns(CqlType::Timeuuid)?;
            let f = if lower == "mintimeuuid" { Function::MinTimeuuid } else { Function::MaxTimeuuid };
            (f, vec![arg(&args[0], CqlType::Timestamp, binds)?])
        }
        "totimestamp" | "todate" | "tounixtimestamp" => {
            arity(1)?;
            let (f, ret) = match lower.as_str() {
                "totimestamp" => (Function::ToTimestamp, CqlType::Timestamp),
                "todate" => (Function::ToDate, CqlType::Date),
                _ => (Function::ToUnixTimestamp, CqlType::Bigint),
            };
            returns(ret)?;
            // The argument is a timeuuid, timestamp or date; a literal or marker is taken as a
            // timeuuid unless cast, like Cassandra's overload resolution for literals.
            let arg_ty = match &args[0] {
                Term::Cast { ty, .. } => type_of(ty)?,
                Term::FunctionCall { name, .. } if name.name.eq_ignore_ascii_case("currenttimestamp") => {
                    CqlType::Timestamp
                }
                Term::FunctionCall { name, .. } if name.name.eq_ignore_ascii_case("currentdate") => {
                    CqlType::Date
                }
                _ => CqlType::Timeuuid,
            };
            (f, vec![arg(&args[0], arg_ty, binds)?])
        }
        other => {
            if let Some(target) = other.strip_prefix("blobas") {
                arity(1)?;
                let t =
                    CqlType::parse(target).map_err(|_| Error::invalid(format!("Unknown function {name}")))?;
                returns(t.clone())?;
                let inner = arg(&args[0], CqlType::Blob, binds)?;
                return Ok(Expr::Call {
                    function: Function::BlobAs,
                    args: vec![Expr::Const(Some(Value::Text(t.to_string()))), inner],
                });
            }
            if let Some(source) = other.strip_suffix("asblob") {
                arity(1)?;
                let t =
                    CqlType::parse(source).map_err(|_| Error::invalid(format!("Unknown function {name}")))?;
                returns(CqlType::Blob)?;
                (Function::AsBlob, vec![arg(&args[0], t, binds)?])
            } else {
                return Err(Error::invalid(format!("Unknown function '{name}'")));
            }
        }
    };
    Ok(Expr::Call { function, args: exprs })
}

fn call(function: Function, args: &[Evaluated], ctx: &dyn EvalContext) -> Result<Evaluated> {
    let value = |i: usize| -> Option<&Value> {
        match args.get(i) {
            Some(Evaluated::Value(v)) => Some(v),
            _ => None,
        }
    };
    let now_ms = ctx.now_micros().div_euclid(1000);
    let v = match function {
        Function::Now => Value::Timeuuid(ctx.new_timeuuid()),
        Function::Uuid => Value::Uuid(Uuid::new_v4()),
        Function::CurrentTimestamp => Value::Timestamp(now_ms),
        Function::CurrentDate => {
            Value::Date(types::to_date(now_ms).map_err(|e| Error::invalid(e.to_string()))?)
        }
        Function::CurrentTime => Value::Time(ctx.now_micros().rem_euclid(86_400_000_000) * 1000),
        Function::MinTimeuuid | Function::MaxTimeuuid => {
            let Some(Value::Timestamp(ms)) = value(0) else { return Ok(Evaluated::Null) };
            let u = if function == Function::MinTimeuuid {
                types::min_timeuuid(*ms)
            } else {
                types::max_timeuuid(*ms)
            };
            Value::Timeuuid(u.map_err(|e| Error::invalid(e.to_string()))?)
        }
        Function::ToTimestamp | Function::ToDate | Function::ToUnixTimestamp => {
            let ms = match value(0) {
                Some(Value::Timeuuid(u)) => {
                    types::timeuuid_to_unix_ms(u).map_err(|e| Error::invalid(e.to_string()))?
                }
                Some(Value::Timestamp(ms)) => *ms,
                Some(Value::Date(d)) => types::date_to_timestamp(*d),
                _ => return Ok(Evaluated::Null),
            };
            match function {
                Function::ToTimestamp => Value::Timestamp(ms),
                Function::ToDate => {
                    Value::Date(types::to_date(ms).map_err(|e| Error::invalid(e.to_string()))?)
                }
                _ => Value::Bigint(ms),
            }
        }
        Function::BlobAs => {
            let (Some(Value::Text(t)), Some(Value::Blob(b))) = (value(0), value(1)) else {
                return Ok(Evaluated::Null);
            };
            let ty = CqlType::parse(t).map_err(|e| Error::invalid(e.to_string()))?;
            types::decode(&ty, b)
                .map_err(|e| Error::invalid(format!("In call to function blobas{t}: {e}")))?
        }
        Function::AsBlob => {
            let Some(v) = value(0) else { return Ok(Evaluated::Null) };
            Value::Blob(Bytes::from(types::encode(v)))
        }
    };
    Ok(Evaluated::Value(v))
}

/// Converts a literal for a receiver, with Cassandra's rules for which literal kinds each type
/// accepts.
pub fn literal(lit: &Literal, receiver: &Receiver) -> Result<Value> {
    let ty = &receiver.ty;
    let bad = |kind: &str| {
        Error::invalid(format!(
            "Invalid {kind} constant ({}) for \"{}\" of type {ty}",
            literal_text(lit),
            receiver.name
        ))
    };
    let out_of_range = || {
        Error::invalid(format!(
            "Invalid {} constant ({}) for \"{}\" of type {ty}: out of range",
            kind_name(lit),
            literal_text(lit),
            receiver.name
        ))
    };
    match (lit, ty) {
        (Literal::String(s), CqlType::Text) => Ok(Value::Text(s.clone())),
        (Literal::String(s), CqlType::Ascii) => {
            if s.is_ascii() {
                Ok(Value::Ascii(s.clone()))
            } else {
                Err(Error::invalid(format!(
                    "Invalid ASCII character in string literal for {}",
                    receiver.name
                )))
            }
        }
        (Literal::String(s), CqlType::Timestamp) => {
            types::parse_timestamp(s).map(Value::Timestamp).map_err(|e| Error::invalid(e.to_string()))
        }
        (Literal::String(s), CqlType::Date) => {
            types::parse_date(s).map(Value::Date).map_err(|e| Error::invalid(e.to_string()))
        }
        (Literal::String(s), CqlType::Time) => {
            types::parse_time(s).map(Value::Time).map_err(|e| Error::invalid(e.to_string()))
        }
        (Literal::String(s), CqlType::Inet) => s
            .parse::<std::net::IpAddr>()
            .map(Value::Inet)
            .map_err(|_| Error::invalid(format!("Unable to make inet address from '{s}'"))),
        (Literal::String(s) | Literal::Duration(s), CqlType::Duration) => {
            let (months, days, nanoseconds) =
                types::parse_duration(s).map_err(|e| Error::invalid(e.to_string()))?;
            Ok(Value::Duration { months, days, nanoseconds })
        }
        (Literal::Integer(s), CqlType::Int) => s.parse().map(Value::Int).map_err(|_| out_of_range()),
        (Literal::Integer(s), CqlType::Bigint | CqlType::Counter) => {
            s.parse().map(Value::Bigint).map_err(|_| out_of_range())
        }
        (Literal::Integer(s), CqlType::Smallint) => {
            s.parse().map(Value::Smallint).map_err(|_| out_of_range())
        }
        (Literal::Integer(s), CqlType::Tinyint) => s.parse().map(Value::Tinyint).map_err(|_| out_of_range()),
        (Literal::Integer(s), CqlType::Varint) => s.parse().map(Value::Varint).map_err(|_| out_of_range()),
        (Literal::Integer(s) | Literal::Float(s), CqlType::Decimal) => {
            s.parse().map(Value::Decimal).map_err(|_| bad("decimal"))
        }
        (Literal::Integer(s) | Literal::Float(s), CqlType::Double) => {
            parse_float(s).map(Value::Double).ok_or_else(|| bad("float"))
        }
        (Literal::Integer(s) | Literal::Float(s), CqlType::Float) => {
            parse_float(s).map(|f| Value::Float(f as f32)).ok_or_else(|| bad("float"))
        }
        (Literal::Integer(s), CqlType::Timestamp) => {
            s.parse().map(Value::Timestamp).map_err(|_| out_of_range())
        }
        (Literal::Integer(s), CqlType::Date) => s.parse::<u32>().map(Value::Date).map_err(|_| out_of_range()),
        (Literal::Integer(s), CqlType::Time) => s.parse().map(Value::Time).map_err(|_| out_of_range()),
        (Literal::Boolean(b), CqlType::Boolean) => Ok(Value::Boolean(*b)),
        (Literal::Uuid(s), CqlType::Uuid | CqlType::Timeuuid)
        | (Literal::String(s), CqlType::Uuid | CqlType::Timeuuid) => {
            let u =
                Uuid::parse_str(s).map_err(|_| Error::invalid(format!("Unable to make UUID from '{s}'")))?;
            if matches!(ty, CqlType::Timeuuid) {
                if u.get_version_num() != 1 {
                    return Err(Error::invalid(format!(
                        "Unsupported UUID version for timeuuid {s}: must be a version 1 UUID"
                    )));
                }
                Ok(Value::Timeuuid(u))
            } else {
                Ok(Value::Uuid(u))
            }
        }
        (Literal::Hex(s), CqlType::Blob | CqlType::Custom(_)) => {
            let digits = s.get(2..).unwrap_or_default();
            decode_hex(digits).map(|b| Value::Blob(Bytes::from(b))).ok_or_else(|| bad("hex"))
        }
        (_, CqlType::Tuple(_) | CqlType::List { .. } | CqlType::Set { .. } | CqlType::Map { .. }) => {
            Err(bad(kind_name(lit)))
        }
        _ => Err(bad(kind_name(lit))),
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" | "-NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn kind_name(lit: &Literal) -> &'static str {
    match lit {
        Literal::String(_) => "STRING",
        Literal::Integer(_) => "INTEGER",
        Literal::Float(_) => "FLOAT",
        Literal::Boolean(_) => "BOOLEAN",
        Literal::Duration(_) => "DURATION",
        Literal::Uuid(_) => "UUID",
        Literal::Hex(_) => "HEX",
        Literal::Null => "NULL",
    }
}

fn literal_text(lit: &Literal) -> String {
    match lit {
        Literal::String(s) => s.clone(),
        Literal::Integer(s)
        | Literal::Float(s)
        | Literal::Duration(s)
        | Literal::Uuid(s)
        | Literal::Hex(s) => s.clone(),
        Literal::Boolean(b) => b.to_string(),
        Literal::Null => "null".into(),
    }
}
