//! Error messages as cqlsh prints them.
//!
//! Server errors read `InvalidRequest: Error from server: code=2200 [Invalid query]
//! message="..."` (the Python driver's exception name, the error code in hex, its summary and
//! the server's message); a syntax error reads `SyntaxException: <server message>`.

use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use scylla::frame::protocol_features::ProtocolFeatures;

use super::commands::consistency_name;

/// The Python driver's exception name and summary for a server error.
#[must_use]
pub fn class_and_summary(error: &DbError) -> (&'static str, &'static str) {
    match error {
        DbError::SyntaxError => ("SyntaxException", "Syntax error in CQL query"),
        DbError::Invalid => ("InvalidRequest", "Invalid query"),
        DbError::AlreadyExists { .. } => ("AlreadyExists", "Already exists"),
        DbError::FunctionFailure { .. } => ("FunctionFailure", "User Defined Function failure"),
        DbError::AuthenticationError => ("AuthenticationFailed", "Bad credentials"),
        DbError::Unauthorized => ("Unauthorized", "Unauthorized"),
        DbError::ConfigError => ("ConfigurationException", "Query invalid because of configuration issue"),
        DbError::Unavailable { .. } => ("Unavailable", "Unavailable exception"),
        DbError::Overloaded => ("OverloadedErrorMessage", "Coordinator node overloaded"),
        DbError::IsBootstrapping => ("IsBootstrappingErrorMessage", "Coordinator node is bootstrapping"),
        DbError::TruncateError => ("TruncateError", "Error during truncate"),
        DbError::ReadTimeout { .. } => {
            ("ReadTimeout", "Coordinator node timed out waiting for replica nodes' responses")
        }
        DbError::WriteTimeout { .. } => {
            ("WriteTimeout", "Coordinator node timed out waiting for replica nodes' responses")
        }
        DbError::ReadFailure { .. } => ("ReadFailure", "Replica(s) failed to execute read"),
        DbError::WriteFailure { .. } => ("WriteFailure", "Replica(s) failed to execute write"),
        DbError::Unprepared { .. } => ("PreparedQueryNotFound", "Unprepared"),
        DbError::ServerError => ("ServerError", "Server error"),
        DbError::ProtocolError => ("ProtocolException", "Protocol error"),
        _ => ("ServerError", "Server error"),
    }
}

/// `BatchLog` -> `BATCH_LOG`: the protocol's names for enum values shown by their Rust names.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The extra `info={...}` the Python driver shows for availability errors.
fn info(error: &DbError) -> Option<String> {
    Some(match error {
        DbError::Unavailable { consistency, required, alive } => format!(
            "{{'consistency': '{}', 'required_replicas': {required}, 'alive_replicas': {alive}}}",
            consistency_name(*consistency)
        ),
        DbError::ReadTimeout { consistency, received, required, data_present } => format!(
            "{{'consistency': '{}', 'required_responses': {required}, 'received_responses': {received}, 'data_retrieved': {}}}",
            consistency_name(*consistency),
            if *data_present { "True" } else { "False" }
        ),
        DbError::WriteTimeout { consistency, received, required, write_type } => format!(
            "{{'consistency': '{}', 'required_responses': {required}, 'received_responses': {received}, 'write_type': '{}'}}",
            consistency_name(*consistency),
            screaming_snake(&format!("{write_type:?}"))
        ),
        DbError::ReadFailure { consistency, received, required, numfailures, .. }
        | DbError::WriteFailure { consistency, received, required, numfailures, .. } => format!(
            "{{'consistency': '{}', 'required_responses': {required}, 'received_responses': {received}, 'failures': {numfailures}}}",
            consistency_name(*consistency)
        ),
        _ => return None,
    })
}

/// A server error as cqlsh prints it.
#[must_use]
pub fn format_db_error(error: &DbError, message: &str) -> String {
    let (class, summary) = class_and_summary(error);
    if matches!(error, DbError::SyntaxError) {
        return format!("{class}: {message}");
    }
    let code = error.code(&ProtocolFeatures::default());
    let mut text = format!("{class}: Error from server: code={code:04x} [{summary}] message=\"{message}\"");
    if let Some(info) = info(error) {
        text.push_str(" info=");
        text.push_str(&info);
    }
    text
}

/// The server error inside a driver error, if the server answered with one.
#[must_use]
pub fn db_error(error: &ExecutionError) -> Option<(&DbError, &str)> {
    let attempt = match error {
        ExecutionError::LastAttemptError(a) => a,
        ExecutionError::PrepareError(PrepareError::AllAttemptsFailed { first_attempt }) => first_attempt,
        _ => return None,
    };
    match attempt {
        RequestAttemptError::DbError(db, message) => Some((db, message.as_str())),
        _ => None,
    }
}

/// The message only, as cqlsh shows DESCRIBE errors.
#[must_use]
pub fn message_only(error: &ExecutionError) -> String {
    match db_error(error) {
        Some((_, message)) => message.to_string(),
        None => format_execution_error(error),
    }
}

/// Any driver error as the shell prints it.
#[must_use]
pub fn format_execution_error(error: &ExecutionError) -> String {
    if let Some((db, message)) = db_error(error) {
        return format_db_error(db, message);
    }
    match error {
        ExecutionError::RequestTimeout(d) => {
            format!("OperationTimedOut: no response from the server within {} s", d.as_secs_f64())
        }
        ExecutionError::ConnectionPoolError(e) => format!("NoHostAvailable: {e}"),
        ExecutionError::EmptyPlan => "NoHostAvailable: no host to send the request to".to_string(),
        ExecutionError::LastAttemptError(RequestAttemptError::BrokenConnectionError(e)) => {
            format!("ConnectionException: {e}")
        }
        other => format!("Error: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use scylla::frame::types::Consistency;

    use super::*;

    #[test]
    fn invalid_request_like_cqlsh() {
        assert_eq!(
            format_db_error(&DbError::Invalid, "unconfigured table nope"),
            "InvalidRequest: Error from server: code=2200 [Invalid query] message=\"unconfigured table nope\""
        );
    }

    #[test]
    fn syntax_error_shows_the_server_message() {
        assert_eq!(
            format_db_error(&DbError::SyntaxError, "line 1:0 no viable alternative at input 'SELEC'"),
            "SyntaxException: line 1:0 no viable alternative at input 'SELEC'"
        );
    }

    #[test]
    fn already_exists_and_unavailable() {
        let e = DbError::AlreadyExists { keyspace: "ks".into(), table: String::new() };
        assert_eq!(
            format_db_error(&e, "Keyspace ks already exists"),
            "AlreadyExists: Error from server: code=2400 [Already exists] message=\"Keyspace ks already exists\""
        );
        let u = DbError::Unavailable { consistency: Consistency::Quorum, required: 2, alive: 1 };
        assert_eq!(
            format_db_error(&u, "Cannot achieve consistency level QUORUM"),
            "Unavailable: Error from server: code=1000 [Unavailable exception] message=\"Cannot achieve consistency level QUORUM\" info={'consistency': 'QUORUM', 'required_replicas': 2, 'alive_replicas': 1}"
        );
    }

    #[test]
    fn write_types_use_protocol_names() {
        assert_eq!(screaming_snake("BatchLog"), "BATCH_LOG");
        assert_eq!(screaming_snake("Simple"), "SIMPLE");
    }

    #[test]
    fn client_side_timeout() {
        let e = ExecutionError::RequestTimeout(std::time::Duration::from_secs(10));
        assert_eq!(format_execution_error(&e), "OperationTimedOut: no response from the server within 10 s");
    }
}
