//! The one error type commands return: `{code, message}`, serialised for the UI (`ui/src/ipc/types.ts` AppError).
//! Codes are stable and the UI acts on them; messages come from the engine and name the file and the fault.

use pocketlm::chat::ChatError;
use pocketlm::eval::EvalError;
use pocketlm::model::ModelError;
use pocketlm::quantize::QuantizeError;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    InvalidModel,
    NotFound,
    Unsupported,
    Cancelled,
    Busy,
    NoModelLoaded,
    PromptTooLong,
    InsufficientMemory,
    Io,
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: Code,
    pub message: String,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: Code, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into() }
    }
    pub fn cancelled() -> AppError {
        AppError::new(Code::Cancelled, "cancelled")
    }
    pub fn not_found(what: impl Into<String>) -> AppError {
        AppError::new(Code::NotFound, what)
    }
    pub fn io(context: impl std::fmt::Display, e: std::io::Error) -> AppError {
        AppError::new(Code::Io, format!("{context}: {e}"))
    }
}

impl From<QuantizeError> for AppError {
    fn from(e: QuantizeError) -> AppError {
        let code = match &e {
            QuantizeError::Cancelled => Code::Cancelled,
            QuantizeError::Policy(_) => Code::Unsupported,
            QuantizeError::SameFile { .. } => Code::Io,
            _ => Code::InvalidModel,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<ModelError> for AppError {
    fn from(e: ModelError) -> AppError {
        let code = match &e {
            ModelError::UnsupportedArchitecture { .. } | ModelError::UnsupportedType { .. } => Code::Unsupported,
            ModelError::OutOfMemory { .. } => Code::InsufficientMemory,
            ModelError::ContextFull { .. } => Code::PromptTooLong,
            ModelError::Gguf(_)
            | ModelError::MissingKey { .. }
            | ModelError::BadHParams { .. }
            | ModelError::MissingTensor { .. }
            | ModelError::TensorShape { .. } => Code::InvalidModel,
            _ => Code::Internal,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<ChatError> for AppError {
    fn from(e: ChatError) -> AppError {
        match e {
            ChatError::Model(m) => m.into(),
            ChatError::PromptTooLong { .. } => AppError::new(Code::PromptTooLong, e.to_string()),
            other => AppError::new(Code::Internal, other.to_string()),
        }
    }
}

impl From<EvalError> for AppError {
    fn from(e: EvalError) -> AppError {
        match e {
            EvalError::Cancelled => AppError::cancelled(),
            EvalError::Model(m) => m.into(),
            other => AppError::new(Code::Internal, other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_ui_expects() {
        let e = AppError::new(Code::InsufficientMemory, "needs 3 GiB");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"code":"insufficient_memory","message":"needs 3 GiB"}"#);
        assert_eq!(AppError::from(QuantizeError::Cancelled).code, Code::Cancelled);
    }
}
